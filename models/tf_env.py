"""Loads TensorFlow the way this project needs it: legacy Keras, TF1 graphs, a quiet start.

TensorFlow 2.16+ ships Keras 3, and the v1 RNN cells (`LSTMCell`, `GRUCell`) are
only provided by the legacy Keras package `tf-keras`. TensorFlow decides which
Keras backs `tf.keras` and `tf.compat.v1.nn.rnn_cell` when it is first imported,
from the environment variable TF_USE_LEGACY_KERAS, so the variable must be set
before any `import tensorflow`. `use_legacy_keras` sets it and imports nothing
heavy; every entry point (the trainer, the tests, the benchmarks) calls it first,
through `import mnist_rnn`, so users never set it.

`tensorflow()` then imports TensorFlow once per process. Its C++ start-up lines
("Could not find cuda drivers ...", "E0000 ... failed call to cuInit: ... UNKNOWN
ERROR (303)" on every machine without a GPU) are written before any Python code can
set a log level, and some twice. They are caught while it loads and, on a healthy
CPU machine, kept back: the word "error" on a run that is fine misleads. They are
shown, each once, when they matter: a GPU is found, or absl's --verbosity is 1 or
more (`python train_mnist_rnn.py --verbosity=1` shows them).
"""

import contextlib
import importlib.util
import logging
import os
import re
import sys
import tempfile

_LEGACY_KERAS_VAR = 'TF_USE_LEGACY_KERAS'


class SetupError(RuntimeError):
  """The Python environment cannot run the v1 RNN cells."""


def use_legacy_keras() -> None:
  """Sets TF_USE_LEGACY_KERAS=1 and checks that it can still take effect.

  Raises:
    SetupError: tf-keras is missing, or TensorFlow was imported earlier
      without legacy Keras selected (too late to switch).
  """
  already = os.environ.get(_LEGACY_KERAS_VAR)
  os.environ[_LEGACY_KERAS_VAR] = '1'
  # Hide TensorFlow's C++ INFO/WARNING chatter unless asked for.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if importlib.util.find_spec('tf_keras') is None:
    raise SetupError(
        'the tf-keras package is not installed; tf.compat.v1.nn.rnn_cell needs it'
        ' on TensorFlow >= 2.16: run pip install -r requirements.txt')
  if 'tensorflow' in sys.modules and already not in ('1', 'true', 'True'):
    raise SetupError(
        'TensorFlow was imported before mnist_rnn, without TF_USE_LEGACY_KERAS=1;'
        ' import mnist_rnn (or models) before tensorflow')


class _HideDeprecations(logging.Filter):
  """static_rnn, dynamic_rnn and the v1 cells are deprecated; this project uses them
  on purpose, so their deprecation notices are noise. Other warnings pass."""

  def filter(self, record):
    return 'deprecat' not in record.getMessage()


# C++ log lines start 'I0000 00:00:1795830967.839634    3735 ' (level, date, time, thread).
_GLOG_PREFIX = re.compile(r'^[IWEF]\d{4} [\d:.]+ +\d+ ')


@contextlib.contextmanager
def caught_stderr_lines():
  """Catches what C++ code writes to file descriptor 2 inside the block; yields a
  list that holds, after the block, each distinct line once."""
  sys.stderr.flush()
  saved = os.dup(2)
  lines = []
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    try:
      yield lines
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      caught.seek(0)
      seen = set()
      for line in caught.read().decode(errors='replace').splitlines(keepends=True):
        message = _GLOG_PREFIX.sub('', line)  # the same line again, at another time
        if message not in seen:
          seen.add(message)
          lines.append(line)


def show_startup_lines(gpus: int) -> bool:
  """TensorFlow's start-up lines are shown with a GPU, or with absl --verbosity >= 1."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  return gpus > 0 or absl_logging.get_verbosity() >= 1


_configured = False


def tensorflow():
  """TensorFlow, imported (once) with legacy Keras and TF1 graph behaviour.

  Returns:
    The `tensorflow` module, with eager execution off: the whole project is
    tf.compat.v1 graph code (placeholders, sessions, Saver, FileWriter).
  """
  global _configured
  if not _configured:
    use_legacy_keras()
    if 'tensorflow' in sys.modules:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
    else:
      with caught_stderr_lines() as startup:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        import tf_keras  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
        # Looking for devices loads the rest of TensorFlow's libraries, which print
        # their start-up lines again; done here, they are caught with the others.
        gpus = len(tf.config.list_physical_devices('GPU'))
      if show_startup_lines(gpus):
        sys.stderr.writelines(startup)
        sys.stderr.flush()
    tf.compat.v1.disable_eager_execution()
    tf_logger = tf.get_logger()
    tf_logger.addFilter(_HideDeprecations())
    # TensorFlow's logger has its own stderr handler and also propagates to absl's:
    # every line would print twice. Keep absl's (one format for the whole log).
    for handler in list(tf_logger.handlers):
      tf_logger.removeHandler(handler)
    _configured = True
  return sys.modules['tensorflow']
