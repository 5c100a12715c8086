"""FusedLSTMCell (--cell=fused_lstm): the same function as LSTMCell, forward and
gradients, with LSTMCell's variables (checkpoints load across); the graph it builds
under each runner; its kernels' shape checks; a missing compiler as a one-line CLI
error."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from mnist_rnn import config as config_lib
from mnist_rnn import mnist_data
from models import cells
from models import classifier
from models import fused_lstm
from models import runners
from tests import test_cli

tf1 = tf.compat.v1
UNITS = 16


@pytest.fixture(scope='module')
def images():
  return mnist_data.load().test.images[:6]


def _unroll_and_differentiate(cell_name, runner, time_major, images, forget_bias):
  """Builds one cell's graph; returns (variable names, fetched values)."""
  graph = tf.Graph()
  with graph.as_default():
    tf_keras.utils.set_random_seed(3)
    tf1.set_random_seed(3)
    cell = cells.make_cell(cell_name, UNITS, forget_bias)
    with tf1.variable_scope('rnn'):
      unrolled = runners.unroll(cell, tf.constant(images), runner, time_major)
    state = unrolled.state
    # A loss that reaches h at the last step, c at the last step and every output, so
    # each gradient path (through h, through c, through earlier outputs) is exercised.
    by_time = unrolled.outputs_time_major
    loss = (tf.reduce_sum(tf.sin(3.0 * unrolled.last_output)) + tf.reduce_sum(state.c ** 2)
            + tf.reduce_sum(tf.cos(by_time)))
    variables = tf1.trainable_variables()
    grads = tf.gradients(loss, variables)
    session = tf1.Session(graph=graph)
    session.run(tf1.global_variables_initializer())
    values = session.run({'weights': variables, 'outputs': by_time, 'c': state.c,
                          'h': state.h, 'loss': loss, 'grads': grads})
  return [v.op.name for v in variables], values


@pytest.mark.parametrize('runner, time_major', [('static', False), ('dynamic', False),
                                                ('dynamic', True)],
                         ids=['static', 'dynamic', 'dynamic-time_major'])
