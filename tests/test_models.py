"""Graph shapes for every cell x runner, and static/dynamic parity on the same weights."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_rnn import config as config_lib
from mnist_rnn import mnist_data
from models import classifier

tf1 = tf.compat.v1

VARIANTS = [('lstm', 'static', False), ('lstm', 'dynamic', False), ('lstm', 'dynamic', True),
            ('gru', 'static', False), ('gru', 'dynamic', False), ('gru', 'dynamic', True)]
IDS = [f'{c}-{r}' + ('-time_major' if t else '') for c, r, t in VARIANTS]
UNITS = 16


def _build(cell, runner, time_major, seed=0, towers=1, batch_size=None):
  graph = tf.Graph()
  with graph.as_default():
    model = classifier.build(config_lib.ModelConfig(
        cell=cell, runner=runner, time_major=time_major, num_units=UNITS, seed=seed,
        towers=towers), batch_size=batch_size)
    init = tf1.global_variables_initializer()
  session = tf1.Session(graph=graph)
  session.run(init)
  return graph, model, session


@pytest.fixture(scope='module')
def images():
  return mnist_data.load().test.images[:5]


@pytest.mark.parametrize('cell, runner, time_major', VARIANTS, ids=IDS)
def test_outputs_and_states_have_the_tutorial_shapes(cell, runner, time_major, images):
  _, model, session = _build(cell, runner, time_major)
  outputs, state = model.unrolled.outputs, model.unrolled.state
  if runner == 'static':
    assert isinstance(outputs, list) and len(outputs) == 28
    assert all(o.shape.as_list() == [None, UNITS] for o in outputs)
  elif time_major:
    assert outputs.shape.as_list() == [28, None, UNITS]
  else:
    assert outputs.shape.as_list() == [None, 28, UNITS]
  if cell == 'lstm':
    assert isinstance(state, tf1.nn.rnn_cell.LSTMStateTuple)
    assert state.c.shape.as_list() == [None, UNITS] and model.final_c is state.c
    assert model.final_h is state.h
  else:
    assert model.final_c is None and model.final_h is state
  values = session.run({'last': model.last_output, 'h': model.final_h,
                        'logits': model.logits}, {model.images: images})
  assert values['last'].shape == (5, UNITS) and values['h'].shape == (5, UNITS)
  assert values['logits'].shape == (5, 10)


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
@pytest.mark.parametrize('runner, time_major', [('dynamic', False), ('dynamic', True)],
                         ids=['batch_major', 'time_major'])
def test_static_and_dynamic_agree_on_the_same_weights(cell, runner, time_major, images):
  static_graph, static, static_session = _build(cell, 'static', False, seed=1)
  dynamic_graph, dynamic, dynamic_session = _build(cell, runner, time_major, seed=2, towers=2)
  with static_graph.as_default():
    weights = {v.op.name: static_session.run(v) for v in tf1.trainable_variables()}
  with dynamic_graph.as_default():
    variables = tf1.trainable_variables()
    assert sorted(v.op.name for v in variables) == sorted(weights)  # same names
    for v in variables:
      v.load(weights[v.op.name], dynamic_session)
  a = static_session.run(static.last_output, {static.images: images})
  b = dynamic_session.run(dynamic.last_output, {dynamic.images: images})
  assert np.max(np.abs(a - b)) <= 1e-5
  assert np.max(np.abs(a)) > 1e-3  # not trivially zero


def test_wrong_runner_and_static_time_major_are_refused():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='dynamic runner only'):
      classifier.build(config_lib.ModelConfig(runner='static', time_major=True))
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='unknown runner'):
      classifier.build(config_lib.ModelConfig(runner='sideways'))


def _copy_weights(source_graph, source_session, target_graph, target_session):
  with source_graph.as_default():
    weights = {v.op.name: source_session.run(v) for v in tf1.trainable_variables()}
  with target_graph.as_default():
    variables = tf1.trainable_variables()
    assert sorted(v.op.name for v in variables) == sorted(weights)  # shared, not copied
    for v in variables:
      v.load(weights[v.op.name], target_session)


@pytest.mark.parametrize('runner', ['static', 'dynamic'])
def test_towers_compute_the_same_model_as_one_graph(runner):
  images = mnist_data.load().test.take(7)  # odd: the towers get 4 and 3 examples
  one_graph, one, one_session = _build('lstm', runner, False, towers=1)
  two_graph, two, two_session = _build('lstm', runner, False, towers=2)
  _copy_weights(one_graph, one_session, two_graph, two_session)
  feed = lambda m: {m.images: images.images, m.labels: images.labels}
  a = one_session.run([one.logits, one.loss, one.last_output, one.final_h], feed(one))
  b = two_session.run([two.logits, two.loss, two.last_output, two.final_h], feed(two))
  for x, y in zip(a, b):
    assert np.max(np.abs(np.asarray(x) - np.asarray(y))) <= 1e-6
  # A batch smaller than the number of towers leaves one empty, and still works.
  single = two_session.run(two.logits, {two.images: images.images[:1]})
  assert np.max(np.abs(single - a[0][:1])) <= 1e-6


@pytest.mark.parametrize('cell, runner, time_major', VARIANTS, ids=IDS)
def test_a_fixed_batch_graph_has_no_runtime_shape_ops(cell, runner, time_major):
  # With the batch size known, the gradients of the cells' multiplies and adds need no
  # Shape/BroadcastGradientArgs ops: why the trainer builds its graph this way.
  fixed_graph, fixed, _ = _build(cell, runner, time_major, towers=2, batch_size=8)
  any_graph, _, _ = _build(cell, runner, time_major, towers=2)
  types = lambda g: [op.type for op in g.get_operations()]
  assert fixed.images.shape.as_list() == [8, 28, 28]
  assert fixed.last_output.shape.as_list() == [8, UNITS]
  assert 'BroadcastGradientArgs' not in types(fixed_graph)
  assert 'Shape' not in types(fixed_graph)
  assert 'BroadcastGradientArgs' in types(any_graph)
  assert len(types(fixed_graph)) < len(types(any_graph))


@pytest.mark.parametrize('runner', ['static', 'dynamic'])
def test_a_padded_short_batch_trains_and_scores_like_the_batch_alone(runner):
  # 5 real images fed to a graph built for 8: the 3 padding rows must change nothing.
  data = mnist_data.load().test.take(5)
  any_graph, any_batch, any_session = _build('lstm', runner, False, towers=2)
  fixed_graph, fixed, fixed_session = _build('lstm', runner, False, towers=2, batch_size=8)
  _copy_weights(any_graph, any_session, fixed_graph, fixed_session)
  fetch = lambda m: [m.logits, m.loss, m.correct, m.final_h, m.last_output]
  a = any_session.run(fetch(any_batch), classifier.feed_dict(
      any_batch, data.images, data.labels))
  feed = classifier.feed_dict(fixed, data.images, data.labels)
  assert feed[fixed.images].shape == (8, 28, 28) and feed[fixed.valid_examples] == 5
  b = fixed_session.run(fetch(fixed), feed)
  for x, y in zip(a, b):
    x, y = np.asarray(x), np.asarray(y)
    y = y[:5] if y.ndim else y  # per-example tensors: the padding rows dropped
    assert x.shape == y.shape and np.max(np.abs(x - y)) <= 1e-6
  assert b[0].shape == (8, 10)
  # The same gradients (Adam's first step would hide a scale), and a training step
  # counts 5 examples.
  def gradients(graph, m, session):
    with graph.as_default():
      variables = tf1.trainable_variables()
      values = session.run(tf1.gradients(m.loss, variables),
                           classifier.feed_dict(m, data.images, data.labels))
    return {v.op.name: g for v, g in zip(variables, values)}
  want = gradients(any_graph, any_batch, any_session)
  got = gradients(fixed_graph, fixed, fixed_session)
  for name, g in want.items():
    assert np.max(np.abs(got[name] - g)) <= 1e-6 * max(1.0, np.max(np.abs(g))), name
  fixed_session.run(fixed.train_op, classifier.feed_dict(fixed, data.images, data.labels,
                                                         {fixed.learning_rate: 1e-2}))
  assert fixed_session.run(fixed.epoch_metrics)['seen'] == 5
  assert fixed_session.run(fixed.epoch_metrics)['correct'] == a[2]


def test_run_rows_fetches_any_number_of_images_through_a_fixed_batch():
  images = mnist_data.load().test.images[:19]  # 8 + 8 + 3 padded
  any_graph, any_batch, any_session = _build('gru', 'static', False)
  fixed_graph, fixed, fixed_session = _build('gru', 'static', False, batch_size=8)
  _copy_weights(any_graph, any_session, fixed_graph, fixed_session)
  want = any_session.run(any_batch.final_h, {any_batch.images: images})
  got = classifier.run_rows(fixed_session, fixed, {'h': fixed.final_h}, images)['h']
  assert got.shape == (19, UNITS) and np.max(np.abs(got - want)) <= 1e-6
  with pytest.raises(ValueError, match='a batch of 9 images does not fit a graph built'
                     ' for batches of 8'):
    classifier.feed_dict(fixed, images[:9])
