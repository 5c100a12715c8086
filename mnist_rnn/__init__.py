"""Library for the MNIST RNN trainer: data, training loop, checks. Never reads flags.

Importing this package (or `models`, which imports it) selects legacy Keras for
TensorFlow before TensorFlow is first imported; see `mnist_rnn.tf_env`.
"""

from mnist_rnn import tf_env

tf_env.use_legacy_keras()
