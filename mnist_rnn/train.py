"""The training loop: train, evaluate, check states vs outputs, checkpoint, resume."""

import concurrent.futures
import contextlib
import dataclasses
import math
import os
import sys
import time
from typing import Callable, Optional

from absl import logging
import numpy as np

from mnist_rnn import augment
from mnist_rnn import checkpoints
from mnist_rnn import config as config_lib
from mnist_rnn import errors
from mnist_rnn import machine
from mnist_rnn import metrics_log
from mnist_rnn import mnist_data
from mnist_rnn import segments
from mnist_rnn import state_check
from mnist_rnn import summaries
from models import classifier
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1
import tf_keras  # noqa: E402  (after tf_env: legacy Keras)


# Raised here; defined where the entry point can catch them without TensorFlow.
TrainingInterrupted = errors.TrainingInterrupted
summary_line = metrics_log.summary_line  # the result line; read without TensorFlow too
NoCheckpoint = errors.NoCheckpoint
NonFiniteLoss = errors.NonFiniteLoss

# Where no live bar shows (output to a file, as under nohup), a line this often within
# an epoch: at 784 steps an epoch trains for 4-7 minutes before its line.
PROGRESS_SECONDS = 60.0


@dataclasses.dataclass
class RunResult:
  history: list               # metrics records, one per epoch, 1..epochs
  resumed_from_step: int      # 0 for a fresh run
  already_complete: bool      # the workdir had finished all epochs before this call
  build_seconds: float        # building the graph (model, optimizer, saver)
  trainable_parameters: int


def learning_rate_at(step: int, total_steps: int, base: float, schedule: str) -> float:
  """The learning rate for training step `step` (0-based) of `total_steps`."""
  if schedule == 'constant' or total_steps <= 0:
    return base
  # Cosine decay from `base` to 0 over the run.
  return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
  """The shuffled example order of `epoch` (1-based): a function of seed and epoch only,
  so a resumed run sees the same batches as an uninterrupted one."""
  return np.random.default_rng([seed, epoch]).permutation(n)


def zoneout_seed(seed: int, epoch: int, batch: int) -> np.ndarray:
  """The seed of batch `batch`'s zoneout masks: [2] int64, a function of (seed, epoch,
  batch) alone, so a resumed run draws the same masks."""
  return np.random.default_rng([seed, epoch, batch, 2]).integers(0, 2**62, 2, dtype=np.int64)


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
  """Randomness for one batch's augmentation, likewise independent of history."""
  return np.random.default_rng([seed, epoch, batch, 1])


def session_config(intra_op_threads: int = 1, inter_op_threads: int = 0) -> tf1.ConfigProto:
  """Session options; 0 threads lets TensorFlow choose."""
  return tf1.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                         inter_op_parallelism_threads=inter_op_threads)


def onednn_opts():
  """Whether TensorFlow's oneDNN rewrites are on in this process (TensorFlow turns them
  on by the CPU it finds, or by TF_ENABLE_ONEDNN_OPTS); None where it cannot tell."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except (ImportError, AttributeError):
    return None


# The first session.run of a fetch set optimises the graph (grappler), seconds on a
# big unrolled graph; a process's first steps are left out of the steady speed.
WARMUP_STEPS = 3
# A static graph of more steps than this says what it will cost before it builds.
LONG_STATIC_STEPS = 112


class Trainer:
  """Owns one graph and session for one TrainConfig; see `train_and_evaluate`."""

  def __init__(self, config: config_lib.TrainConfig, data: mnist_data.Mnist):
    # Same flags and seed, same metrics: deterministic kernels (process-wide).
    tf.config.experimental.enable_op_determinism()
    if config.early_stopping_patience and not config.validation_examples:
      raise ValueError('early_stopping_patience stops on validation accuracy: it needs'
                       ' validation_examples > 0')
    self.config = config
    # The validation split is the END of the training set, cut before
    # train_examples takes the first N of the rest (mnist_data.hold_out).
    train, self.validation = mnist_data.hold_out(data.train, config.validation_examples)
    self.train = train.take(config.train_examples)
    self.test = data.test.take(config.test_examples)
    self.graph = tf.Graph()
    steps = config_lib.time_steps(config.model)
    if config.model.runner == 'static' and steps > LONG_STATIC_STEPS:
      # Said before the build, which is the slow part (docs/sequence_length.md).
      logging.info('static_rnn over %d steps: the graph holds every step of every tower'
                   ' (%d x %d); measured at 784 steps on 2 cores: lstm 48 s to build and'
                   ' 2.6 GB (docs/sequence_length.md), fused_lstm 5-8 s and 1.6 GB', steps,
                   steps, config.model.towers)
    with self.graph.as_default():
      build_start = time.perf_counter()
      # A fixed batch dimension builds ~35% faster (classifier.build); the last short
      # batch of an epoch, evaluation and the check are padded to it.
      self.model = classifier.build(config.model, batch_size=config.batch_size)
      # checkpoints.save keeps the newest few itself (the Saver only writes tensors).
      self.saver = tf1.train.Saver(max_to_keep=None)
      self.build_seconds = time.perf_counter() - build_start
      self.trainable_parameters = int(sum(
          np.prod(v.shape.as_list()) for v in tf1.trainable_variables()))
    self.graph.finalize()
    self.session = tf1.Session(graph=self.graph, config=session_config(
        config.intra_op_threads, config.inter_op_threads))
    self.steps_per_epoch = math.ceil(len(self.train) / config.batch_size)
    self.metrics_path = os.path.join(config.workdir, metrics_log.FILE_NAME)
    self.check_images = self.test.take(config.check_examples).images
    self.steps_run = 0  # training steps this process ran (for WARMUP_STEPS)
    self.best_folder = os.path.join(config.workdir, config_lib.BEST_VALIDATION_FOLDER)
    # Named in every epoch's record: a run's digits are its kind of CPU's.
    self.machine = machine.describe(onednn_opts())
    logging.info('machine: %s', machine.text(self.machine))

  def close(self):
    self.session.close()

  # -- checkpoints ------------------------------------------------------------

  def restore_or_init(self, folder: Optional[str] = None) -> int:
    """Restores the newest checkpoint of `folder` (default: the workdir) that restores
    (see `checkpoints.restore`), or initialises; returns the global step."""
    with self.graph.as_default():
      if checkpoints.restore(self.session, self.saver,
                             folder or self.config.workdir) is None:
        self.session.run(self.model.init)
    return int(self.session.run(self.model.global_step))

  def save(self, folder: Optional[str] = None, keep: int = checkpoints.KEEP) -> str:
    """Saves the weights as a checkpoint of the current step in `folder` (default: the
    workdir), keeping its newest `keep`."""
    step = int(self.session.run(self.model.global_step))
    folder = folder or self.config.workdir
    os.makedirs(folder, exist_ok=True)
    with self.graph.as_default():
      return checkpoints.save(self.session, self.saver, folder, step, keep=keep)

  @contextlib.contextmanager
  def _saving(self, what: str, epoch: int):
    """Turns a full disk while saving `what` into errors.NoSpace (exit 4): one line,
    and the folder as the last complete save left it (see checkpoints.save)."""
    try:
      yield
    except (OSError, tf.errors.OpError) as e:
      if not errors.is_no_space(e):
        raise
      raise errors.NoSpace(
          f'no space left on the device of {self.config.workdir} while saving {what} of'
          f' epoch {epoch}; the last complete checkpoint is kept: free some space and'
          ' rerun the same command to continue') from None

  # -- one epoch --------------------------------------------------------------

  def evaluate(self, split: mnist_data.Split) -> tuple:
    """Returns (mean loss, accuracy) of the current weights on `split`."""
    m = self.model
    loss_sum, correct = 0.0, 0
    bs = classifier.fixed_batch_size(m)
    for start in range(0, len(split), bs):
      images, labels = split.images[start:start + bs], split.labels[start:start + bs]
      loss, c = self.session.run([m.loss, m.correct],
                                 classifier.feed_dict(m, images, labels))
      loss_sum += float(loss) * len(labels)
      correct += int(c)
    return loss_sum / len(split), correct / len(split)

  def check(self) -> state_check.StateCheck:
    """The states-vs-outputs check on the first `check_examples` test images, fetched
    batch by batch (each batch's h and outputs[-1] come from one session.run)."""
    return state_check.from_values(classifier.run_rows(
        self.session, self.model, state_check.fetches(self.model.check), self.check_images))

  def batch_feed(self, epoch: int, order, b: int, total_steps: int) -> dict:
    """The feed_dict of batch `b` of `epoch` (whose example order is `order`): images
    gathered, turned and shifted, labels, the learning rate. A function of (seed, epoch, b)
    alone, so it can be made ahead and a resumed run sees the same batches."""
    cfg, m = self.config, self.model
    idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
    rng = batch_rng(cfg.model.seed, epoch, b)
    images = augment.random_rotation(self.train.images[idx], cfg.rotate_degrees, rng)
    images = augment.random_shift(images, cfg.shift_pixels, rng)
    start = (cfg.schedule_start_epoch - 1) * self.steps_per_epoch
    lr = learning_rate_at((epoch - 1) * self.steps_per_epoch + b - start,
                          total_steps - start, cfg.learning_rate, cfg.lr_schedule)
    extra = {m.learning_rate: lr}
    if m.training is not None:  # zoneout: draw masks, from this batch's own seed
      extra[m.training] = True
      extra[m.zoneout_seed] = zoneout_seed(cfg.model.seed, epoch, b)
    return classifier.feed_dict(m, images, self.train.labels[idx], extra)

  def train_epoch(self, epoch: int, first_batch: int,
                  should_stop: Callable[[], bool]) -> tuple:
    """Trains batches first_batch.. of `epoch`.

    Returns:
      (examples, seconds, steady examples/sec): the last is measured over the steps
      after this process's first WARMUP_STEPS (None if the epoch had no such step).

    Each batch's feed is made on a second thread while the session runs the step
    before it (session.run releases the GIL), so the gather, shift and padding use a
    core the step leaves idle, where there is one; with two towers on two cores there
    is none, and it measured neither faster nor slower (docs/speed.md, goal 3). The
    batches are the same as made one after the other.

    Raises:
      TrainingInterrupted: `should_stop()` became true (after saving).
      NonFiniteLoss: a step's loss was NaN or infinite (nothing saved).
    """
    cfg, m = self.config, self.model
    order = epoch_order(cfg.model.seed, epoch, len(self.train))
    total_steps = self.steps_per_epoch * cfg.epochs
    # A live bar on a terminal; in a log file a line every PROGRESS_SECONDS.
    progress = tf_keras.utils.Progbar(self.steps_per_epoch, unit_name='step',
                                      stateful_metrics=['lr'],
                                      verbose=1 if sys.stdout.isatty() else 0)
    examples, start = 0, time.perf_counter()
    steady_examples, steady_start = 0, None
    last_line = start
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='batches') as maker:
      upcoming = maker.submit(self.batch_feed, epoch, order, first_batch, total_steps)
      for b in range(first_batch, self.steps_per_epoch):
        feed = upcoming.result()
        if b + 1 < self.steps_per_epoch:
          upcoming = maker.submit(self.batch_feed, epoch, order, b + 1, total_steps)
        if should_stop():
          with self._saving('the weights', epoch):
            path = self.save()
          raise TrainingInterrupted(
              f'stopped at epoch {epoch} batch {b}/{self.steps_per_epoch};'
              f' saved {path}')
        try:
          _, loss = self.session.run([m.train_op, m.loss], feed)
        except tf.errors.InvalidArgumentError as e:
          if 'NaN or infinite' not in e.message:
            raise
          raise NonFiniteLoss(
              f'training loss became NaN or infinite at epoch {epoch} batch {b};'
              f' stopped without saving, the last good checkpoint in'
              f' {cfg.workdir} is kept') from None
        batch_examples = feed.get(m.valid_examples, len(feed[m.labels]))
        examples += batch_examples
        self.steps_run += 1
        if steady_start is not None:
          steady_examples += batch_examples
        elif self.steps_run >= WARMUP_STEPS:
          steady_start = time.perf_counter()  # timing starts after this step
        if progress.verbose:
          progress.update(b + 1, [('loss', loss), ('lr', feed[m.learning_rate])])
        elif time.perf_counter() - last_line >= PROGRESS_SECONDS:
          last_line = time.perf_counter()
          logging.info('%s', progress_text(epoch, cfg.epochs, b + 1 - first_batch, b + 1,
                                           self.steps_per_epoch, float(loss), examples,
                                           last_line - start))
    end = time.perf_counter()
    steady = (steady_examples / (end - steady_start)
              if steady_examples and end > steady_start else None)
    return examples, end - start, steady

  # -- the whole run ----------------------------------------------------------

  def run(self, should_stop: Callable[[], bool]) -> RunResult:
    cfg = self.config
    step = self.restore_or_init()
    done_epochs, first_batch = divmod(step, self.steps_per_epoch)
    with self._saving('the metrics', done_epochs + 1):  # rewritten: the disk may be full
      history, unreadable, lost = metrics_log.truncate_after(
          self.metrics_path, done_epochs, recreate=self._record_from_events)
    for number, _, why in unreadable:
      logging.warning('%s line %d could not be read (%s); it is kept in %s%s',
                      self.metrics_path, number, why, metrics_log.FILE_NAME,
                      metrics_log.UNREADABLE_SUFFIX)
    recreated = [r['epoch'] for r in history if r.get('recreated_from')]
    if recreated or lost:
      logging.warning('%s: epoch%s %s re-created from the TensorBoard events%s',
                      self.metrics_path, 's' if len(recreated) != 1 else '',
                      ', '.join(map(str, recreated)) or 'none',
                      f'; no record of epoch {", ".join(map(str, lost))} could be'
                      ' re-created' if lost else '')
    if metrics_log.stopped_early(history, cfg.early_stopping_patience):
      logging.info('%s: nothing to train; %s', cfg.workdir,
                   early_stop_text(history[-1], self.best_folder))
      return RunResult(history, step, True, self.build_seconds,
                       self.trainable_parameters)
    if done_epochs >= cfg.epochs:
      logging.info('%s', segments.nothing_to_train(cfg.workdir, done_epochs, cfg.epochs,
                                                   cfg.lr_schedule))
      return RunResult(history, step, True, self.build_seconds,
                       self.trainable_parameters)
    if step:
      logging.info('resuming %s from step %d: epoch %d, batch %d/%d',
                   cfg.workdir, step, done_epochs + 1, first_batch,
                   self.steps_per_epoch)

    writer = summaries.Writer(cfg.workdir, graph=None if step else self.graph)
    # Epochs whose TensorBoard events were lost (a full disk after their checkpoint):
    # written again from metrics.jsonl, so each epoch is in TensorBoard once.
    shown = summaries.read_scalars(cfg.workdir).get(summaries.SCALARS['test_accuracy'], {})
    for record in history:
      if record['epoch'] not in shown:
        writer.epoch(record)
    if not step:
      params = {k: v for k, v in config_lib.flatten(cfg).items()
                if k not in ('workdir', 'check_examples')}
      # A label, not a quantity: as a string TensorBoard shows '1', not '1.0000', and
      # groups a comparison's runs by it.
      params['seed'] = str(params['seed'])
      writer.hyperparameters({**params, 'trainable_parameters': self.trainable_parameters},
                             trial_id=os.path.basename(os.path.normpath(cfg.workdir)))
    try:
      self._train_epochs(done_epochs, first_batch, history, writer, should_stop)
    finally:
      writer.close()
    return RunResult(history, step, False, self.build_seconds, self.trainable_parameters)

  def _record_from_events(self, epoch: int) -> Optional[dict]:
    """The metrics record of `epoch` rebuilt from the run's TensorBoard scalars (the
    same values, float32), marked 'recreated_from'; None if the events lack it."""
    if not hasattr(self, '_event_scalars'):  # read once, however many epochs are missing
      self._event_scalars = summaries.read_scalars(self.config.workdir)
    scalars = self._event_scalars
    tags = {key: tag for key, tag in summaries.SCALARS.items()
            if epoch in scalars.get(tag, {})}
    if 'test_accuracy' not in tags:
      return None
    record = {key: scalars[tag][epoch] for key, tag in tags.items()}
    if 'state_equals_output' in record:
      record['state_equals_output'] = bool(record['state_equals_output'])
    m = self.config.model
    record.update(epoch=epoch, cell=m.cell, runner=m.runner, time_major=m.time_major,
                  num_layers=m.num_layers, bidirectional=m.bidirectional,
                  sequence_length=m.sequence_length, head_input=m.head_input,
                  recreated_from='tensorboard events')
    return record

  def _train_epochs(self, done_epochs, first_batch, history, writer, should_stop):
    cfg, m = self.config, self.model
    logging.info('%s: %d train, %s%d test examples, %d steps/epoch, graph built in %.2fs',
                 config_lib.run_name(cfg.model), len(self.train),
                 f'{len(self.validation)} validation, ' if len(self.validation) else '',
                 len(self.test), self.steps_per_epoch, self.build_seconds)
    for epoch in range(done_epochs + 1, cfg.epochs + 1):
      if first_batch == 0:
        self.session.run(m.reset_epoch_metrics)
      epoch_start = time.perf_counter()
      examples, train_seconds, steady = self.train_epoch(epoch, first_batch, should_stop)
      resumed_at, first_batch = first_batch, 0
      sums = self.session.run(m.epoch_metrics)
      test_loss, test_accuracy = self.evaluate(self.test)
      check = self.check()
      record = {
          'epoch': epoch,
          'cell': cfg.model.cell,
          'runner': cfg.model.runner,
          'time_major': cfg.model.time_major,
          'num_layers': cfg.model.num_layers,
          'bidirectional': cfg.model.bidirectional,
          'sequence_length': cfg.model.sequence_length,
          'head_input': cfg.model.head_input,
          'train_loss': sums['loss_sum'] / sums['seen'],
          'train_accuracy': sums['correct'] / sums['seen'],
          'test_loss': test_loss,
          'test_accuracy': test_accuracy,
          'examples_per_sec': examples / train_seconds if train_seconds else 0.0,
          'steady_examples_per_sec': steady,
          'epoch_seconds': time.perf_counter() - epoch_start,
          'build_seconds': self.build_seconds,  # of the graph this process trained
          'machine': self.machine,
          'learning_rate': learning_rate_at(
              (epoch - cfg.schedule_start_epoch + 1) * self.steps_per_epoch,
              self.steps_per_epoch * (cfg.epochs - cfg.schedule_start_epoch + 1),
              cfg.learning_rate, cfg.lr_schedule),
          **check.metrics(),
      }
      if len(self.validation):
        record.update(self._validation_record(epoch, history, test_accuracy))
      if metrics_log.stopped_early(history + [record], cfg.early_stopping_patience):
        record['stopped_early'] = True
      # Metrics first, then the checkpoints: a kill (or a full disk) in between
      # re-trains this epoch on resume and truncate_after drops the orphaned record.
      with self._saving('the metrics', epoch):
        metrics_log.append(self.metrics_path, record)
      if cfg.early_stopping_patience and record.get('best_validation_epoch') == epoch:
        with self._saving('the best validation checkpoint', epoch):
          self.save(self.best_folder, keep=1)
      with self._saving('the checkpoint', epoch):
        self.save()
      with self._saving('the TensorBoard events', epoch):
        writer.epoch(record)
      history.append(record)
      validation = (f' | validation acc {record["validation_accuracy"]:.4f}'
                    if 'validation_accuracy' in record else '')
      logging.info('epoch %d/%d | train loss %.4f acc %.4f%s | test loss %.4f acc %.4f'
                   ' | %s %.1fs | %s', epoch, cfg.epochs, record['train_loss'],
                   record['train_accuracy'], validation, test_loss, test_accuracy,
                   speed_text(record['examples_per_sec'], steady, resumed_at,
                              self.steps_per_epoch), record['epoch_seconds'],
                   check.log_text())
      if record.get('stopped_early'):
        logging.info('%s', early_stop_text(record, self.best_folder))
        break
  def _validation_record(self, epoch: int, history: list, test_accuracy: float) -> dict:
    """This epoch's validation metrics and the best epoch so far (`best_on_validation`)."""
    loss, accuracy = self.evaluate(self.validation)
    return {'validation_loss': loss, 'validation_accuracy': accuracy,
            **best_on_validation(history[-1] if history else None, epoch, accuracy,
                                 test_accuracy)}