def test_fused_cell_computes_what_lstmcell_computes(runner, time_major, images):
  names, fused = _unroll_and_differentiate('fused_lstm', runner, time_major, images, 0.5)
  ref_names, ref = _unroll_and_differentiate('lstm', runner, time_major, images, 0.5)
  # LSTMCell's variables under LSTMCell's names, and the same initial weights.
  assert names == ref_names and [n.split('/', 1)[1] for n in names] == [
      'rnn/lstm_cell/kernel', 'rnn/lstm_cell/bias']
  for w, ref_w in zip(fused['weights'], ref['weights']):
    np.testing.assert_array_equal(w, ref_w)
  assert fused['outputs'].shape == (28, 6, UNITS)
  for key in ('outputs', 'c', 'h', 'loss'):
    np.testing.assert_allclose(fused[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=key)
  for g, ref_g in zip(fused['grads'], ref['grads']):
    assert np.abs(ref_g).max() > 1e-2  # a real gradient, not zeros on both sides
    np.testing.assert_allclose(g, ref_g, rtol=1e-4, atol=1e-5)
  # The forget bias is used: another value gives another loss.
  _, other = _unroll_and_differentiate('fused_lstm', runner, time_major, images, 1.0)
  assert abs(other['loss'] - fused['loss']) > 1e-3


def test_static_steps_read_the_kernel_in_groups_and_split_it():
  graph = tf.Graph()
  with graph.as_default():
    cell = cells.make_cell('fused_lstm', UNITS)
    runners.unroll(cell, tf1.placeholder(tf.float32, [None, 28, 28]), 'static')
  matmuls = [op for op in graph.get_operations() if op.type == 'MatMul']
  # Each step multiplies x by the kernel's first 28 rows and h by the other 16, both
  # cut from one fresh read of the kernel per group of steps.
  assert len(matmuls) == 2 * 28
  assert sorted(tuple(m.inputs[1].shape.as_list()) for m in matmuls) == (
      [(UNITS, 4 * UNITS)] * 28 + [(28, 4 * UNITS)] * 28)
  splits = {m.inputs[1].op for m in matmuls}
  assert len(splits) == 28 // fused_lstm.KERNEL_READ_EVERY
  for split in splits:
    read = split.inputs[0].op
    assert split.type == 'SplitV' and read.type == 'Identity'
    assert read.inputs[0].name.endswith('lstm_cell/kernel/Read/Identity:0')
  gates = [op for op in graph.get_operations() if op.type == 'MnistRnnLstmGates']
  assert len(gates) == 28


def test_kernels_reject_mismatched_shapes():
  ops = fused_lstm.load_ops()
  graph = tf.Graph()
  with graph.as_default():
    xw = tf1.placeholder(tf.float32, None)
    c, _, _ = ops.mnist_rnn_lstm_gates([xw, tf.zeros([2, 4 * UNITS])], tf.zeros([4 * UNITS]),
                                       tf.zeros([2, UNITS]), forget_bias=1.0)
    with tf1.Session() as session:
      with pytest.raises(tf.errors.InvalidArgumentError, match=r'each of parts must be \[2, 64\]'):
        session.run(c, {xw: np.zeros((2, 3 * UNITS), np.float32)})


def test_missing_compiler_is_a_one_line_error(tmp_path, monkeypatch):
  # Another compiler name is another build (the name is part of the library's key).
  monkeypatch.setenv('CXX', 'no-such-compiler')
  result = test_cli.run_cli(f'--flagfile={test_cli.SMOKE}', '--cell=fused_lstm',
                            f'--workdir={tmp_path}/run')
  test_cli.assert_one_line_error(result, "needs a C++ compiler: 'no-such-compiler' was"
                                 ' not found')
  assert not (tmp_path / 'run').exists()


def test_dynamic_loop_body_multiplies_concat_by_the_whole_kernel():
  graph = tf.Graph()
  with graph.as_default():
    cell = cells.make_cell('fused_lstm', UNITS)
    runners.unroll(cell, tf1.placeholder(tf.float32, [None, 28, 28]), 'dynamic')
  # dynamic_rnn's loop body is a function in the graph's library, built once.
  body_nodes = [node for function in graph.as_graph_def().library.function
                for node in function.node_def]
  gates = [node for node in body_nodes if node.op == 'MnistRnnLstmGates']
  assert len(gates) == 1 and gates[0].attr['N'].i == 1
  assert not any(node.op == 'SplitV' for node in body_nodes)


def test_checkpoints_load_across_lstm_and_fused_lstm(tmp_path, images):
  """The same variable names (Adam's slots included): a checkpoint of one cell restores
  into the other's graph, which then computes the same logits."""
  labels = np.arange(len(images)) % 10
  logits = {}
  for cell, seed in (('lstm', 0), ('fused_lstm', 1)):  # another seed: other initial weights
    graph = tf.Graph()
    with graph.as_default():
      model = classifier.build(config_lib.ModelConfig(cell=cell, num_units=UNITS, seed=seed))
      saver = tf1.train.Saver()
      with tf1.Session() as session:
        if cell == 'lstm':
          session.run(tf1.global_variables_initializer())
          session.run(model.train_op, classifier.feed_dict(
              model, images, labels, {model.learning_rate: 0.01}))
          saver.save(session, str(tmp_path / 'ckpt'))
        else:
          saver.restore(session, str(tmp_path / 'ckpt'))
        logits[cell] = session.run(model.logits, classifier.feed_dict(model, images))
  np.testing.assert_allclose(logits['fused_lstm'], logits['lstm'], rtol=1e-5, atol=1e-6)


def test_a_machine_with_a_gpu_is_refused_with_the_stock_cell_named(monkeypatch):
  # No GPU machine here runs TensorFlow: the device list is faked.
  fake = [tf.config.PhysicalDevice(name='/physical_device:GPU:0', device_type='GPU')]
  monkeypatch.setattr(tf.config, 'list_physical_devices',
                      lambda kind=None: fake if kind == 'GPU' else [])
  with pytest.raises(fused_lstm.KernelBuildError,
                     match=r'CPU kernels only and TensorFlow sees 1 GPU\(s\) '
                           r'\(/physical_device:GPU:0\): use --cell=lstm'):
    fused_lstm.load_ops()
  with pytest.raises(fused_lstm.KernelBuildError):
    cells.make_cell('fused_lstm', 8)
  monkeypatch.undo()
  assert fused_lstm.load_ops() is not None  # no GPU: the kernels load
