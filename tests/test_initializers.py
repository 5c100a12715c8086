"""--gate_bias_init, --recurrent_init and --optimizer: their effect on the graph's
initial values and optimizer, their bad values (one line; and those of --zoneout_c and
--zoneout_h, tests/test_zoneout.py), and resume."""

import os

import numpy as np
import pytest

from models import classifier
from models import config as config_lib
from models import initializers
from models import tf_env
from tests.test_cli import assert_one_line_error
from tests.test_cli import run_cli
from tests.test_cli import SMOKE

tf = tf_env.tensorflow()
tf1 = tf.compat.v1
UNITS = 8


def _initial_values(**overrides):
  """{variable name: initial value} of a 2-tower, 112-step graph after `model.init`.

  The dynamic runner: the same variables and initial values as the static one, in a
  graph that builds in a fraction of the time."""
  cfg = config_lib.ModelConfig(num_units=UNITS, towers=2, pixels_per_step=7,
                               **{'runner': 'dynamic', **overrides})
  graph = tf.Graph()
  with graph.as_default():
    model = classifier.build(cfg, batch_size=4)
    with tf1.Session(graph=graph) as session:
      session.run(model.init)
      return {v.name: session.run(v) for v in tf1.global_variables()}, model


@pytest.mark.parametrize('cell', ['lstm', 'fused_lstm', 'basic_lstm'])
def test_chrono_sets_the_lstm_forget_gate_to_log_u_and_the_input_gate_to_its_negative(cell):
  values, _ = _initial_values(cell=cell, gate_bias_init='chrono', forget_bias=1.0)
  bias = next(v for k, v in values.items() if k.endswith('lstm_cell/bias:0'))
  i, j, f, o = np.split(bias, 4)
  seen_by_gate = f + 1.0  # the cell adds --forget_bias to f
  assert np.all(seen_by_gate >= 0) and np.all(seen_by_gate <= np.log(111) + 1e-6)
  assert np.unique(seen_by_gate).size == UNITS  # drawn per unit, not one constant
  np.testing.assert_allclose(i, -seen_by_gate, rtol=1e-6)
  assert not j.any() and not o.any()


@pytest.mark.parametrize('cell', ['gru', 'fused_gru'])
def test_chrono_sets_the_gru_update_gate_and_leaves_its_reset_gate(cell):
  values, _ = _initial_values(cell=cell, gate_bias_init='chrono')
  r, u = np.split(values['rnn/rnn/gru_cell/gates/bias:0'], 2)
  np.testing.assert_array_equal(r, np.ones(UNITS))
  assert np.all(u >= 0) and np.all(u <= np.log(111) + 1e-6) and np.unique(u).size == UNITS


def test_default_inits_leave_the_cells_own_values():
  values, _ = _initial_values(cell='lstm')
  assert not values['rnn/rnn/lstm_cell/bias:0'].any()
  recurrent = values['rnn/rnn/lstm_cell/kernel:0'][-UNITS:, :UNITS]
  assert not np.allclose(recurrent @ recurrent.T, np.eye(UNITS), atol=1e-3)


@pytest.mark.parametrize('cell,kernels', [('lstm', ['lstm_cell/kernel']),
                                          ('gru', ['gates/kernel', 'candidate/kernel'])])
