"""The fused cells, FusedLSTMCell (--cell=fused_lstm) and FusedGRUCell (--cell=fused_gru):
the same function as LSTMCell and GRUCell, forward and every gradient, with their
variables (checkpoints load across); the graphs they build under each runner; their
kernels' shape checks; a missing compiler and a GPU as one-line errors."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from mnist_rnn import config as config_lib
from mnist_rnn import mnist_data
from models import cells
from models import classifier
from models import fused_ops
from models import runners
from tests import test_cli

tf1 = tf.compat.v1
UNITS = 16


@pytest.fixture(scope='module')
def images():
  return mnist_data.load().test.images[:6]


STOCK = {'fused_lstm': 'lstm', 'fused_gru': 'gru'}
VARIABLES = {'lstm': ['lstm_cell/kernel', 'lstm_cell/bias'],
             'gru': ['gru_cell/gates/kernel', 'gru_cell/gates/bias',
                     'gru_cell/candidate/kernel', 'gru_cell/candidate/bias']}
RUNNERS = pytest.mark.parametrize(
    'runner, time_major', [('static', False), ('dynamic', False), ('dynamic', True)],
    ids=['static', 'dynamic', 'dynamic-time_major'])


def _unroll_and_differentiate(cell_name, runner, time_major, images, forget_bias=1.0):
  """Builds one cell's graph; returns (variable names, fetched values)."""
  graph = tf.Graph()
  with graph.as_default():
    tf_keras.utils.set_random_seed(3)
    tf1.set_random_seed(3)
    cell = cells.make_cell(cell_name, UNITS, forget_bias)
    with tf1.variable_scope('rnn'):
      unrolled = runners.unroll(cell, tf.constant(images), runner, time_major)
    h, c = cells.hidden_and_cell_state(unrolled.state)
    # A loss that reaches h at the last step, the state (and c) at the last step and
    # every output, so each gradient path (through h, through c, through earlier
    # outputs) is exercised.
    by_time = unrolled.outputs_time_major
    loss = (tf.reduce_sum(tf.sin(3.0 * unrolled.last_output)) + tf.reduce_sum(h ** 2)
            + tf.reduce_sum(tf.cos(by_time)))
    if c is not None:
      loss += tf.reduce_sum(c ** 2)
    variables = tf1.trainable_variables()
    grads = tf.gradients(loss, variables)
    session = tf1.Session(graph=graph)
    session.run(tf1.global_variables_initializer())
    values = session.run({'weights': variables, 'outputs': by_time, 'h': h,
                          'c': h if c is None else c, 'loss': loss, 'grads': grads})
  return [v.op.name for v in variables], values


