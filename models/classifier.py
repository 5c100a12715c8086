"""The MNIST classifier graph: RNN over image rows, dense softmax head on outputs[-1]."""

import collections
import dataclasses
from typing import Optional

import numpy as np

from models import cells
from models import config as config_lib
from models import initializers
from models import runners
from models import tf_env
from models import zoneout

tf = tf_env.tensorflow()
tf1 = tf.compat.v1
import tf_keras  # noqa: E402  (after tf_env: legacy Keras)

NUM_CLASSES = 10
TIME_STEPS = 28
FEATURES = 28

# The tensors the per-epoch states-vs-outputs check fetches (mnist_rnn.state_check
# compares them); each [batch, units], or None where the model has no such tensor.
CheckTensors = collections.namedtuple('CheckTensors', [
    'output',           # forward outputs[-1]
    'h',                # forward (top layer) final h
    'c',                # its c (LSTMs) or None
    'backward_h',       # backward final h, or None
    'backward_first',   # backward output at step 0, or None
    'backward_last',    # backward half of outputs[-1], or None
])

Model = collections.namedtuple('Model', [
    'images',          # placeholder [batch, 28, 28] float32 (batch fixed or None)
    'labels',          # placeholder [batch] int64
    'valid_examples',  # scalar int32, defaults to batch: rows past it are padding
    'lengths',         # [batch] int32, each image's trimmed length (computed in the
                       # graph) with --sequence_length=trimmed; else None
    'learning_rate',   # placeholder, scalar float32 (fed by the training loop)
    'unrolled',        # runners.Unrolled of the first tower (the only one if towers=1)
    'last_output',     # outputs[-1], [batch, units] ([batch, 2 * units] bidirectional)
    'final_h',         # the (forward, top layer) final state's h, [batch, units]
    'final_c',         # its c for LSTMs, [batch, units]; None for GRU and RNN
    'check',           # CheckTensors fetched by the per-epoch check
    'head_input',      # what the dense layer reads (see --head_input)
    'logits',          # [batch, 10]
    'loss',            # scalar: mean softmax cross-entropy over the valid rows
    'correct',         # scalar int64: correctly classified valid rows
    'train_op',        # one optimizer step (Adam or RMSProp); also accumulates the
                       # epoch's train metrics
    'global_step',     # int64 variable: training steps taken
    'epoch_metrics',   # dict: loss_sum, correct, seen (float64 variables)
    'reset_epoch_metrics',
    'init',            # a fresh start: every initializer, then models.initializers'
    'training',        # with zoneout: scalar bool placeholder (default False: the
                       # masks hold their expectation); the training step feeds True
    'zoneout_seed',    # with zoneout: [2] int64 placeholder, the masks' seed, fed per
                       # batch; both None without zoneout
], defaults=(None, None))


def _head_input(config, unrolled, lengths, final_h):
  """[batch, features] for the dense layer, chosen by config.head_input."""
  if config.head_input == 'outputs_last':
    return unrolled.last_output  # the tutorial's choice
  if config.head_input == 'state_h':
    if config.bidirectional:
      backward_h, _ = cells.hidden_and_cell_state(unrolled.backward_state)
      return tf.concat([final_h, backward_h], 1)
    return final_h
  if config.head_input == 'last_relevant':
    if lengths is None:
      return unrolled.last_output  # every sequence is 28 long
    # Each example's output at its own last valid step.
    by_time = unrolled.outputs_time_major  # [time, batch, features]
    index = tf.stack([lengths - 1, tf.range(tf.shape(lengths)[0])], axis=1)
    return tf.gather_nd(by_time, index)
  raise ValueError(f'unknown head_input {config.head_input!r}; expected one of'
                   f' {config_lib.HEAD_INPUTS}')


def fixed_batch_size(model: Model) -> Optional[int]:
  """The batch size the graph was built for; None if it takes any."""
  return model.images.shape[0]


def feed_dict(model: Model, images, labels=None, extra=None) -> dict:
  """A feed_dict for a batch of images [n, 28, 28] (and labels [n]).

  A graph built for a fixed batch size takes a shorter batch filled up with zero rows,
  and `valid_examples` = n keeps those rows out of the loss and the metrics; a fetched
  per-example tensor then has padding rows past n (`run_rows` drops them).

  Raises:
    ValueError: more than the graph's fixed batch size of images.
  """
  n, size = len(images), fixed_batch_size(model)
  feed = dict(extra or {})
  if size is not None and n != size:
    if n > size:
      raise ValueError(f'a batch of {n} images does not fit a graph built for'
                       f' batches of {size}')
    images = np.concatenate([images, np.zeros((size - n,) + images.shape[1:], images.dtype)])
    if labels is not None:
      labels = np.concatenate([labels, np.zeros(size - n, labels.dtype)])
    feed[model.valid_examples] = n
  feed[model.images] = images
  if labels is not None:
    feed[model.labels] = labels
  return feed