def test_orthogonal_makes_each_gates_recurrent_block_orthogonal(cell, kernels):
  values, _ = _initial_values(cell=cell, recurrent_init='orthogonal')
  for name in kernels:
    kernel = next(v for k, v in values.items() if k.endswith(name + ':0'))
    for block in np.split(kernel[-UNITS:], kernel.shape[1] // UNITS, axis=1):
      np.testing.assert_allclose(block @ block.T, np.eye(UNITS), atol=1e-5)
    assert not np.allclose(kernel[:-UNITS] @ kernel[:-UNITS].T, np.eye(7), atol=1e-3)


def test_identity_sets_the_rnn_recurrent_rows_to_i():
  values, _ = _initial_values(cell='rnn', recurrent_init='identity')
  np.testing.assert_array_equal(values['rnn/rnn/basic_rnn_cell/kernel:0'][-UNITS:],
                                np.eye(UNITS))


def test_the_same_seed_gives_the_same_start_and_another_seed_another():
  a, _ = _initial_values(cell='lstm', gate_bias_init='chrono', recurrent_init='orthogonal')
  b, _ = _initial_values(cell='lstm', gate_bias_init='chrono', recurrent_init='orthogonal')
  c, _ = _initial_values(cell='lstm', gate_bias_init='chrono', recurrent_init='orthogonal',
                         seed=1)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  assert not np.array_equal(a['rnn/rnn/lstm_cell/bias:0'], c['rnn/rnn/lstm_cell/bias:0'])


def test_an_init_that_does_not_apply_to_the_cell_is_refused_in_the_library():
  with pytest.raises(ValueError, match='has no gates'):
    _initial_values(cell='rnn', gate_bias_init='chrono')
  with pytest.raises(ValueError, match='rnn only'):
    _initial_values(cell='lstm', recurrent_init='identity')


@pytest.mark.parametrize('optimizer,slot', [('adam', 'Adam'), ('rmsprop', 'RMSProp')])
def test_the_optimizer_flag_builds_that_optimizer(optimizer, slot):
  values, model = _initial_values(cell='lstm', optimizer=optimizer)
  slots = [k for k in values if k.startswith('rnn/rnn/lstm_cell/kernel/')]
  assert slots and all(f'/{slot}' in k for k in slots), slots
  if optimizer == 'rmsprop':  # TF's RMSProp starts its mean square at 1
    assert np.all(values['rnn/rnn/lstm_cell/kernel/RMSProp:0'] == 1.0)
  ops = {op.type for op in model.train_op.graph.get_operations()}
  assert ('ResourceApplyRMSProp' in ops) == (optimizer == 'rmsprop')
  assert ('ResourceApplyAdam' in ops) == (optimizer == 'adam')


@pytest.mark.parametrize('args,fragments', [
    (['--cell=rnn', '--gate_bias_init=chrono'], ['--gate_bias_init=chrono']),
    (['--cell=gru', '--recurrent_init=identity'], ['--recurrent_init=identity']),
    (['--optimizer=sgd'], ['--optimizer']),
    (['--rmsprop_momentum=0.9'], ['--optimizer=rmsprop only']),
    (['--optimizer=rmsprop', '--rmsprop_decay=1.5'], ['rmsprop_decay']),
    (['--gate_bias_init=warm'], ['--gate_bias_init']),
    (['--cell=gru', '--zoneout_c=0.5'], ['--zoneout_c', '--cell=gru has no c']),
    (['--cell=rnn', '--zoneout_c=0.5'], ['--cell=rnn has no c']),
    (['--zoneout_h=1'], ['--zoneout_h=1.0', '[0, 1)']),
    (['--zoneout_c=-0.1'], ['zoneout_c']),
    (['--zoneout_h=0.1', '--num_layers=2'], ['one layer']),
    (['--zoneout_c=0.1', '--bidirectional'], ['one layer']),
    (['--zoneout_h=often'], ['zoneout_h']),
    (['--rotate_degrees=-5'], ['--rotate_degrees=-5', '[0.0, 45.0]']),
    (['--rotate_degrees=90'], ['--rotate_degrees=90', '[0.0, 45.0]']),
    (['--compare', '--compare_cells=lstm,gru', '--zoneout_c=0.5'],
     ['--compare_cells=lstm,gru trains gru', 'has no c']),
    (['--compare', '--compare_cells=lstm,rnn', '--gate_bias_init=chrono'],
     ['trains rnn', '--cell=rnn has no gates']),
])
def test_bad_values_are_one_line_errors(tmp_path, args, fragments):
  result = run_cli(f'--flagfile={SMOKE}', *args, f'--workdir={tmp_path / "run"}', timeout=60)
  assert_one_line_error(result, *fragments)
  assert not os.path.exists(tmp_path / 'run')


def test_a_run_with_the_new_flags_resumes_and_refuses_other_values(tmp_path):
  workdir = str(tmp_path / 'run')
  args = [f'--flagfile={SMOKE}', '--train_examples=128', '--test_examples=64',
          '--gate_bias_init=chrono', '--recurrent_init=orthogonal', '--optimizer=rmsprop',
          '--rmsprop_momentum=0.5', '--lr_schedule=constant', '--rotate_degrees=10',
          '--epochs=1', f'--workdir={workdir}']
  first = run_cli(*args)
  assert first.returncode == 0, first.stderr[-2000:]
  with open(os.path.join(workdir, 'flags.txt')) as f:
    saved = f.read().splitlines()
  for line in ('--gate_bias_init=chrono', '--recurrent_init=orthogonal',
               '--optimizer=rmsprop', '--rmsprop_momentum=0.5', '--rmsprop_decay=0.9',
               '--rotate_degrees=10.0'):
    assert line in saved
  more = run_cli(*args[:-2], '--epochs=2', f'--workdir={workdir}')
  assert more.returncode == 0, more.stderr[-2000:]
  assert 'resuming' in more.stderr and 'epoch 2/2' in more.stderr
  other = run_cli(*[a for a in args if a != '--optimizer=rmsprop'
                    and a != '--rmsprop_momentum=0.5'], '--epochs=2')
  assert_one_line_error(other, '--optimizer: saved rmsprop, requested adam')