@pytest.mark.parametrize('cell', ['fused_lstm', 'fused_gru'])
@RUNNERS
def test_fused_cell_computes_what_the_stock_cell_computes(cell, runner, time_major, images):
  names, fused = _unroll_and_differentiate(cell, runner, time_major, images, 0.5)
  ref_names, ref = _unroll_and_differentiate(STOCK[cell], runner, time_major, images, 0.5)
  # The stock cell's variables under its names, and the same initial weights.
  assert names == ref_names
  assert [n.split('/', 2)[2] for n in names] == VARIABLES[STOCK[cell]]
  for w, ref_w in zip(fused['weights'], ref['weights']):
    np.testing.assert_array_equal(w, ref_w)
  assert fused['outputs'].shape == (28, 6, UNITS)
  for key in ('outputs', 'c', 'h', 'loss'):
    np.testing.assert_allclose(fused[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=key)
  for g, ref_g in zip(fused['grads'], ref['grads']):
    assert np.abs(ref_g).max() > 1e-2  # a real gradient, not zeros on both sides
    np.testing.assert_allclose(g, ref_g, rtol=1e-4, atol=1e-5)


def test_fused_lstm_uses_the_forget_bias(images):
  _, half = _unroll_and_differentiate('fused_lstm', 'static', False, images, 0.5)
  _, one = _unroll_and_differentiate('fused_lstm', 'static', False, images, 1.0)
  assert abs(one['loss'] - half['loss']) > 1e-3


def test_the_comparison_would_see_a_wrong_gradient(images, monkeypatch):
  """The parity test above can fail: the same comparison, with FusedGRUCell's state
  gradient made to drop u's part on purpose, finds the difference."""
  gru_ops = fused_ops.load('fused_gru')

  class DropsTheGradientOfU:
    def mnist_rnn_gru_state_grad(self, *args):
      dparts, dbias, dacts, dh_prev = gru_ops.mnist_rnn_gru_state_grad(*args)
      return dparts, dbias, tf.zeros_like(dacts), dh_prev

    def __getattr__(self, name):
      return getattr(gru_ops, name)
  monkeypatch.setattr(fused_ops, 'loaded', lambda cell: DropsTheGradientOfU())
  _, broken = _unroll_and_differentiate('fused_gru', 'static', False, images)
  monkeypatch.undo()
  _, ref = _unroll_and_differentiate('gru', 'static', False, images)
  np.testing.assert_allclose(broken['loss'], ref['loss'], rtol=1e-5)  # forward unchanged
  # The parity test's own comparison of gates/kernel's gradient fails.
  with pytest.raises(AssertionError, match='Not equal to tolerance'):
    np.testing.assert_allclose(broken['grads'][0], ref['grads'][0], rtol=1e-4, atol=1e-5)


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
  assert len(splits) == 28 // fused_ops.KERNEL_READ_EVERY
  for split in splits:
    read = split.inputs[0].op
    assert split.type == 'SplitV' and read.type == 'Identity'
    assert read.inputs[0].name.endswith('lstm_cell/kernel/Read/Identity:0')
  gates = [op for op in graph.get_operations() if op.type == 'MnistRnnLstmGates']
  assert len(gates) == 28


def test_static_gru_steps_read_both_kernels_in_groups_and_split_them():
  graph = tf.Graph()
  with graph.as_default():
    cell = cells.make_cell('fused_gru', UNITS)
    runners.unroll(cell, tf1.placeholder(tf.float32, [None, 28, 28]), 'static')
  matmuls = [op for op in graph.get_operations() if op.type == 'MatMul']
  # Per step: x and h by the gate kernel's rows, x and r * h by the candidate's.
  assert sorted(tuple(m.inputs[1].shape.as_list()) for m in matmuls) == sorted(
      [(28, 2 * UNITS), (UNITS, 2 * UNITS), (28, UNITS), (UNITS, UNITS)] * 28)
  splits = {m.inputs[1].op for m in matmuls}
  assert len(splits) == 2 * (28 // fused_ops.KERNEL_READ_EVERY)
  assert sorted({s.inputs[0].op.inputs[0].name.rsplit('/', 3)[0] for s in splits}) == [
      'rnn/gru_cell/candidate', 'rnn/gru_cell/gates']
  for op_type in ('MnistRnnGruGates', 'MnistRnnGruState'):
    assert len([op for op in graph.get_operations() if op.type == op_type]) == 28
  # The candidate's h product takes r * h from the gates op.
  candidate_h = [m for m in matmuls if m.inputs[1].shape.as_list() == [UNITS, UNITS]]
  assert {m.inputs[0].op.type for m in candidate_h} == {'MnistRnnGruGates'}


def test_kernels_reject_mismatched_shapes():
  lstm_ops, gru_ops = fused_ops.load('fused_lstm'), fused_ops.load('fused_gru')
  graph = tf.Graph()
  with graph.as_default():
    part = tf1.placeholder(tf.float32, None)
    h = tf.zeros([2, UNITS])
    c, _, _ = lstm_ops.mnist_rnn_lstm_gates([part, tf.zeros([2, 4 * UNITS])],
                                            tf.zeros([4 * UNITS]), h, forget_bias=1.0)
    r_h, _ = gru_ops.mnist_rnn_gru_gates([part], tf.zeros([2 * UNITS]), h)
    new_h, _ = gru_ops.mnist_rnn_gru_state([part], tf.zeros([UNITS]),
                                           tf.zeros([2, 2 * UNITS]), h)
    bad_bias, _ = gru_ops.mnist_rnn_gru_state([tf.zeros([2, UNITS])], tf.zeros([3]),
                                              tf.zeros([2, 2 * UNITS]), h)
    with tf1.Session() as session:
      for fetch, width in ((c, 64), (r_h, 32), (new_h, 16)):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf'each of parts must be \[2, {width}\], got \[2,3\]'):
          session.run(fetch, {part: np.zeros((2, 3), np.float32)})
      with pytest.raises(tf.errors.InvalidArgumentError, match=r'bias must be \[16\]'):
        session.run(bad_bias)


@pytest.mark.parametrize('cell', ['fused_lstm', 'fused_gru'])
def test_missing_compiler_is_a_one_line_error(cell, tmp_path, monkeypatch):
  # Another compiler name is another build (the name is part of the library's key).
  monkeypatch.setenv('CXX', 'no-such-compiler')
  result = test_cli.run_cli(f'--flagfile={test_cli.SMOKE}', f'--cell={cell}',
                            f'--workdir={tmp_path}/run')
  test_cli.assert_one_line_error(result, f"--cell={cell} compiles its C++ kernels on first"
                                 " use and needs a C++ compiler: 'no-such-compiler' was"
                                 ' not found')
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('cell, ops', [('fused_lstm', ['MnistRnnLstmGates']),
                                       ('fused_gru', ['MnistRnnGruGates', 'MnistRnnGruState'])])
def test_dynamic_loop_body_multiplies_concat_by_the_whole_kernel(cell, ops):
  graph = tf.Graph()
  with graph.as_default():
    runners.unroll(cells.make_cell(cell, UNITS),
                   tf1.placeholder(tf.float32, [None, 28, 28]), 'dynamic')
  # dynamic_rnn's loop body is a function in the graph's library, built once.
  body_nodes = [node for function in graph.as_graph_def().library.function
                for node in function.node_def]
  for op in ops:
    fused = [node for node in body_nodes if node.op == op]
    assert len(fused) == 1 and fused[0].attr['N'].i == 1
  assert not any(node.op == 'SplitV' for node in body_nodes)
  assert len([node for node in body_nodes if node.op == 'MatMul']) == len(ops)


@pytest.mark.parametrize('cell', ['fused_lstm', 'fused_gru'])
def test_checkpoints_load_across_the_stock_and_the_fused_cell(cell, tmp_path, images):
  """The same variable names (Adam's slots included): a checkpoint of the stock cell
  restores into the fused cell's graph, which then computes the same logits."""
  labels = np.arange(len(images)) % 10
  logits = {}
  for name, seed in ((STOCK[cell], 0), (cell, 1)):  # another seed: other initial weights
    graph = tf.Graph()
    with graph.as_default():
      model = classifier.build(config_lib.ModelConfig(cell=name, num_units=UNITS, seed=seed))
      saver = tf1.train.Saver()
      with tf1.Session() as session:
        if name == STOCK[cell]:
          session.run(tf1.global_variables_initializer())
          session.run(model.train_op, classifier.feed_dict(
              model, images, labels, {model.learning_rate: 0.01}))
          saver.save(session, str(tmp_path / 'ckpt'))
        else:
          saver.restore(session, str(tmp_path / 'ckpt'))
        logits[name] = session.run(model.logits, classifier.feed_dict(model, images))
  np.testing.assert_allclose(logits[cell], logits[STOCK[cell]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('cell', ['fused_lstm', 'fused_gru'])
def test_a_machine_with_a_gpu_is_refused_with_the_stock_cell_named(cell, monkeypatch):
  # No GPU machine here runs TensorFlow: the device list is faked.
  fake = [tf.config.PhysicalDevice(name='/physical_device:GPU:0', device_type='GPU')]
  monkeypatch.setattr(tf.config, 'list_physical_devices',
                      lambda kind=None: fake if kind == 'GPU' else [])
  with pytest.raises(fused_ops.KernelBuildError,
                     match=rf'--cell={cell} has CPU kernels only and TensorFlow sees 1'
                           rf' GPU\(s\) \(/physical_device:GPU:0\): use'
                           rf' --cell={STOCK[cell]},'):
    fused_ops.load(cell)
  with pytest.raises(fused_ops.KernelBuildError):
    cells.make_cell(cell, 8)
  monkeypatch.undo()
  assert fused_ops.load(cell) is not None  # no GPU: the kernels load


def test_times_h_rows_has_matmuls_gradients():
  """fused_ops.times_h_rows: tf.matmul's product and gradients, the h gradient taken
  with the rows transposed beforehand (no MatMul with transpose_b in its gradient)."""
  rng = np.random.default_rng(0)
  h_value = rng.standard_normal((5, 3)).astype(np.float32)
  rows_value = rng.standard_normal((3, 8)).astype(np.float32)
  dy_value = rng.standard_normal((5, 8)).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    h, rows = tf.constant(h_value), tf.constant(rows_value)
    ours = fused_ops.times_h_rows(h, rows, tf.transpose(rows))
    stock = tf.matmul(h, rows)
    dy = tf.constant(dy_value)
    ours_grads = tf.gradients(ours, [h, rows], grad_ys=dy)
    stock_grads = tf.gradients(stock, [h, rows], grad_ys=dy)
    gradient_products = [op for op in graph.get_operations()
                         if op.type == 'MatMul' and op.name.startswith('gradients')]
    values = tf1.Session(graph=graph).run(
        {'ours': ours, 'stock': stock, 'ours_grads': ours_grads,
         'stock_grads': stock_grads})
  np.testing.assert_allclose(values['ours'], h_value @ rows_value, rtol=1e-6)
  np.testing.assert_allclose(values['ours_grads'][0], dy_value @ rows_value.T, rtol=1e-5)
  np.testing.assert_allclose(values['ours_grads'][1], h_value.T @ dy_value, rtol=1e-5)
  for ours_grad, stock_grad in zip(values['ours_grads'], values['stock_grads']):
    np.testing.assert_allclose(ours_grad, stock_grad, rtol=1e-6)
  # tf.matmul's h gradient is a MatMul with transpose_b; times_h_rows' is not.
  assert len(gradient_products) == 4
  transposed_b = [op for op in gradient_products if op.get_attr('transpose_b')]
  assert [op.name for op in transposed_b] == ['gradients_1/MatMul_1_grad/MatMul']


@pytest.mark.parametrize('cell', ['fused_lstm', 'fused_gru'])
def test_static_h_gradient_takes_transposed_rows_that_grappler_cannot_fold(cell):
  graph = tf.Graph()
  with graph.as_default():
    unrolled = runners.unroll(cells.make_cell(cell, UNITS),
                              tf1.placeholder(tf.float32, [None, 28, 28]), 'static')
    tf.gradients(tf.reduce_sum(unrolled.last_output), tf1.trainable_variables())
  grads = [op for op in graph.get_operations()
           if op.type == 'MatMul' and op.name.startswith('gradients/')]
  # The gradients of h (and, in the GRU, of r * h): [batch, UNITS]. Each multiplies
  # by transposed rows cut from a transposed read (a SplitV after the Transpose: a
  # Transpose right before a MatMul is folded back by Grappler into transpose_b).
  h_grads = [op for op in grads if op.outputs[0].shape.as_list() == [None, UNITS]]
  products_per_step = 1 if cell == 'fused_lstm' else 2
  assert len(h_grads) == products_per_step * 28
  for op in h_grads:
    assert not op.get_attr('transpose_b') and not op.get_attr('transpose_a')
    split = op.inputs[1].op
    assert split.type == 'SplitV' and split.inputs[0].op.type == 'Transpose'
  # x's gradients (never fetched: x is fed) and the kernel's keep tf.matmul's forms.
  x_grads = [op for op in grads if op.outputs[0].shape.as_list() == [None, 28]]
  assert len(x_grads) == products_per_step * 28
  assert all(op.get_attr('transpose_b') for op in x_grads)


@pytest.mark.parametrize('cell, kernels', [('fused_lstm', 1), ('fused_gru', 2)])
def test_dynamic_kernels_are_transposed_once_before_the_loop(cell, kernels):
  graph = tf.Graph()
  with graph.as_default():
    runners.unroll(cells.make_cell(cell, UNITS),
                   tf1.placeholder(tf.float32, [None, 28, 28]), 'dynamic')
  transposes = [op for op in graph.get_operations() if op.type == 'Transpose'
                and 'kernel' in op.inputs[0].name]
  assert len(transposes) == kernels
  body_nodes = [node for function in graph.as_graph_def().library.function
                for node in function.node_def]
  assert not any(node.op == 'Transpose' for node in body_nodes)


@pytest.mark.parametrize('cell', ['fused_lstm', 'fused_gru'])
def test_fused_h_gradient_matmul_keeps_tf_matmuls_form_in_both_runners(cell):
  """--fused_h_gradient=matmul: the form of the runs made before the flag."""
  graph = tf.Graph()
  with graph.as_default():
    with tf1.variable_scope('static'):
      static = runners.unroll(cells.make_cell(cell, UNITS, fused_h_gradient='matmul'),
                              tf1.placeholder(tf.float32, [None, 28, 28]), 'static')
    with tf1.variable_scope('dynamic'):
      dynamic = runners.unroll(cells.make_cell(cell, UNITS, fused_h_gradient='matmul'),
                               tf1.placeholder(tf.float32, [None, 28, 28]), 'dynamic')
    tf.gradients(tf.reduce_sum(static.last_output) + tf.reduce_sum(dynamic.last_output),
                 tf1.trainable_variables())
  h_grads = [op for op in graph.get_operations() if op.type == 'MatMul'
             and op.name.startswith('gradients/static')
             and op.outputs[0].shape.as_list() == [None, UNITS]]
  assert len(h_grads) == (1 if cell == 'fused_lstm' else 2) * 28
  assert all(op.get_attr('transpose_b') for op in h_grads)
  assert not [op for op in graph.get_operations()
              if op.type == 'Transpose' and 'kernel' in op.inputs[0].name]


def test_a_fused_folder_from_before_the_flag_resumes_only_with_the_old_form():
  from mnist_rnn import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  before = workdir_lib.parse_flag_lines('--cell=fused_lstm\n--seed=0\n')
  now = {'cell': 'fused_lstm', 'seed': '0', 'fused_h_gradient': 'transposed_rows'}
  assert workdir_lib.resume_conflicts(before, now) == [
      '--fused_h_gradient: saved matmul, requested transposed_rows']
  assert workdir_lib.resume_conflicts(before, {**now, 'fused_h_gradient': 'matmul'}) == []
  # Other cells never run the fused products: the form does not matter to them.
  lstm = workdir_lib.parse_flag_lines('--cell=lstm\n--seed=0\n')
  assert workdir_lib.resume_conflicts(lstm, {**now, 'cell': 'lstm'}) == []
  assert workdir_lib.flags_before_the_flag(before) == [
      '--zoneout_c=0.0', '--zoneout_h=0.0', '--fused_h_gradient=matmul',
      '--early_stopping_patience=0', '--rotate_degrees=0.0']
  assert workdir_lib.flags_before_the_flag({**before, 'zoneout_c': '0.0', 'zoneout_h': '0.0',
                                            'fused_h_gradient': 'matmul',
                                            'early_stopping_patience': '0',
                                            'rotate_degrees': '0.0'}) == []


def test_an_unknown_form_is_refused():
  with pytest.raises(ValueError, match="unknown fused_h_gradient 'other'"):
    fused_ops.times_h(tf.zeros([2, 3]), tf.zeros([3, 4]), None, 'other')
