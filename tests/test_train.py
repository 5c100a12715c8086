"""The training loop's pieces: one real step, schedule, shuffling, metrics file, workdir."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mnist_rnn import augment
from mnist_rnn import config as config_lib
from mnist_rnn import metrics_log
from mnist_rnn import mnist_data
from mnist_rnn import train
from mnist_rnn import workdir
from models import classifier

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def small_data():
  data = mnist_data.load()
  return mnist_data.Mnist(data.train.take(256), data.test.take(128))


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_one_training_step_changes_every_weight(tmp_path, small_data, cell):
  config = config_lib.TrainConfig(
      model=config_lib.ModelConfig(cell=cell, num_units=16), workdir=str(tmp_path),
      batch_size=32, epochs=1)
  trainer = train.Trainer(config, small_data)
  try:
    trainer.restore_or_init()
    m = trainer.model
    with trainer.graph.as_default():
      weights = tf1.trainable_variables()
    before = trainer.session.run(weights)
    trainer.session.run(m.train_op, {m.images: small_data.train.images[:32],
                                     m.labels: small_data.train.labels[:32],
                                     m.learning_rate: 1e-2})
    after = trainer.session.run(weights)
    assert [v.op.name for v in weights]  # the RNN kernel/biases and the head
    for v, a, b in zip(weights, before, after):
      assert not np.array_equal(a, b), f'{v.op.name} did not change'
    assert trainer.session.run(m.global_step) == 1
    assert trainer.session.run(m.epoch_metrics)['seen'] == 32
  finally:
    trainer.close()


def test_a_short_last_batch_is_trained_and_evaluated_exactly_once(tmp_path, small_data):
  # 100 train images in batches of 32 (the graph's fixed size): 32, 32, 32, then 4
  # padded to 32. 70 test images: 32, 32, 6.
  data = mnist_data.Mnist(small_data.train.take(100), small_data.test.take(70))
  config = config_lib.TrainConfig(model=config_lib.ModelConfig(num_units=16),
                                  workdir=str(tmp_path), batch_size=32, epochs=1)
  trainer = train.Trainer(config, data)
  try:
    trainer.restore_or_init()
    m = trainer.model
    assert trainer.steps_per_epoch == 4
    examples, _, _ = trainer.train_epoch(1, 0, lambda: False)
    sums = trainer.session.run(m.epoch_metrics)
    assert examples == 100 and sums['seen'] == 100
    assert trainer.session.run(m.global_step) == 4
    loss, accuracy = trainer.evaluate(data.test)
    logits = classifier.run_rows(trainer.session, m, {'logits': m.logits},
                                 data.test.images)['logits']
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-np.mean(log_p[np.arange(70), data.test.labels]), rel=1e-5)
    assert accuracy == np.mean(logits.argmax(axis=1) == data.test.labels)
  finally:
    trainer.close()


@pytest.mark.parametrize('rotate_degrees', [0.0, 15.0])
def test_batches_made_ahead_are_the_epochs_batches_in_order(tmp_path, small_data,
                                                            rotate_degrees):
  """train_epoch makes each batch's feed on a second thread while the step before it
  runs: the steps still get exactly the batches of (seed, epoch, batch), in order, also
  when an epoch resumes mid-way; rotations are drawn from the batch's own generator
  before its shifts, and without them the shifts are those drawn before the flag."""
  data = mnist_data.Mnist(small_data.train.take(100), small_data.test.take(32))
  config = config_lib.TrainConfig(model=config_lib.ModelConfig(num_units=8, seed=5),
                                  workdir=str(tmp_path), batch_size=32, epochs=3,
                                  rotate_degrees=rotate_degrees)
  trainer = train.Trainer(config, data)
  fed = []

  class Recording:
    def __init__(self, session):
      self.session = session

    def run(self, fetches, feed_dict=None):
      fed.append(feed_dict)
      return self.session.run(fetches, feed_dict)
  try:
    trainer.restore_or_init()
    m = trainer.model
    trainer.session = Recording(trainer.session)
    examples, _, _ = trainer.train_epoch(2, 1, lambda: False)  # resumed at batch 1 of 4
    assert examples == 32 + 32 + 4 and len(fed) == 3
    order = train.epoch_order(5, 2, 100)
    for b, feed in zip((1, 2, 3), fed):
      idx = order[b * 32:(b + 1) * 32]
      rng = train.batch_rng(5, 2, b)
      if rotate_degrees:
        images = augment.random_shift(
            augment.random_rotation(data.train.images[idx], rotate_degrees, rng), 2, rng)
      else:  # exactly the batches of the runs before --rotate_degrees
        images = augment.random_shift(data.train.images[idx], 2, rng)
      n = len(idx)
      np.testing.assert_array_equal(feed[m.images][:n], images)
      np.testing.assert_array_equal(feed[m.labels][:n], data.train.labels[idx])
      assert feed[m.learning_rate] == train.learning_rate_at(4 + b, 12, 1e-3, 'cosine')
    assert fed[-1][m.valid_examples] == 4 and not fed[-1][m.images][4:].any()
  finally:
    trainer.session = getattr(trainer.session, 'session', trainer.session)
    trainer.close()


def test_cosine_schedule():
  assert train.learning_rate_at(0, 100, 1e-3, 'cosine') == pytest.approx(1e-3)
  assert train.learning_rate_at(50, 100, 1e-3, 'cosine') == pytest.approx(5e-4)
  assert train.learning_rate_at(100, 100, 1e-3, 'cosine') == pytest.approx(0.0)
  assert train.learning_rate_at(70, 100, 1e-3, 'constant') == 1e-3


def test_epoch_order_depends_only_on_seed_and_epoch():
  a = train.epoch_order(0, 1, 1000)
  np.testing.assert_array_equal(a, train.epoch_order(0, 1, 1000))
  assert sorted(a) == list(range(1000))
  assert not np.array_equal(a, train.epoch_order(0, 2, 1000))
  assert not np.array_equal(a, train.epoch_order(1, 1, 1000))


def test_metrics_log_drops_cut_lines_and_later_epochs(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  for epoch in (1, 2, 3):
    metrics_log.append(path, {'epoch': epoch, 'test_accuracy': epoch / 10})
  with open(path, 'a') as f:
    f.write('{"epoch": 4, "test_acc')  # killed mid-write
  assert [r['epoch'] for r in metrics_log.read(path)] == [1, 2, 3]
  kept, unreadable, lost = metrics_log.truncate_after(path, 2)
  assert [r['epoch'] for r in kept] == [1, 2] and lost == []
  with open(path) as f:
    assert [json.loads(line)['epoch'] for line in f] == [1, 2]
  # The cut line is not destroyed: it is kept aside with its line number.
  assert unreadable == [(4, '{"epoch": 4, "test_acc', 'cut short')]
  assert open(path + '.unreadable').read() == 'line 4: {"epoch": 4, "test_acc\n'


def test_metrics_log_keeps_a_corrupted_line_aside_and_recreates_its_epoch(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  for epoch in (1, 2, 3):
    metrics_log.append(path, {'epoch': epoch, 'test_accuracy': epoch / 10})
  lines = open(path).read().splitlines(keepends=True)
  lines[1] = '{"epoch": 2, "test_accuracy": 0.2\x00\x00}\n'  # corrupted on disk
  open(path, 'w').writelines(lines)
  asked = []
  kept, unreadable, lost = metrics_log.truncate_after(
      path, 3, recreate=lambda e: asked.append(e) or ({'epoch': e, 'again': 1} if e == 2
                                                      else None))
  assert asked == [2] and lost == []
  assert [r['epoch'] for r in kept] == [1, 2, 3] and kept[1] == {'epoch': 2, 'again': 1}
  assert [(n, why) for n, _, why in unreadable] == [(2, 'not JSON')]
  assert open(path + '.unreadable').read().startswith('line 2: {"epoch": 2')
  # An epoch nothing can re-create stays missing, and says so.
  assert metrics_log.truncate_after(path, 4)[2] == [4]


def test_workdir_must_be_writable(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(workdir.WorkdirError, match='cannot create'):
    with workdir.created(str(blocker / 'sub')):
      pass
  with pytest.raises(workdir.WorkdirError, match='not a folder'):
    workdir.check_writable(str(blocker), [])
  with pytest.raises(workdir.WorkdirError, match='not writable'):
    with workdir.created('/proc'):  # exists, but not even root can write in it
      pass
  with workdir.created(str(tmp_path / 'new' / 'dir')):
    pass
  assert os.path.isdir(tmp_path / 'new' / 'dir')


def test_a_failed_setup_removes_only_the_folders_it_created(tmp_path):
  (tmp_path / 'old').mkdir()
  with pytest.raises(RuntimeError):
    with workdir.created(str(tmp_path / 'old' / 'new' / 'run')):
      assert os.path.isdir(tmp_path / 'old' / 'new' / 'run')
      raise RuntimeError('set-up failed')
  assert os.listdir(tmp_path) == ['old'] and os.listdir(tmp_path / 'old') == []
  with pytest.raises(RuntimeError):
    with workdir.created(str(tmp_path / 'old')):
      raise RuntimeError('set-up failed')
  assert os.path.isdir(tmp_path / 'old')  # it existed before: kept


def test_default_workdir_names_every_setting_that_changes_the_result():
  base = config_lib.TrainConfig()
  assert config_lib.default_workdir(base) == os.path.join('runs', 'lstm_static')
  assert config_lib.default_workdir(base, compare=True) == os.path.join('runs', 'compare')
  gru = dataclasses.replace(base, epochs=3, train_examples=20000,
                            model=dataclasses.replace(base.model, cell='gru', seed=1))
  assert config_lib.default_workdir(gru) == os.path.join(
      'runs', 'gru_static_seed1_epochs3_train_examples20000')
  # Speed settings compute the same run: the same folder.
  fast = dataclasses.replace(base, intra_op_threads=2,
                             model=dataclasses.replace(base.model, towers=1))
  assert config_lib.default_workdir(fast) == config_lib.default_workdir(base)
  # Every other flag, changed alone, gets a folder of its own.
  names = {config_lib.default_workdir(base)}
  for key, value in [('epochs', 3), ('batch_size', 64), ('learning_rate', 0.002),
                     ('lr_schedule', 'constant'), ('shift_pixels', 0),
                     ('train_examples', 100), ('test_examples', 100),
                     ('data_dir', '/data/fashion/')]:
    names.add(config_lib.default_workdir(dataclasses.replace(base, **{key: value})))
  for key, value in [('num_units', 64), ('forget_bias', 0.0), ('clip_norm', 0.0),
                     ('seed', 2), ('num_layers', 2), ('bidirectional', True),
                     ('sequence_length', 'trimmed'), ('head_input', 'state_h')]:
    model = dataclasses.replace(base.model, **{key: value})
    names.add(config_lib.default_workdir(dataclasses.replace(base, model=model)))
  assert len(names) == 17
  assert os.path.join('runs', 'lstm_static_data_dir_fashion') in names


def test_flag_lines_round_trip_and_conflicts():
  saved = workdir.parse_flag_lines('# comment\n--cell=gru\n--notime_major\n--num_units=64\n')
  assert saved == {'cell': 'gru', 'time_major': 'false', 'num_units': '64'}
  requested = {'cell': 'lstm', 'time_major': 'false', 'num_units': '64', 'epochs': '9'}
  assert workdir.resume_conflicts(saved, requested) == ['--cell: saved gru, requested lstm']


def test_random_shift_moves_each_image_within_bounds():
  images = np.zeros((64, 28, 28), np.float32)
  images[:, 10:18, 10:18] = 1.0
  shifted = augment.random_shift(images, 2, np.random.default_rng(0))
  assert shifted.shape == images.shape and shifted.sum() == images.sum()  # nothing cut
  rows = [np.argmax(s.any(axis=1)) for s in shifted]
  cols = [np.argmax(s.any(axis=0)) for s in shifted]
  assert set(rows) == set(range(8, 13)) and set(cols) == set(range(8, 13))
  assert augment.random_shift(images, 0, np.random.default_rng(0)) is images


def test_random_rotation_turns_about_the_centre():
  """A quarter turn moves every pixel exactly (no interpolation): the image is
  np.rot90's; small angles keep a central blob's ink and its centre of mass."""

  class Fixed:  # an rng whose angles are given
    def __init__(self, angles):
      self.angles = np.asarray(angles, np.float64)

    def uniform(self, low, high, n):
      assert (low, high, n) == (-90.0, 90.0, len(self.angles))
      return self.angles

  images = np.random.default_rng(2).random((2, 28, 28), np.float32)
  turned = augment.random_rotation(images, 90.0, Fixed([90.0, -90.0]))
  np.testing.assert_allclose(turned[0], np.rot90(images[0], k=-1), atol=1e-5)
  np.testing.assert_allclose(turned[1], np.rot90(images[1], k=1), atol=1e-5)
  assert turned.dtype == np.float32 and turned.shape == images.shape
  blob = np.zeros((64, 28, 28), np.float32)
  blob[:, 11:17, 11:17] = 1.0
  rng = np.random.default_rng(3)
  small = augment.random_rotation(blob, 15.0, rng)
  np.testing.assert_allclose(small.sum(axis=(1, 2)), blob[0].sum(), rtol=0.02)
  ys, xs = np.mgrid[0:28, 0:28]
  for image in small:
    centre = ((image * ys).sum() / image.sum(), (image * xs).sum() / image.sum())
    np.testing.assert_allclose(centre, (13.5, 13.5), atol=1e-3)
  assert any(not np.array_equal(image, blob[0]) for image in small)  # turned at all
  before = rng.bit_generator.state
  assert augment.random_rotation(blob, 0.0, rng) is blob
  assert rng.bit_generator.state == before  # 0 draws nothing


def test_random_rotation_draws_each_angle_within_the_bound():
  """Each image is the one scipy.ndimage.rotate turns by that image's drawn angle."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(4).random((50, 28, 28), np.float32)
  turned = augment.random_rotation(images, 20.0, np.random.default_rng(9))
  angles = np.random.default_rng(9).uniform(-20.0, 20.0, 50)
  assert np.abs(angles).max() <= 20.0 and np.abs(angles).max() > 15.0
  for image, out, angle in zip(images, turned, angles):
    # ndimage.rotate's angle runs the other way in row-down coordinates.
    expected = ndimage.rotate(image, -angle, reshape=False, order=1, mode='constant')
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize('max_shift', [1, 2, 3])
def test_random_shift_equals_reading_a_zero_padded_image_at_the_drawn_offset(max_shift):
  # Ink up to the edges, so pixels shifted out are cut and zeros shifted in.
  images = np.random.default_rng(1).random((1000, 28, 28), np.float32)
  shifted = augment.random_shift(images, max_shift, np.random.default_rng(7))
  rng = np.random.default_rng(7)  # the same draws: top offsets, then left offsets
  top = rng.integers(0, 2 * max_shift + 1, 1000)
  left = rng.integers(0, 2 * max_shift + 1, 1000)
  padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
  for k in range(1000):
    np.testing.assert_array_equal(shifted[k], padded[k, top[k]:top[k] + 28, left[k]:left[k] + 28])
  assert len(set(zip(top, left))) == (2 * max_shift + 1) ** 2  # every offset was drawn


