"""Beyond the tutorial: every cell, stacked layers, bidirectional runs and trimmed
lengths, with the check's True/False values asserted on real graphs."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mnist_rnn import config as config_lib
from mnist_rnn import equalities
from mnist_rnn import inspect_graph
from mnist_rnn import mnist_data
from mnist_rnn import state_check
from models import config as model_config

tf1 = tf.compat.v1
UNITS = 12


@pytest.fixture(scope='module')
def images():
  return mnist_data.load().test.images[:32]


def build_and_run(config, images, fetches):
  model, graph, values = inspect_graph.run_fresh(config, images, fetches)
  return model, graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES), values


def config(**changes):
  return dataclasses.replace(config_lib.ModelConfig(num_units=UNITS), **changes)


def last_inked_row(images):
  """The test's own reference: 1 + the last row with ink (1 for a blank image)."""
  inked = images.any(axis=2)
  return np.where(inked.any(axis=1), 28 - np.argmax(inked[:, ::-1], axis=1), 1)


def test_trimmed_lengths_end_at_the_last_inked_row():
  images = np.zeros((3, 28, 28), np.float32)
  images[0, 5, 3] = 0.5
  images[1, 27, 0] = 1.0
  _, _, lengths = build_and_run(config(sequence_length='trimmed'), images,
                                lambda m: m.lengths)
  assert lengths.tolist() == [6, 28, 1] == last_inked_row(images).tolist()
  assert lengths.dtype == np.int32


@pytest.mark.parametrize('cell', model_config.CELLS)
@pytest.mark.parametrize('runner', ['static', 'dynamic'])
def test_every_cell_keeps_h_equal_to_outputs_last(cell, runner, images):
  check = equalities.check_configuration(config(cell=cell, runner=runner), images)
  assert check.h_equals_output.equal and check.h_equals_output.max_abs_diff == 0.0
  assert (check.c_vs_h is not None) == (cell in ('lstm', 'basic_lstm', 'fused_lstm'))
  if check.c_vs_h is not None:
    assert not check.c_vs_h.equal


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
@pytest.mark.parametrize('runner', ['static', 'dynamic'])
def test_stacked_layers_have_fresh_cells_and_the_top_layer_matches(cell, runner, images):
  model, variables, values = build_and_run(
      config(cell=cell, runner=runner, num_layers=3), images,
      lambda m: {'state': m.unrolled.state, 'h': m.final_h, 'out': m.last_output})
  assert isinstance(model.unrolled.state, tuple) and len(model.unrolled.state) == 3
  kernels = [v.op.name for v in variables if 'kernel' in v.op.name]
  # One set of weights per layer (a reused cell would share one).
  assert len({name.split('/cell_')[1].split('/')[0] for name in kernels}) == 3
  top = values['state'][-1]
  top_h = top.h if cell == 'lstm' else top
  np.testing.assert_array_equal(values['h'], top_h)
  np.testing.assert_array_equal(values['h'], values['out'])
  lower_h = values['state'][0].h if cell == 'lstm' else values['state'][0]
  assert np.max(np.abs(lower_h - values['out'])) > 1e-3  # lower layers are not outputs


@pytest.mark.parametrize('runner, time_major', [('static', False), ('dynamic', False),
                                                ('dynamic', True)],
                         ids=['static', 'dynamic', 'time_major'])
def test_bidirectional_forward_true_backward_first_true_backward_last_false(
    runner, time_major, images):
  check = equalities.check_configuration(
      config(runner=runner, time_major=time_major, bidirectional=True), images)
  assert check.h_equals_output.equal
  assert check.backward_h_vs_first.equal and check.backward_h_vs_first.max_abs_diff == 0
  assert not check.backward_h_vs_last.equal and check.backward_h_vs_last.max_abs_diff > 1e-3
  assert check.metrics()['backward_state_equals_last_output'] is False
  model, _, values = build_and_run(
      config(runner=runner, time_major=time_major, bidirectional=True), images,
      lambda m: {'head': m.head_input})
  assert values['head'].shape == (32, 2 * UNITS)


@pytest.mark.parametrize('runner', ['static', 'dynamic'])
@pytest.mark.parametrize('head_input', ['outputs_last', 'last_relevant', 'state_h'])
def test_trimmed_lengths_break_the_equality_and_each_head_input(runner, head_input, images):
  cfg = config(cell='gru', runner=runner, sequence_length='trimmed', head_input=head_input)
  _, _, (checked, values) = build_and_run(cfg, images, lambda m: (
      inspect_graph.check_tensors(m),
      {'head': m.head_input, 'h': m.final_h, 'out': m.last_output}))
  check = state_check.from_values(checked)
  lengths = last_inked_row(images)
  short = np.mean(lengths < 28)
  assert short > 0.5
  assert not check.h_equals_output.equal
  assert check.h_equals_output.differing_fraction == pytest.approx(short)
  assert not values['out'][lengths < 28].any()  # outputs[-1] is zeros for short images
  if head_input == 'outputs_last':
    np.testing.assert_array_equal(values['head'], values['out'])
  else:  # both fixes feed each example's last valid output, which the state kept
    np.testing.assert_array_equal(values['head'], values['h'])
    assert values['head'][lengths < 28].any()


def test_inspect_explains_stacked_bidirectional_and_trimmed(images):
  text = inspect_graph.inspect(config(num_layers=2, bidirectional=True), images[:3])
  assert ('states: ((LSTMStateTuple(c=[3, 12], h=[3, 12]), LSTMStateTuple(c=[3, 12],'
          ' h=[3, 12])), (LSTMStateTuple') in text
  assert 'backward states.h == backward outputs[0]: True' in text
  assert 'backward states.h == backward half of outputs[-1]: False' in text
  text = inspect_graph.inspect(config(cell='rnn', sequence_length='trimmed'), images[:3])
  assert 'outputs[-1] is all zeros for 100% of examples' in text
  assert 'states.h == outputs[-1]: False' in text
