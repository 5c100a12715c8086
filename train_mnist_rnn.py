"""Trains an LSTM or GRU on MNIST, one image row per time step, with tf.compat.v1.

This file is kept short on purpose: it defines and validates the flags, turns them
into a config, and calls the library (`mnist_rnn`, `models`), which never reads flags.

  python train_mnist_rnn.py                          # LSTM, static_rnn, full MNIST
  python train_mnist_rnn.py --cell=gru --runner=dynamic --time_major
  python train_mnist_rnn.py --flagfile=configs/smoke.flags
"""

import math
import signal
import sys

import mnist_rnn  # noqa: F401  (first: selects legacy Keras before TensorFlow loads)

from absl import app
from absl import flags
from absl import logging

from mnist_rnn import compare
from mnist_rnn import config as config_lib
from mnist_rnn import equalities
from mnist_rnn import idx
from mnist_rnn import inspect_graph
from mnist_rnn import mnist_data
from mnist_rnn import train
from mnist_rnn import workdir as workdir_lib
from models import cells
from models import classifier
from models import fused_lstm

# Model.
_CELL = flags.DEFINE_enum('cell', 'lstm', list(cells.CELLS),
                          'RNN cell: LSTMCell, GRUCell, BasicRNNCell (tanh), BasicLSTMCell.')
_RUNNER = flags.DEFINE_enum('runner', 'static', ['static', 'dynamic'],
                            'static_rnn (a list of 28 steps) or dynamic_rnn (a while loop).')
_TIME_MAJOR = flags.DEFINE_boolean(
    'time_major', False, 'dynamic only: feed [time, batch, 28] and get outputs'
    ' [time, batch, units].')
_NUM_UNITS = flags.DEFINE_integer('num_units', 128, 'Hidden units.', lower_bound=1)
_NUM_LAYERS = flags.DEFINE_integer('num_layers', 1, 'Stacked layers (MultiRNNCell of fresh'
                                   ' cells when > 1).', lower_bound=1)
_BIDIRECTIONAL = flags.DEFINE_boolean(
    'bidirectional', False, 'Forward and backward cells (static_bidirectional_rnn /'
    ' bidirectional_dynamic_rnn); the head reads both directions\' features.')
_SEQUENCE_LENGTH = flags.DEFINE_enum(
    'sequence_length', 'full', list(classifier.SEQUENCE_LENGTHS), 'full: every image is'
    ' 28 steps; trimmed: each image ends at its last non-blank row (sequence_length is'
    ' passed to the runner).')
_HEAD_INPUT = flags.DEFINE_enum(
    'head_input', 'outputs_last', list(classifier.HEAD_INPUTS), 'What the dense layer'
    ' reads: outputs[-1] (the tutorial), each example\'s output at its own last step, or'
    ' the final state\'s h.')
_FORGET_BIAS = flags.DEFINE_float('forget_bias', 1.0, 'LSTM forget-gate bias.')
# Training.
_EPOCHS = flags.DEFINE_integer('epochs', 25, 'Epochs to train.', lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Training batch size.',
                                   lower_bound=1)
_LEARNING_RATE = flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate (peak).')
_LR_SCHEDULE = flags.DEFINE_enum('lr_schedule', 'cosine', ['cosine', 'constant'],
                                 'cosine: decay to 0 over --epochs.')
_CLIP_NORM = flags.DEFINE_float('clip_norm', 5.0, 'Clip gradients to this global norm;'
                                ' 0 disables.', lower_bound=0.0)
_SHIFT_PIXELS = flags.DEFINE_integer(
    'shift_pixels', 2, 'Shift each training image by up to this many pixels (random,'
    ' per example); 0 = no augmentation.', lower_bound=0, upper_bound=8)
_TOWERS = flags.DEFINE_integer(
    'towers', 2, 'Split each batch into N slices unrolled in parallel with shared weights'
    ' (same model and loss; ~1.7x faster on 2 cores); 1 = one graph, as in the tutorial.',
    lower_bound=1)
_INTRA_OP_THREADS = flags.DEFINE_integer(
    'intra_op_threads', 1, 'Threads one TensorFlow op may use; 0 = TensorFlow\'s choice.',
    lower_bound=0)
_INTER_OP_THREADS = flags.DEFINE_integer(
    'inter_op_threads', 0, 'TensorFlow ops run at once; 0 = TensorFlow\'s choice.',
    lower_bound=0)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for weights, shuffling and augmentation.')
# Data and output.
_DATA_DIR = flags.DEFINE_string(
    'data_dir', mnist_data.BUNDLED_DIR, 'Folder with the four MNIST IDX files'
    ' (gzipped or not); Fashion-MNIST works too.')
_TRAIN_EXAMPLES = flags.DEFINE_integer('train_examples', 0, 'Use the first N training'
                                       ' examples; 0 = all.', lower_bound=0)
_TEST_EXAMPLES = flags.DEFINE_integer('test_examples', 0, 'Use the first N test'
                                      ' examples; 0 = all.', lower_bound=0)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (checkpoints, metrics,'
                               ' flags); default runs/<cell>_<runner>[_<options>], runs/compare with --compare.')
# Modes.
_COMPARE = flags.DEFINE_boolean('compare', False, 'Train every cell x runner with these'
                                ' flags, each in <workdir>/<cell>_<runner>, and tabulate.')