def progress_text(epoch: int, epochs: int, ran: int, done: int, steps_per_epoch: int,
                  loss: float, examples: int, seconds: float) -> str:
  """The line within an epoch: `done` of its steps done, `ran` of them (`examples`
  examples) in this process over `seconds`, the last batch's loss, and when the
  epoch's training ends at that pace (its evaluation comes after)."""
  left = (steps_per_epoch - done) * seconds / ran
  return (f'epoch {epoch}/{epochs}: batch {done}/{steps_per_epoch} | batch loss'
          f' {loss:.4f} | {examples / seconds:.0f} ex/s | training ends in'
          f' ~{left / 60:.1f} min')


def speed_text(examples_per_sec: float, steady: Optional[float], resumed_at: int,
               steps_per_epoch: int) -> str:
  """The epoch line's speed. An epoch resumed at batch `resumed_at` ran only its
  last steps in this process, the first of them warming up: its speed says over which
  steps it is measured (without the warm-up where there were steps after it)."""
  if not resumed_at:
    return f'{examples_per_sec:.0f} ex/s'
  ran = steps_per_epoch - resumed_at
  over = (f'{steady:.0f} ex/s after the warm-up' if steady
          else f'{examples_per_sec:.0f} ex/s, warm-up included')
  return (f'{over} (this process ran {ran} of its {steps_per_epoch} steps, resumed at'
          f' batch {resumed_at})')


