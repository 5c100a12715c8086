"""pytest set-up: legacy Keras before TensorFlow, and absl flags marked as parsed."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mnist_rnn  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from absl import flags  # noqa: E402
import pytest  # noqa: E402

flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope='session')
def reference(tmp_path_factory):
  """An uninterrupted CLI run of tests.test_reliability.RUN: what every interrupted,
  faulted and resumed run must reproduce (its metrics, timings aside)."""
  from tests.test_cli import run_cli  # pylint: disable=g-import-not-at-top
  from tests.test_reliability import RUN  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp('reference'))
  result = run_cli(*RUN, f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir
