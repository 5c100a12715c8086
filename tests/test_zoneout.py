"""--zoneout_c and --zoneout_h (models/zoneout.py): the update they make, the masks
(drawn in training from the fed seed, their expectation in evaluation), the
states-vs-outputs equality under them, flags.txt and resume (their bad values:
tests/test_initializers.py)."""

import json
import os

import numpy as np
import pytest

from mnist_rnn import train
from mnist_rnn import workdir as workdir_lib
from models import cells
from models import classifier
from models import config as config_lib
from models import tf_env
from models import zoneout
from tests.test_cli import assert_one_line_error
from tests.test_cli import run_cli
from tests.test_cli import SMOKE

tf = tf_env.tensorflow()
tf1 = tf.compat.v1
UNITS = 4


def _two_steps(cell_name, step_masks):
  """A cell's final state after 2 steps of x, unwrapped and wrapped with `step_masks`
  (a [2, mask features] array), the same weights: (plain states after each step,
  zoned-out final state)."""
  parts = zoneout.rates(cell_name, 0.5, 0.5)
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 3, 5)).astype(np.float32)  # [steps, batch, features]
  graph = tf.Graph()
  with graph.as_default():
    tf1.set_random_seed(1)
    with tf1.variable_scope('rnn'):
      plain, plain_state = tf1.nn.static_rnn(cells.make_cell(cell_name, UNITS),
                                             [tf.constant(v) for v in x], dtype=tf.float32)
    with tf1.variable_scope('rnn', reuse=True):
      first, first_state = tf1.nn.static_rnn(cells.make_cell(cell_name, UNITS),
                                             [tf.constant(x[0])], dtype=tf.float32)
      masks = np.broadcast_to(step_masks[:, None, :], (2, 3, step_masks.shape[1]))
      wrapped = zoneout.ZoneoutWrapper(cells.make_cell(cell_name, UNITS), parts, UNITS)
      inputs = [tf.constant(np.concatenate([x[t], masks[t]], 1).astype(np.float32))
                for t in range(2)]
      outputs, state = tf1.nn.static_rnn(wrapped, inputs, dtype=tf.float32)
    assert {v.name for v in tf1.global_variables()} == {
        v.name for v in tf1.trainable_variables()}  # the wrapper adds no variables
    with tf1.Session(graph=graph) as session:
      session.run(tf1.global_variables_initializer())
      return session.run(((first_state, plain_state), (outputs[-1], state)))


def test_masks_of_zero_are_the_plain_cell_and_ones_keep_the_old_value():
  (after_one, plain), (_, zero) = _two_steps('lstm', np.zeros((2, 2 * UNITS)))
  np.testing.assert_array_equal(zero.c, plain.c)
  np.testing.assert_array_equal(zero.h, plain.h)
  # Step 2 keeps every c of step 1, updates h: c_2 = c_1, h_2 is new.
  keep_c = np.concatenate([np.zeros((2, UNITS)), np.zeros((2, UNITS))], 1)
  keep_c[1, :UNITS] = 1.0
  (after_one, plain), (last, kept) = _two_steps('lstm', keep_c)
  np.testing.assert_array_equal(kept.c, after_one.c)
  assert not np.allclose(kept.h, after_one.h)
  np.testing.assert_array_equal(last, kept.h)  # outputs[-1] is the zoned-out h
  # Half masks (evaluation with z = 0.5) mix old and new.
  half = np.full((2, 2 * UNITS), 0.5)
  (after_one, _), (_, mixed) = _two_steps('lstm', np.concatenate(
      [np.zeros((1, 2 * UNITS)), half[1:]]))
  assert not np.allclose(mixed.c, after_one.c)


def test_a_gru_zones_out_its_state_h():
  (after_one, plain), (last, zero) = _two_steps('gru', np.zeros((2, UNITS)))
  np.testing.assert_array_equal(zero, plain)
  (after_one, _), (last, kept) = _two_steps('gru', np.array([[0.0] * UNITS, [1.0] * UNITS]))
  np.testing.assert_array_equal(kept, after_one)
  np.testing.assert_array_equal(last, kept)