def run_rows(session, model: Model, fetches: dict, images) -> dict:
  """Fetches per-example tensors for every image, in batches the graph takes.

  Args:
    session: a Session holding the model's weights.
    model: the Model.
    fetches: {name: tensor [batch, ...]}.
    images: [n, 28, 28] float32, any n.

  Returns:
    {name: array [n, ...]}, padding rows dropped.
  """
  step = fixed_batch_size(model) or max(len(images), 1)
  chunks = [images[start:start + step] for start in range(0, len(images), step)]
  parts = [session.run(fetches, feed_dict(model, chunk)) for chunk in chunks]
  return {k: np.concatenate([part[k][:len(chunk)] for part, chunk in zip(parts, chunks)])
          for k in fetches}


def _split_batch(tensor, parts: int) -> list:
  """Cuts [batch, ...] into `parts` consecutive slices whose sizes differ by at most one
  (a slice may be empty when batch < parts)."""
  if parts == 1:
    return [tensor]
  if tensor.shape[0] is not None:  # a fixed batch: slices of known size
    n = tensor.shape[0]
    return tf.split(tensor, [(n + parts - 1 - i) // parts for i in range(parts)], num=parts)
  n = tf.shape(tensor)[0]
  sizes = tf.stack([(n + parts - 1 - i) // parts for i in range(parts)])
  return tf.split(tensor, sizes, num=parts)


def _concat(tensors):
  return tensors[0] if len(tensors) == 1 else tf.concat(tensors, 0)


def sequences(config: config_lib.ModelConfig, images):
  """What the RNN reads: images [batch, 28, 28] -> [batch, steps, pixels_per_step],
  row-major (permuted first with --permute_pixels); 28 pixels per step is the images
  themselves, a row per step."""
  if config_lib.reads_rows(config):
    return images
  flat = tf.reshape(images, [-1, config_lib.IMAGE_PIXELS])
  if config.permute_pixels:
    flat = tf.gather(flat, config_lib.pixel_permutation(config.permutation_seed), axis=1)
  return tf.reshape(flat, [-1, config_lib.time_steps(config), config.pixels_per_step])


def _tower(config: config_lib.ModelConfig, images, reuse: bool, training=None,
           zoneout_seed=None) -> tuple:
  """Unrolls the cells over `images` [batch, 28, 28] under variable scope 'rnn'.

  With zoneout, each step's input also carries that step's masks (models/zoneout.py):
  drawn from `zoneout_seed` where `training` is true, their expectation otherwise
  (always, when `training` is None).

  Returns:
    (runners.Unrolled, CheckTensors, head input [batch, width], lengths [batch] int32
    with --sequence_length=trimmed, else None).
  """
  steps = sequences(config, images)
  lengths = trimmed_lengths_op(steps) if config.sequence_length == 'trimmed' else None
  problem = config_lib.zoneout_conflict(config.cell, config.num_layers,
                                        config.bidirectional, config.zoneout_c,
                                        config.zoneout_h)
  if problem:
    raise ValueError(problem)
  parts = zoneout.rates(config.cell, config.zoneout_c, config.zoneout_h)
  if parts:
    batch = steps.shape[0] if steps.shape[0] is not None else tf.shape(steps)[0]
    steps = tf.concat([steps, zoneout.masks(parts, config.num_units, batch,
                                            config_lib.time_steps(config),
                                            zoneout_seed, training)], 2)

  def stack():
    cell = cells.make_stack(config.cell, config.num_units, config.num_layers,
                            config.forget_bias, config.fused_h_gradient)
    return zoneout.ZoneoutWrapper(cell, parts, config.num_units) if parts else cell
  with tf1.variable_scope('rnn', reuse=reuse):
    unrolled = runners.unroll(stack(), steps, config.runner, config.time_major,
                              sequence_length=lengths,
                              backward_cell=stack() if config.bidirectional else None)
  final_h, final_c = cells.hidden_and_cell_state(unrolled.forward_state)
  check = CheckTensors(unrolled.forward_last_output, final_h, final_c, None, None, None)
  if config.bidirectional:
    backward_h, _ = cells.hidden_and_cell_state(unrolled.backward_state)
    check = check._replace(backward_h=backward_h,
                           backward_first=unrolled.backward_first_output,
                           backward_last=unrolled.backward_last_output)
  width = config.num_units * (2 if config.bidirectional else 1)
  unrolled.last_output.shape.assert_is_compatible_with([None, width])
  return unrolled, check, _head_input(config, unrolled, lengths, final_h), lengths


def _softmax_head(config: config_lib.ModelConfig, head_input):
  """The dense layer (variables softmax/w, softmax/b): [batch, width] -> logits [batch, 10]."""
  width = config.num_units * (2 if config.bidirectional else 1)
  with tf1.variable_scope('softmax'):
    w = tf1.get_variable('w', [width, NUM_CLASSES])
    b = tf1.get_variable('b', [NUM_CLASSES], initializer=tf1.zeros_initializer())
    return tf.matmul(head_input, w) + b


def trimmed_lengths_op(steps):
  """Each sequence's length up to its last step with ink (at least 1): [batch, steps,
  pixels] -> [batch] int32 in 1..steps. With a row per step, an image ends at its last
  non-blank row; blank padding rows get 1."""
  inked = tf.reduce_any(tf.not_equal(steps, 0), axis=2)  # [batch, steps]
  rows = tf.shape(steps)[1]
  last = rows - tf.cast(tf.argmax(tf.cast(tf.reverse(inked, [1]), tf.int32), axis=1),
                        tf.int32)
  return tf.where(tf.reduce_any(inked, axis=1), last, tf.ones_like(last))


Inference = collections.namedtuple('Inference', [
    'images',          # placeholder [batch, 28, 28] float32 in 0..1, any batch size
    'probabilities',   # [batch, 10] softmax
    'classes',         # [batch] int64, the most probable digit
    'last_output',     # outputs[-1] (forward half when bidirectional), [batch, units]
    'state_h',         # the (forward, top layer) final state's h, [batch, units]
])


def build_inference(config: config_lib.ModelConfig) -> Inference:
  """The forward pass alone, for any batch size: what an export serves.

  Its variables have the training graph's names, so a Saver over them restores a
  training checkpoint. One tower (towers only split a batch). `fused_lstm` is built as
  LSTMCell, whose ops any TensorFlow has: the same variables and equations.
  """
  config = dataclasses.replace(config, cell=config_lib.checkpoint_family(config.cell),
                               towers=1)
  # Initial values are overwritten by the checkpoint, but a seed keeps their ops legal
  # where op determinism is on (the trainer turns it on process-wide).
  tf1.set_random_seed(config.seed)
  images = tf1.placeholder(tf.float32, [None, TIME_STEPS, FEATURES], name='images')
  _, check, head, _ = _tower(config, images, reuse=False)
  logits = _softmax_head(config, head)
  return Inference(images=images, probabilities=tf.nn.softmax(logits, name='probabilities'),
                   classes=tf.argmax(logits, 1, name='classes'),
                   last_output=tf.identity(check.output, name='last_output'),
                   state_h=tf.identity(check.h, name='state_h'))


def build(config: config_lib.ModelConfig, batch_size: Optional[int] = None) -> Model:
  """Builds the whole training graph in the current default graph.

  Args:
    config: the model configuration.
    batch_size: fixes the graph's batch dimension, as the trainer does: with every
      shape known, TensorFlow's gradient code needs no run-time broadcasting ops
      (Shape, BroadcastGradientArgs, Sum, Reshape) for the cells' multiplies and adds,
      a third of the graph's ops, so it builds ~35% faster (training speed is the
      same: grappler had removed most of them before the first step). `feed_dict`
      pads a shorter batch. None: the graph takes any batch size.

  Returns:
    A Model. `final_h` and `last_output` (over the whole batch, all towers
    concatenated) are separate tensors fetched together for
    the states-vs-outputs check: for an LSTM, `final_h` is `state.h`; for a GRU or
    RNN, the state itself; for a stack, the top layer's; bidirectional, the forward
    direction's (compared with the forward half of outputs[-1]).
  """
  if config.sequence_length not in config_lib.SEQUENCE_LENGTHS:
    raise ValueError(f'unknown sequence_length {config.sequence_length!r}')
  # The graph seed fixes TensorFlow's initializers; tf-keras's legacy cells draw
  # their initial weights from Python's `random` as well, so seed that too.
  tf_keras.utils.set_random_seed(config.seed)
  tf1.set_random_seed(config.seed)
  images = tf1.placeholder(tf.float32, [batch_size, TIME_STEPS, FEATURES], name='images')
  labels = tf1.placeholder(tf.int64, [batch_size], name='labels')
  # Rows from valid_examples on are padding (feed_dict fills a short batch up to a
  # fixed batch size): the loss and the metrics leave them out.
  rows = tf.shape(labels)[0]
  valid_examples = tf1.placeholder_with_default(rows, [], name='valid_examples')
  is_valid = tf.range(rows) < valid_examples  # [batch] bool
  learning_rate = tf1.placeholder(tf.float32, [], name='learning_rate')
  training = zoneout_seed = None
  if zoneout.rates(config.cell, config.zoneout_c, config.zoneout_h):
    training = tf1.placeholder_with_default(False, [], name='training')
    zoneout_seed = tf1.placeholder_with_default(
        tf.constant([0, 0], tf.int64), [2], name='zoneout_seed')

  # Towers: the batch is cut into `config.towers` slices, each unrolled by its own copy
  # of the cells with shared variables; their results are concatenated back in batch
  # order, so every tensor below is [batch, ...] for the whole batch.
  image_parts = _split_batch(images, config.towers)
  towers, head_inputs, checks, length_parts = [], [], [], []
  for k in range(config.towers):
    # Each tower draws its own masks: the batch's seed, moved by the tower's index.
    tower_seed = None if zoneout_seed is None else zoneout_seed + tf.constant([k, 0], tf.int64)
    unrolled, check, head, tower_lengths = _tower(config, image_parts[k], reuse=k > 0,
                                                  training=training, zoneout_seed=tower_seed)
    towers.append(unrolled)
    head_inputs.append(head)
    checks.append(check)
    length_parts.append(tower_lengths)
  lengths = None if length_parts[0] is None else _concat(length_parts)
  last_output = _concat([t.last_output for t in towers])
  check = CheckTensors(*[
      None if parts[0] is None else _concat(parts) for parts in zip(*checks)])
  head_input = _concat(head_inputs)
  logits = _softmax_head(config, head_input)
  # check_numerics stops a step whose loss is NaN/inf before its update is applied.
  weights = tf.cast(is_valid, tf.float32)
  examples = tf.reduce_sum(weights)
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
  loss = tf.debugging.check_numerics(tf.reduce_sum(cross_entropy * weights) / examples,
                                     'training loss is NaN or infinite')
  correct = tf.reduce_sum(tf.cast(
      tf.logical_and(tf.equal(tf.argmax(logits, 1), labels), is_valid), tf.int64))

  global_step = tf1.train.get_or_create_global_step()
  optimizer = make_optimizer(config, learning_rate)
  # GATE_GRAPH: every gradient is computed before any update is applied, gated once
  # for the whole graph. The default (GATE_OP) gates each op's gradients with identity
  # ops and control dependencies: ~900 extra ops that grappler removes again before
  # the first step. Gating once cuts graph build by ~25%; every number stays the same.
  grads, variables = zip(*optimizer.compute_gradients(
      loss, gate_gradients=tf1.train.Optimizer.GATE_GRAPH))
  if config.clip_norm > 0:
    grads, _ = tf.clip_by_global_norm(grads, config.clip_norm)
  apply = optimizer.apply_gradients(zip(grads, variables), global_step=global_step)

  # The epoch's running train metrics live in the graph (and so in checkpoints):
  # the step fetches nothing, and an interrupted epoch resumes with its sums.
  with tf1.variable_scope('epoch_metrics'):
    metrics = {k: tf1.get_variable(k, [], tf.float64, tf1.zeros_initializer(),
                                   trainable=False)
               for k in ('loss_sum', 'correct', 'seen')}
  batch = tf.cast(examples, tf.float64)
  with tf.control_dependencies([apply]):
    train_op = tf.group(
        metrics['loss_sum'].assign_add(tf.cast(loss, tf.float64) * batch),
        metrics['correct'].assign_add(tf.cast(correct, tf.float64)),
        metrics['seen'].assign_add(batch), name='train_op')
  reset = tf.group(*[v.assign(tf.zeros([], tf.float64)) for v in metrics.values()])
  init = initializers.initializer(config, config_lib.time_steps(config))

  return Model(images=images, labels=labels, valid_examples=valid_examples, lengths=lengths,
               learning_rate=learning_rate,
               unrolled=towers[0], last_output=last_output, final_h=check.h,
               final_c=check.c, check=check, head_input=head_input, logits=logits,
               loss=loss, correct=correct, train_op=train_op, global_step=global_step,
               epoch_metrics=metrics, reset_epoch_metrics=reset, init=init,
               training=training, zoneout_seed=zoneout_seed)


def make_optimizer(config: config_lib.ModelConfig, learning_rate):
  """tf.compat.v1's Adam (its defaults) or RMSProp (decay and momentum from the
  config, TensorFlow's epsilon 1e-10), for a fed learning rate."""
  if config.optimizer == 'adam':
    return tf1.train.AdamOptimizer(learning_rate)
  if config.optimizer == 'rmsprop':
    return tf1.train.RMSPropOptimizer(learning_rate, decay=config.rmsprop_decay,
                                      momentum=config.rmsprop_momentum)
  raise ValueError(f'unknown optimizer {config.optimizer!r}; expected one of'
                   f' {config_lib.OPTIMIZERS}')
