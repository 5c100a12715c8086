"""Makes `tf.compat.v1.nn.rnn_cell` usable on TensorFlow >= 2.16 (the Keras 3 era).

TensorFlow 2.16+ ships Keras 3, and the v1 RNN cells (`LSTMCell`, `GRUCell`) are
only provided by the legacy Keras package `tf-keras`. TensorFlow decides which
Keras backs `tf.keras` and `tf.compat.v1.nn.rnn_cell` when it is first imported,
from the environment variable TF_USE_LEGACY_KERAS, so the variable must be set
before any `import tensorflow`. Every entry point of this project (the trainer,
the tests, the benchmarks) imports this package first, so users never set it.
"""

import importlib.util
import os
import sys

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
  # Hide TensorFlow's C++ INFO/WARNING start-up chatter unless asked for.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if importlib.util.find_spec('tf_keras') is None:
    raise SetupError(
        'the tf-keras package is not installed; tf.compat.v1.nn.rnn_cell needs it'
        ' on TensorFlow >= 2.16: run pip install -r requirements.txt')
  if 'tensorflow' in sys.modules and already not in ('1', 'true', 'True'):
    raise SetupError(
        'TensorFlow was imported before mnist_rnn, without TF_USE_LEGACY_KERAS=1;'
        ' import mnist_rnn (or models) before tensorflow')
