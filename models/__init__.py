"""The classifier graph: RNN cells, static/dynamic unrolling, softmax head.

Importing `mnist_rnn` first selects legacy Keras before TensorFlow loads.
"""

import mnist_rnn  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

import logging as _logging

import tensorflow as _tf


class _HideDeprecations(_logging.Filter):
  """static_rnn, dynamic_rnn and the v1 cells are deprecated; this project uses them
  on purpose, so their deprecation notices are noise. Other warnings pass."""

  def filter(self, record):
    return 'deprecat' not in record.getMessage()


# The whole project is tf.compat.v1 graph code (placeholders, sessions, Saver,
# FileWriter): run TensorFlow as TF1 did.
_tf.compat.v1.disable_eager_execution()

_tf_logger = _tf.get_logger()
_tf_logger.addFilter(_HideDeprecations())
# TensorFlow's logger has its own stderr handler and also propagates to absl's:
# every line would print twice. Keep absl's (one format for the whole log).
for _handler in list(_tf_logger.handlers):
  _tf_logger.removeHandler(_handler)
