"""The MNIST classifier graph: RNN over image rows, dense softmax head on outputs[-1]."""

import collections

import tensorflow as tf
import tf_keras

from mnist_rnn import config as config_lib
from models import cells
from models import runners

tf1 = tf.compat.v1

NUM_CLASSES = 10
TIME_STEPS = 28
FEATURES = 28

Model = collections.namedtuple('Model', [
    'images',          # placeholder [batch, 28, 28] float32
    'labels',          # placeholder [batch] int64
    'learning_rate',   # placeholder, scalar float32 (fed by the training loop)
    'unrolled',        # runners.Unrolled: outputs, state, last_output
    'last_output',     # outputs[-1], [batch, units]: what the head reads
    'final_h',         # the final state's h, [batch, units]
    'final_c',         # the LSTM's final c, [batch, units]; None for a GRU
    'logits',          # [batch, 10]
    'loss',            # scalar: mean softmax cross-entropy over the batch
    'correct',         # scalar int64: correctly classified examples in the batch
    'train_op',        # one Adam step; also accumulates the epoch's train metrics
    'global_step',     # int64 variable: training steps taken
    'epoch_metrics',   # dict: loss_sum, correct, seen (float64 variables)
    'reset_epoch_metrics',
])


def build(config: config_lib.ModelConfig) -> Model:
  """Builds the whole training graph in the current default graph.

  Args:
    config: the model configuration.

  Returns:
    A Model. `final_h` and `last_output` are separate tensors fetched together for
    the states-vs-outputs check: for an LSTM, `final_h` is `state.h`; for a GRU,
    the state itself.
  """
  # The graph seed fixes TensorFlow's initializers; tf-keras's legacy cells draw
  # their initial weights from Python's `random` as well, so seed that too.
  tf_keras.utils.set_random_seed(config.seed)
  tf1.set_random_seed(config.seed)
  images = tf1.placeholder(tf.float32, [None, TIME_STEPS, FEATURES], name='images')
  labels = tf1.placeholder(tf.int64, [None], name='labels')
  learning_rate = tf1.placeholder(tf.float32, [], name='learning_rate')

  with tf1.variable_scope('rnn'):
    cell = cells.make_cell(config.cell, config.num_units, config.forget_bias)
    unrolled = runners.unroll(cell, images, config.runner, config.time_major)
  last_output = unrolled.last_output
  last_output.shape.assert_is_compatible_with([None, config.num_units])
  final_h, final_c = cells.hidden_and_cell_state(unrolled.state)

  with tf1.variable_scope('softmax'):
    w = tf1.get_variable('w', [config.num_units, NUM_CLASSES])
    b = tf1.get_variable('b', [NUM_CLASSES], initializer=tf1.zeros_initializer())
    logits = tf.matmul(last_output, w) + b
  # check_numerics stops a step whose loss is NaN/inf before its update is applied.
  loss = tf.debugging.check_numerics(
      tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=labels, logits=logits)), 'training loss is NaN or infinite')
  correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.int64))

  global_step = tf1.train.get_or_create_global_step()
  optimizer = tf1.train.AdamOptimizer(learning_rate)
  grads, variables = zip(*optimizer.compute_gradients(loss))
  if config.clip_norm > 0:
    grads, _ = tf.clip_by_global_norm(grads, config.clip_norm)
  apply = optimizer.apply_gradients(zip(grads, variables), global_step=global_step)

  # The epoch's running train metrics live in the graph (and so in checkpoints):
  # the step fetches nothing, and an interrupted epoch resumes with its sums.
  with tf1.variable_scope('epoch_metrics'):
    metrics = {k: tf1.get_variable(k, [], tf.float64, tf1.zeros_initializer(),
                                   trainable=False)
               for k in ('loss_sum', 'correct', 'seen')}
  batch = tf.cast(tf.shape(labels)[0], tf.float64)
  with tf.control_dependencies([apply]):
    train_op = tf.group(
        metrics['loss_sum'].assign_add(tf.cast(loss, tf.float64) * batch),
        metrics['correct'].assign_add(tf.cast(correct, tf.float64)),
        metrics['seen'].assign_add(batch), name='train_op')
  reset = tf.group(*[v.assign(tf.zeros([], tf.float64)) for v in metrics.values()])

  return Model(images=images, labels=labels, learning_rate=learning_rate,
               unrolled=unrolled, last_output=last_output, final_h=final_h,
               final_c=final_c, logits=logits, loss=loss, correct=correct,
               train_op=train_op, global_step=global_step, epoch_metrics=metrics,
               reset_epoch_metrics=reset)