def test_the_validation_split_is_the_end_of_the_training_set():
  train = mnist_data.Split(np.arange(100, dtype=np.float32).reshape(100, 1, 1),
                           np.arange(100) % 10)
  rest, validation = mnist_data.hold_out(train, 10)
  assert rest.images[:, 0, 0].tolist() == list(range(90))
  assert validation.images[:, 0, 0].tolist() == list(range(90, 100))
  assert len(mnist_data.hold_out(train, 0)[1]) == 0
  with pytest.raises(mnist_data.DataError, match='leaves no training example of the 100'):
    mnist_data.hold_out(train, 100)


def test_the_best_epoch_is_chosen_on_validation_never_on_test():
  # Test accuracy peaks at epoch 2; validation at epoch 3 (and equals it at epoch 4).
  history, previous = [], None
  for epoch, (val, test) in enumerate([(0.90, 0.91), (0.92, 0.99), (0.95, 0.93),
                                       (0.95, 0.97)], start=1):
    previous = train.best_on_validation(previous, epoch, val, test)
    history.append(previous)
  assert [h['best_validation_epoch'] for h in history] == [1, 2, 3, 3]
  assert history[-1] == {'best_validation_accuracy': 0.95, 'best_validation_epoch': 3,
                         'test_accuracy_at_best_validation': 0.93}