def early_stop_text(record: dict, best_folder: str) -> str:
  """What an early-stopped run says: where it stopped, why, and where its model is."""
  best = record['best_validation_epoch']
  return (f'stopped early after epoch {record["epoch"]}: validation accuracy has not'
          f' improved on epoch {best}\'s {record["best_validation_accuracy"]:.4f} for'
          f' {record["epoch"] - best} epoch{"s" if record["epoch"] - best != 1 else ""};'
          f' the run\'s model is epoch {best}\'s (test'
          f' accuracy {record["test_accuracy_at_best_validation"]:.4f}), in {best_folder}')


def best_on_validation(previous: Optional[dict], epoch: int, validation_accuracy: float,
                       test_accuracy: float) -> dict:
  """The best epoch up to `epoch`, chosen on validation accuracy alone (the earliest
  of equals), and the test accuracy at that epoch: test accuracy picks nothing.

  Args:
    previous: the record of the epoch before (None for epoch 1), holding the
      best_* keys this returns.
  """
  if previous is not None and previous['best_validation_accuracy'] >= validation_accuracy:
    return {k: previous[k] for k in ('best_validation_accuracy', 'best_validation_epoch',
                                     'test_accuracy_at_best_validation')}
  return {'best_validation_accuracy': validation_accuracy, 'best_validation_epoch': epoch,
          'test_accuracy_at_best_validation': test_accuracy}


