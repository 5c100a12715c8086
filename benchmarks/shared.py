"""What both benchmarks (throughput.py, sequence_length.py) use: a trainer graph reduced
to its MatMuls (the bound they measure against), and PyTorch's layer for each cell.

No absl flags here, so that both benchmarks and the tests import it.
"""

# PyTorch's layer for each of the trainer's cells (BasicLSTMCell and FusedLSTMCell are
# LSTMs too).
PEER_LAYER = {'lstm': 'lstm', 'basic_lstm': 'lstm', 'fused_lstm': 'lstm', 'gru': 'gru',
              'fused_gru': 'gru', 'rnn': 'rnn'}


def matmuls_alone(source):
  """A graph of the MatMuls of `source` alone: returns (graph, step_op, init_op).

  One MatMul of the same shapes and transposes for each MatMul in `source`, on random
  variables, with no other op (the bias adds that grappler fuses into the trainer's
  forward MatMuls are left out too) and no dependencies between them. Run `step_op`
  with `matmuls_alone_config`: with grappler's default options, MatMuls that only a
  control edge waits for are turned into NoOps.
  """
  import numpy as np
  import tensorflow as tf
  tf1 = tf.compat.v1
  rng = np.random.default_rng(0)
  graph = tf.Graph()
  with graph.as_default():
    shared = {}

    def variable(shape):
      return tf1.Variable(rng.standard_normal(shape.as_list()).astype(np.float32))

    def shared_variable(shape):
      key = tuple(shape.as_list())
      if key not in shared:
        shared[key] = variable(shape)
      return shared[key]
    products = []
    for op in source.get_operations():
      if op.type != 'MatMul':
        continue
      # The first operand is an activation, new for every MatMul (identical MatMuls
      # would be merged by grappler); the second, a weight in most of them, is shared.
      products.append(tf1.matmul(variable(op.inputs[0].shape),
                                 shared_variable(op.inputs[1].shape),
                                 transpose_a=op.get_attr('transpose_a'),
                                 transpose_b=op.get_attr('transpose_b')).op)
    return graph, tf.group(*products), tf1.global_variables_initializer()


def matmuls_alone_config(intra_op_threads, inter_op_threads):
  """The trainer's session options, with grappler's dependency optimizer off."""
  from mnist_rnn import train
  from tensorflow.core.protobuf import rewriter_config_pb2
  config = train.session_config(intra_op_threads, inter_op_threads)
  config.graph_options.rewrite_options.dependency_optimization = (
      rewriter_config_pb2.RewriterConfig.OFF)
  return config