def test_masks_are_bernoulli_of_the_fed_seed_in_training_and_z_in_evaluation():
  parts = zoneout.rates('lstm', 0.5, 0.05)
  assert parts == (('c', 0.5), ('h', 0.05))
  assert zoneout.rates('gru', 0.0, 0.1) == (('h', 0.1),)
  assert zoneout.rates('lstm', 0.0, 0.0) == ()
  graph = tf.Graph()
  with graph.as_default():
    seed = tf1.placeholder(tf.int64, [2])
    training = tf1.placeholder(tf.bool, [])
    masks = zoneout.masks(parts, 64, 32, 50, seed, training)
    with tf1.Session(graph=graph) as session:
      a = session.run(masks, {seed: [1, 2], training: True})
      again = session.run(masks, {seed: [1, 2], training: True})
      other = session.run(masks, {seed: [1, 3], training: True})
      evaluating = session.run(masks, {seed: [1, 2], training: False})
  assert a.shape == (32, 50, 128)
  np.testing.assert_array_equal(a, again)
  assert not np.array_equal(a, other)
  assert set(np.unique(a)) == {0.0, 1.0}
  assert abs(a[..., :64].mean() - 0.5) < 0.02 and abs(a[..., 64:].mean() - 0.05) < 0.01
  np.testing.assert_array_equal(evaluating[..., :64], 0.5)
  np.testing.assert_allclose(evaluating[..., 64:], 0.05)


def test_the_training_loop_feeds_each_batch_its_own_seed():
  first = train.zoneout_seed(0, 1, 5)
  np.testing.assert_array_equal(first, train.zoneout_seed(0, 1, 5))
  assert first.dtype == np.int64 and first.shape == (2,)
  others = {tuple(train.zoneout_seed(s, e, b)) for s, e, b in
            [(0, 1, 6), (0, 2, 5), (1, 1, 5)]}
  assert tuple(first) not in others and len(others) == 3


@pytest.mark.parametrize('cell,runner,time_major', [
    ('lstm', 'static', False), ('fused_lstm', 'dynamic', True), ('gru', 'dynamic', False),
    ('fused_gru', 'static', False)])
def test_states_h_equals_outputs_last_with_zoneout_in_training_and_evaluation(
    cell, runner, time_major):
  config = config_lib.ModelConfig(cell=cell, runner=runner, time_major=time_major,
                                  num_units=UNITS, pixels_per_step=14, towers=2,
                                  zoneout_c=0.5 if 'lstm' in cell else 0.0, zoneout_h=0.3)
  images = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    model = classifier.build(config, batch_size=6)
    with tf1.Session(graph=graph) as session:
      session.run(model.init)
      fetch = [model.check.output, model.check.h, model.logits]
      feed = classifier.feed_dict(model, images)
      train_feed = {**feed, model.training: True, model.zoneout_seed: [3, 4]}
      evaluating = session.run(fetch, feed)
      trained = session.run(fetch, train_feed)
      trained_again = session.run(fetch, train_feed)
      other_seed = session.run(fetch, {**train_feed, model.zoneout_seed: [3, 5]})
  for output, h, _ in (evaluating, trained, other_seed):
    np.testing.assert_array_equal(output, h)
  # The masks matter, and the same seed draws the same ones.
  assert not np.allclose(evaluating[2], trained[2])
  assert not np.allclose(trained[2], other_seed[2])
  np.testing.assert_array_equal(trained[2], trained_again[2])


def test_without_zoneout_the_graph_has_no_masks():
  graph = tf.Graph()
  with graph.as_default():
    model = classifier.build(config_lib.ModelConfig(num_units=UNITS, pixels_per_step=28,
                                                    towers=1), batch_size=2)
    assert model.training is None and model.zoneout_seed is None
    names = {op.name for op in graph.get_operations()}
    assert 'zoneout_seed' not in names and 'training' not in names
  with tf.Graph().as_default() as graph:
    classifier.build(config_lib.ModelConfig(num_units=UNITS, pixels_per_step=28, towers=1,
                                            zoneout_h=0.1), batch_size=2)
    names = {op.name for op in graph.get_operations()}
    assert 'zoneout_seed' in names and 'training' in names