def evaluate_checkpoint(config: config_lib.TrainConfig,
                        data: Optional[mnist_data.Mnist] = None) -> dict:
  """Evaluates the run's model on the test set: the latest checkpoint in
  `config.workdir`, or with early stopping the best validation epoch's
  (`config_lib.model_folder`).

  Returns:
    {'step', 'test_loss', 'test_accuracy', plus the check's metrics}.

  Raises:
    NoCheckpoint: the workdir holds no checkpoint.
  """
  if not checkpoints.steps(config.workdir):
    raise NoCheckpoint(f'--workdir={config.workdir}: no checkpoint to evaluate')
  if data is None:
    data = mnist_data.load(config.data_dir)
  trainer = Trainer(config, data)
  try:
    folder = config_lib.model_folder(config)
    step = trainer.restore_or_init(folder)
    test_loss, test_accuracy = trainer.evaluate(trainer.test)
    check = trainer.check()
    logging.info('eval of %s at step %d (epoch %.2f) | test loss %.4f acc %.4f | %s',
                 folder, step, step / trainer.steps_per_epoch, test_loss,
                 test_accuracy, check.log_text())
    return {'step': step, 'test_loss': test_loss, 'test_accuracy': test_accuracy,
            **check.metrics()}
  finally:
    trainer.close()


def train_and_evaluate(config: config_lib.TrainConfig,
                       data: Optional[mnist_data.Mnist] = None,
                       should_stop: Callable[[], bool] = lambda: False) -> RunResult:
  """Trains `config` in `config.workdir`, resuming from its latest checkpoint.

  Args:
    config: the run's configuration; `config.workdir` must exist and be writable.
    data: the dataset (loaded from `config.data_dir` when None).
    should_stop: polled before every step; when it returns True the current
      weights are saved and TrainingInterrupted is raised.

  Returns:
    RunResult with the metrics of every epoch 1..config.epochs (1..the epoch it
    stopped at, with early stopping).
  """
  if data is None:
    data = mnist_data.load(config.data_dir)
  trainer = Trainer(config, data)
  try:
    return trainer.run(should_stop)
  finally:
    trainer.close()