def test_rewriting_flags_keeps_a_line_that_is_not_a_flag(tmp_path):
  (tmp_path / 'flags.txt').write_text('# comment\n--cell=gru\ncell=gru oops\n')
  workdir.write_flags(str(tmp_path), ['--cell=gru'])
  assert (tmp_path / 'flags.txt.unreadable').read_text() == 'line 3: cell=gru oops\n'
  assert (tmp_path / 'flags.txt').read_text().splitlines()[1:] == ['--cell=gru']



def test_speed_text_of_whole_and_resumed_epochs():
  assert train.speed_text(812.4, 900.0, 0, 100) == '812 ex/s'
  assert train.speed_text(9.2, 95.0, 90, 100) == (
      '95 ex/s after the warm-up (this process ran 10 of its 100 steps, resumed at'
      ' batch 90)')
  assert train.speed_text(9.2, None, 98, 100) == (
      '9 ex/s, warm-up included (this process ran 2 of its 100 steps, resumed at batch 98)')


def test_progress_text_says_where_the_epoch_is_and_when_its_training_ends():
  # Resumed at batch 100 of 860: 200 steps (12,800 examples) in this process in 80 s.
  line = train.progress_text(2, 45, 200, 300, 860, 1.23456, 12800, 80.0)
  assert line == ('epoch 2/45: batch 300/860 | batch loss 1.2346 | 160 ex/s |'
                  ' training ends in ~3.7 min')  # 560 steps at 0.4 s


def test_without_a_terminal_an_epoch_logs_its_progress(tmp_path, small_data, monkeypatch,
                                                       caplog):
  """Under nohup (no live bar) a long epoch says where it is every PROGRESS_SECONDS;
  here every step."""
  monkeypatch.setattr(train, 'PROGRESS_SECONDS', 0.0)
  monkeypatch.setattr('sys.stdout.isatty', lambda: False, raising=False)
  data = mnist_data.Mnist(small_data.train.take(96), small_data.test.take(32))
  config = config_lib.TrainConfig(model=config_lib.ModelConfig(num_units=8),
                                  workdir=str(tmp_path), batch_size=32, epochs=2)
  trainer = train.Trainer(config, data)
  try:
    trainer.restore_or_init()
    with caplog.at_level('INFO'):
      trainer.train_epoch(1, 1, lambda: False)  # resumed at batch 1 of 3
  finally:
    trainer.close()
  lines = [r.getMessage() for r in caplog.records if 'batch loss' in r.getMessage()]
  assert [l.split(' | ')[0] for l in lines] == ['epoch 1/2: batch 2/3', 'epoch 1/2: batch 3/3']
  assert lines[-1].endswith('training ends in ~0.0 min')
