"""The RNN classifier graph for MNIST: cells, static/dynamic unrolling, softmax head.

This package knows nothing of the trainer (`mnist_rnn`): it takes a `models.config`
value and builds tf.compat.v1 graph code. `models.config` (the names of the cells,
runners and head inputs) imports no TensorFlow, so a command line can offer and check
them without loading it; every other module loads TensorFlow through
`models.tf_env.tensorflow()`, which first selects legacy Keras.
"""