def test_the_library_refuses_zoneout_it_cannot_apply():
  for changes, fragment in [(dict(cell='gru', zoneout_c=0.1), 'has no c'),
                            (dict(num_layers=2, zoneout_h=0.1), 'one layer'),
                            (dict(zoneout_h=1.0), '[0, 1)')]:
    with tf.Graph().as_default(), pytest.raises(ValueError) as raised:
      classifier.build(config_lib.ModelConfig(num_units=UNITS, runner='dynamic',
                                              **changes), batch_size=2)
    assert fragment in str(raised.value)


def test_a_zoneout_run_resumes_exactly_and_refuses_other_rates(tmp_path):
  """flags.txt keeps the rates; two epochs in two processes give the very numbers of
  two epochs in one (each batch's masks come from its own seed); another rate, or
  zoneout asked of a folder trained without it, is refused in one line."""
  common = [f'--flagfile={SMOKE}', '--train_examples=128', '--test_examples=64',
            '--num_units=8', '--lr_schedule=constant', '--zoneout_c=0.5', '--zoneout_h=0.05']
  whole, parts = str(tmp_path / 'whole'), str(tmp_path / 'parts')
  assert run_cli(*common, '--epochs=2', f'--workdir={whole}').returncode == 0
  first = run_cli(*common, '--epochs=1', f'--workdir={parts}')
  assert first.returncode == 0, first.stderr[-2000:]
  with open(os.path.join(parts, 'flags.txt')) as f:
    saved = f.read().splitlines()
  assert '--zoneout_c=0.5' in saved and '--zoneout_h=0.05' in saved
  more = run_cli(*common, '--epochs=2', f'--workdir={parts}')
  assert more.returncode == 0, more.stderr[-2000:]
  assert 'resuming' in more.stderr

  def epoch_two(folder):
    with open(os.path.join(folder, 'metrics.jsonl')) as f:
      row = [json.loads(line) for line in f][1]
    return {k: row[k] for k in ('train_loss', 'train_accuracy', 'test_loss',
                                'test_accuracy', 'state_equals_output')}
  assert epoch_two(parts) == epoch_two(whole)
  other = run_cli(*common[:-1], '--zoneout_h=0.1', '--epochs=2', f'--workdir={parts}')
  assert_one_line_error(other, '--zoneout_h: saved 0.05, requested 0.1')


def test_a_folder_from_before_the_flags_counts_as_trained_without_zoneout():
  before = workdir_lib.parse_flag_lines('--cell=lstm\n--seed=0\n')
  without = {'cell': 'lstm', 'seed': '0', 'zoneout_c': '0.0', 'zoneout_h': '0.0'}
  assert workdir_lib.resume_conflicts(before, without) == []
  assert workdir_lib.resume_conflicts(before, {**without, 'zoneout_c': '0.5'}) == [
      '--zoneout_c: saved 0.0, requested 0.5']
  assert workdir_lib.resume_conflicts({}, {**without, 'zoneout_c': '0.5'}) == []


def test_inspect_names_the_zoneout_and_still_shows_the_equality():
  from mnist_rnn import inspect_graph  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(1).random((3, 28, 28)).astype(np.float32)
  text = inspect_graph.inspect(config_lib.ModelConfig(
      cell='lstm', runner='dynamic', num_units=8, zoneout_c=0.5, zoneout_h=0.05), images)
  assert 'zoneout c=0.5 h=0.05' in text and '16 mask features' in text, text
  assert '[batch, time, units] = [3, 28, 8]' in text, text
  assert 'states.h == outputs[-1]: True (max |diff| 0.0e+00)' in text, text