_INSPECT = flags.DEFINE_boolean('inspect', False, 'Build the graph, run it once on a few'
                                ' test images and explain outputs/states; no training.')
_EQUALITY_TABLE = flags.DEFINE_boolean(
    'equality_table', False, 'Print which equalities (states.h == outputs[-1], c == h,'
    ' backward ones) hold for every cell x runner x variant, measured; no training.')
_EVAL_ONLY = flags.DEFINE_boolean('eval_only', False, 'Evaluate the latest checkpoint'
                                  ' in --workdir (test accuracy and the check); no training.')

flags.register_validator('learning_rate', lambda v: 0 < v < math.inf,
                         message='--learning_rate must be > 0 and finite')
flags.register_multi_flags_validator(
    ['compare', 'inspect', 'eval_only', 'equality_table'], lambda d: sum(d.values()) <= 1,
    message='--compare, --inspect, --eval_only and --equality_table are separate modes:'
    ' pick one')
flags.register_multi_flags_validator(
    ['time_major', 'runner'], lambda d: not (d['time_major'] and d['runner'] == 'static'),
    message='--time_major applies to --runner=dynamic only')

EXIT_ERROR, EXIT_NONFINITE, EXIT_INTERRUPTED = 1, 3, 130


def default_workdir(model: config_lib.ModelConfig) -> str:
  return 'runs/compare' if _COMPARE.value else 'runs/' + config_lib.run_name(model)


def config_from_flags() -> config_lib.TrainConfig:
  model = config_lib.ModelConfig(
      cell=_CELL.value, runner=_RUNNER.value, time_major=_TIME_MAJOR.value,
      num_units=_NUM_UNITS.value, num_layers=_NUM_LAYERS.value,
      bidirectional=_BIDIRECTIONAL.value, sequence_length=_SEQUENCE_LENGTH.value,
      head_input=_HEAD_INPUT.value, forget_bias=_FORGET_BIAS.value,
      clip_norm=_CLIP_NORM.value, towers=_TOWERS.value, seed=_SEED.value)
  return config_lib.TrainConfig(
      model=model, data_dir=_DATA_DIR.value,
      workdir=_WORKDIR.value or default_workdir(model),
      epochs=_EPOCHS.value, batch_size=_BATCH_SIZE.value,
      learning_rate=_LEARNING_RATE.value, lr_schedule=_LR_SCHEDULE.value,
      shift_pixels=_SHIFT_PIXELS.value, intra_op_threads=_INTRA_OP_THREADS.value,
      inter_op_threads=_INTER_OP_THREADS.value,
      train_examples=_TRAIN_EXAMPLES.value, test_examples=_TEST_EXAMPLES.value)


def fail(message: str, code: int = EXIT_ERROR):
  sys.stderr.write(f'train_mnist_rnn.py: error: {message}\n')
  sys.exit(code)


class StopRequest:
  """Set by SIGINT/SIGTERM; polled by the training loop between steps."""

  def __init__(self):
    self.signal_name = None

  def install(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name

  def __call__(self) -> bool:
    return self.signal_name is not None


def main(argv):
  if len(argv) > 1:
    fail(f'unexpected arguments: {" ".join(argv[1:])}')
  stop = StopRequest()
  stop.install()
  config = config_from_flags()
  try:
    if config.model.cell == 'fused_lstm' and not _COMPARE.value:
      fused_lstm.load_ops()  # builds its kernels once; fails before anything is written
    if _INSPECT.value:
      print(inspect_graph.inspect_with_data(config.model, config.data_dir), end='')
      return
    if _EQUALITY_TABLE.value:
      images = mnist_data.load(config.data_dir).test.take(64).images
      print(equalities.table(images), end='')
      return
    lines = config_lib.flag_lines(config) + (['--compare'] if _COMPARE.value else [])
    # The workdir is checked before the data is read; flags.txt is written once both
    # are known to be good.
    workdir_lib.claim(config.workdir, lines, write=False)
    data = mnist_data.load(config.data_dir)
    if _EVAL_ONLY.value:
      train.evaluate_checkpoint(config, data)
      return
    workdir_lib.write_flags(config.workdir, lines)
    if _COMPARE.value:
      rows = compare.compare(config, data, should_stop=stop)
      paths = compare.write(rows, config.workdir)
      print(compare.markdown(rows), end='')
      logging.info('comparison written to %s and %s', *paths)
      if any(r['error'] for r in rows):
        fail('some combinations failed; see their rows in ' + paths[1])
      return
    train.train_and_evaluate(config, data, should_stop=stop)
  except (mnist_data.DataError, idx.IdxError, workdir_lib.WorkdirError,
          train.NoCheckpoint, fused_lstm.KernelBuildError) as e:
    fail(str(e))
  except train.NonFiniteLoss as e:
    fail(str(e), EXIT_NONFINITE)
  except train.TrainingInterrupted as e:
    logging.warning('%s received: %s', stop.signal_name, e)
    fail(f'interrupted by {stop.signal_name}: {e}; rerun the same command to resume',
         EXIT_INTERRUPTED)


def parse_flags(argv):
  """absl's parser, but a bad flag or flagfile is one line on stderr and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    # absl prefixes some messages (a missing flagfile) with 'ERROR:: '.
    message = str(e).removeprefix('ERROR:: ')
    sys.stderr.write(f'train_mnist_rnn.py: error: {message}\n')
    sys.exit(2)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
