"""pytest set-up: legacy Keras before TensorFlow, and absl flags marked as parsed."""

import fcntl
import os
import shutil
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
  faulted and resumed run must reproduce (its metrics, timings aside). Read only.

  Made once for the whole session: under pytest-xdist each worker has its own
  session, so the first to get here trains it in the folder the workers share, under
  a lock, and the other reads it when it is done."""
  from tests.test_cli import run_cli  # pylint: disable=g-import-not-at-top
  from tests.test_reliability import RUN  # pylint: disable=g-import-not-at-top
  shared = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    shared = shared.parent  # the base folder every worker's own folder is in
  workdir = shared / 'reference'
  with open(shared / 'reference.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    if not (shared / 'reference.finished').exists():
      shutil.rmtree(workdir, ignore_errors=True)  # a worker that failed half-way
      result = run_cli(*RUN, f'--workdir={workdir}')
      assert result.returncode == 0, result.stderr[-2000:]
      (shared / 'reference.finished').touch()
  return str(workdir)
