"""The states-vs-outputs check: pure comparison, and on real graphs (True and False)."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_rnn import mnist_data
from mnist_rnn import state_check
from models import cells
from models import classifier
from models import runners

tf1 = tf.compat.v1


def test_compare_equal_different_and_shape_mismatch():
  a = np.array([[1.0, 2.0]], np.float32)
  assert state_check.compare(a, a.copy()) == state_check.Comparison(True, 0.0, 0.0)
  diff = state_check.compare(a, a + np.array([[0.0, 0.25]], np.float32))
  assert not diff.equal and diff.max_abs_diff == 0.25 and diff.differing_fraction == 1.0
  half = state_check.compare(np.zeros((4, 3)), np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0],
                                                         [2, 0, 0]]))
  assert half.differing_fraction == 0.5 and half.max_abs_diff == 2.0
  assert state_check.compare(a, a + 1e-7, atol=1e-6).equal
  assert not state_check.compare(a, a[:, :1]).equal
  assert not state_check.compare(a, np.array([[np.nan, 2.0]])).equal


def test_log_text_and_metrics():
  check = state_check.StateCheck(state_check.Comparison(True, 0.0),
                                 state_check.Comparison(False, 1.25, 1.0))
  assert check.log_text() == ('states.h == outputs[-1]: True (max |diff| 0.0e+00)'
                              ' | c != h (max |c-h| 1.2e+00)')
  assert check.metrics()['state_equals_output'] is True
  assert check.metrics()['c_h_max_abs_diff'] == 1.25


def checks(output, h, c):
  return classifier.CheckTensors(output, h, c, None, None, None)


def _graph(cell_name, runner, time_major=False, with_lengths=False):
  """Builds a bare unrolled cell; returns (session, images, lengths, unrolled, h, c)."""
  graph = tf.Graph()
  with graph.as_default():
    tf1.set_random_seed(0)
    images = tf1.placeholder(tf.float32, [None, 28, 28])
    lengths = tf1.placeholder(tf.int32, [None]) if with_lengths else None
    cell = cells.make_cell(cell_name, 8)
    unrolled = runners.unroll(cell, images, runner, time_major, sequence_length=lengths)
    h, c = cells.hidden_and_cell_state(unrolled.state)
    init = tf1.global_variables_initializer()
  session = tf1.Session(graph=graph)
  session.run(init)
  return session, images, lengths, unrolled, h, c


@pytest.fixture(scope='module')
def batch():
  return mnist_data.load().test.images[:16]


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
@pytest.mark.parametrize('runner, time_major', [('static', False), ('dynamic', False),
                                                ('dynamic', True)],
                         ids=['static', 'dynamic', 'time_major'])
def test_check_is_true_on_the_real_graph(cell, runner, time_major, batch):
  session, images, _, unrolled, h, c = _graph(cell, runner, time_major)
  result = state_check.run_check(session, checks(unrolled.last_output, h, c), {images: batch})
  assert result.h_equals_output.equal and result.h_equals_output.max_abs_diff == 0.0
  if cell == 'lstm':
    assert not result.c_vs_h.equal and result.c_vs_h.max_abs_diff > 0.01
  else:
    assert result.c_vs_h is None


@pytest.mark.parametrize('runner', ['static', 'dynamic'])
def test_check_is_false_when_sequences_end_early(runner, batch):
  # With sequence_length < 28 the runner zeroes outputs past each example's end,
  # while the state keeps the last valid h: outputs[-1] is no longer the state.
  session, images, lengths, unrolled, h, c = _graph('lstm', runner, with_lengths=True)
  short = np.full(len(batch), 20, np.int32)
  result = state_check.run_check(session, checks(unrolled.last_output, h, c),
                                 {images: batch, lengths: short})
  assert not result.h_equals_output.equal and result.h_equals_output.max_abs_diff > 0.01
  assert result.h_equals_output.differing_fraction == 1.0
  full = np.full(len(batch), 28, np.int32)
  result = state_check.run_check(session, checks(unrolled.last_output, h, c),
                                 {images: batch, lengths: full})
  assert result.h_equals_output.equal


def test_check_is_false_against_another_steps_output(batch):
  session, images, _, unrolled, h, _ = _graph('gru', 'static')
  result = state_check.run_check(session, checks(unrolled.outputs[-2], h, None),
                                 {images: batch})
  assert not result.h_equals_output.equal and result.h_equals_output.max_abs_diff > 1e-3
