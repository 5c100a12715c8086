"""Trains an LSTM or GRU on MNIST, one image row per time step, with tf.compat.v1.

Each 28x28 image is read as 28 time steps of 28 pixels; static_rnn or dynamic_rnn
unrolls the cell, a dense softmax layer reads outputs[-1], and every epoch checks
that the final state's h equals outputs[-1]. Runs resume from their folder
(runs/<name>, printed at the start); TensorBoard: tensorboard --logdir runs.

  python train_mnist_rnn.py                          # LSTM, static_rnn, full MNIST
  python train_mnist_rnn.py --cell=gru --runner=dynamic --time_major
  python train_mnist_rnn.py --inspect                # what outputs and states hold
  python train_mnist_rnn.py --flagfile=configs/smoke.flags
"""

import contextlib
import dataclasses
import math
import os
import signal
import sys

import mnist_rnn  # noqa: F401  (first: selects legacy Keras before TensorFlow loads)

from absl import app
from absl import flags
from absl import logging

# Only modules that do not import TensorFlow are imported here: --help, a bad flag and
# a bad data folder answer in about a second. TensorFlow loads in `main`, once the
# input is known to be good.
from mnist_rnn import cli
from mnist_rnn import config as config_lib
from mnist_rnn import errors
from mnist_rnn import metrics_log
from mnist_rnn import mnist_data
from mnist_rnn import segments
from mnist_rnn import workdir as workdir_lib
from models import config as model_config

# Model.
_CELL = flags.DEFINE_enum(
    'cell', 'lstm', list(model_config.CELLS), 'RNN cell: lstm = LSTMCell, gru = GRUCell,'
    ' rnn = BasicRNNCell (tanh), basic_lstm = BasicLSTMCell, fused_lstm = LSTMCell with'
    ' its gate math in one compiled op, fused_gru = GRUCell likewise (faster on a CPU;'
    ' each needs g++ once to build its kernels).')
_RUNNER = flags.DEFINE_enum('runner', 'static', list(model_config.RUNNERS),
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
_PIXELS_PER_STEP = flags.DEFINE_integer(
    'pixels_per_step', 28, 'Pixels the RNN reads per time step, row by row: 28 = a row'
    ' per step (28 steps), 7 = 112 steps, 1 = 784 steps (sequential MNIST); a divisor'
    ' of 784. For 784 steps use a preset: --flagfile=configs/sequential_mnist.flags or'
    ' configs/permuted_mnist.flags (with the cells\' default init such runs stayed'
    ' near chance: 11.7% after 2 epochs).')
_PERMUTE_PIXELS = flags.DEFINE_boolean(
    'permute_pixels', False, 'Read the 784 pixels in one fixed random order'
    ' (permuted sequential MNIST with --pixels_per_step=1).')
_PERMUTATION_SEED = flags.DEFINE_integer('permutation_seed', 0, 'Which order'
                                         ' --permute_pixels reads the pixels in.')
_SEQUENCE_LENGTH = flags.DEFINE_enum(
    'sequence_length', 'full', list(model_config.SEQUENCE_LENGTHS), 'full: every image is'
    ' read to its last step; trimmed: each image ends at its last step with ink (its'
    ' last non-blank row, with a row per step; sequence_length is passed to the runner).')
_HEAD_INPUT = flags.DEFINE_enum(
    'head_input', 'outputs_last', list(model_config.HEAD_INPUTS), 'What the dense layer'
    ' reads: outputs[-1] (the tutorial), each example\'s output at its own last step, or'
    ' the final state\'s h.')
_FORGET_BIAS = flags.DEFINE_float('forget_bias', 1.0, 'LSTM forget-gate bias.')
_GATE_BIAS_INIT = flags.DEFINE_enum(
    'gate_bias_init', 'default', list(model_config.GATE_BIAS_INITS), 'chrono: LSTM'
    ' forget-gate bias log(U[1, T-1]) and input gate its negative, GRU update gate'
    ' log(U[1, T-1]) (Tallec & Ollivier 2018; T = the time steps): what lets 784-step'
    ' runs learn (configs/sequential_mnist.flags). default: the cells\' own.')
_RECURRENT_INIT = flags.DEFINE_enum(
    'recurrent_init', 'default', list(model_config.RECURRENT_INITS), 'The kernel\'s'
    ' recurrent rows: orthogonal (each gate\'s block), identity (--cell=rnn only, IRNN);'
    ' default: the cells\' own Glorot-uniform.')
_ZONEOUT_C = flags.DEFINE_float(
    'zoneout_c', 0.0, 'Zoneout of the LSTM\'s c (Krueger et al. 2016): the chance that'
    ' a unit keeps its previous value at a training step (its expectation in'
    ' evaluation); 0 = none. LSTM cells, one layer, one way.', lower_bound=0.0)
_ZONEOUT_H = flags.DEFINE_float(
    'zoneout_h', 0.0, 'Zoneout of h (any cell; a GRU\'s state is h), as --zoneout_c.',
    lower_bound=0.0)
_FUSED_H_GRADIENT = flags.DEFINE_enum(
    'fused_h_gradient', 'transposed_rows', list(model_config.FUSED_H_GRADIENTS),
    '--cell=fused_lstm/fused_gru: the product for h\'s gradient. transposed_rows: on'
    ' kernel rows transposed beforehand, ~1.4x the training speed at 784 steps'
    ' (docs/speed.md); matmul: tf.matmul\'s transpose_b form, as every run before'
    ' 2026-12-06 (their flags.txt lacks this flag and reruns with it). The same'
    ' products; float sums may round apart.')
# Training.
_EPOCHS = flags.DEFINE_integer('epochs', 25, 'Epochs to train.', lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Training batch size.',
                                   lower_bound=1)
_OPTIMIZER = flags.DEFINE_enum('optimizer', 'adam', list(model_config.OPTIMIZERS),
                               'tf.compat.v1.train.AdamOptimizer or RMSPropOptimizer.')
_RMSPROP_DECAY = flags.DEFINE_float('rmsprop_decay', 0.9, '--optimizer=rmsprop: decay'
                                    ' of the mean square.', lower_bound=0.0, upper_bound=1.0)
_RMSPROP_MOMENTUM = flags.DEFINE_float('rmsprop_momentum', 0.0, '--optimizer=rmsprop:'
                                       ' momentum.', lower_bound=0.0, upper_bound=1.0)
_LEARNING_RATE = flags.DEFINE_float('learning_rate', 1e-3, 'Learning rate (the peak of'
                                    ' the cosine).')
_LR_SCHEDULE = flags.DEFINE_enum('lr_schedule', 'cosine', ['cosine', 'constant'],
                                 'cosine: decay to 0 over --epochs.')
_RESTART_SCHEDULE = flags.DEFINE_boolean(
    'restart_schedule', False, 'Train a finished cosine run further (a larger --epochs'
    ' in its --workdir): decay again from --learning_rate over the added epochs (a warm'
    ' restart). Without it such a continuation is refused; see segments.jsonl.')
_CLIP_NORM = flags.DEFINE_float('clip_norm', 5.0, 'Clip gradients to this global norm;'
                                ' 0 disables.', lower_bound=0.0)
_SHIFT_PIXELS = flags.DEFINE_integer(
    'shift_pixels', 2, 'Shift each training image by up to this many pixels (random,'
    ' per example); 0 = no augmentation.', lower_bound=0, upper_bound=8)
_ROTATE_DEGREES = flags.DEFINE_float(
    'rotate_degrees', 0.0, 'Turn each training image about its centre by a random angle'
    ' of up to this many degrees (per example, before the shift); 0 = none.',
    lower_bound=0.0, upper_bound=45.0)
_TOWERS = flags.DEFINE_integer(
    'towers', 2, 'Split each batch into N slices unrolled in parallel with shared weights'
    ' (same model and loss; 1.4-1.5x the examples/sec of 1 tower on 2 cores, see'
    ' docs/speed.md); 1 = one graph, as in the tutorial. At 784 steps two towers do not'
    ' repeat a run exactly (docs/results.md): the 784-step presets use 1.', lower_bound=1)
_INTRA_OP_THREADS = flags.DEFINE_integer(
    'intra_op_threads', 1, 'Threads one TensorFlow op may use; 0 = TensorFlow\'s choice.',
    lower_bound=0)
_INTER_OP_THREADS = flags.DEFINE_integer(
    'inter_op_threads', 0, 'TensorFlow ops run at once; 0 = TensorFlow\'s choice.',
    lower_bound=0)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for weights, shuffling and augmentation.')
# Data and output.
_DATA_DIR = flags.DEFINE_string(
    'data_dir', '', 'Folder with the four MNIST IDX files (gzipped or not; Fashion-MNIST'
    ' works too); empty = the copy bundled in data/mnist.')
_TRAIN_EXAMPLES = flags.DEFINE_integer('train_examples', 0, 'Use the first N training'
                                       ' examples; 0 = all.', lower_bound=0)
_TEST_EXAMPLES = flags.DEFINE_integer('test_examples', 0, 'Use the first N test'
                                      ' examples; 0 = all.', lower_bound=0)
_VALIDATION_EXAMPLES = flags.DEFINE_integer(
    'validation_examples', 0, 'Hold out the last N training examples as a validation'
    ' split, evaluated every epoch; the best epoch is chosen on it (and the test'
    ' accuracy at that epoch reported beside the final one). 0 = none.', lower_bound=0)
_EARLY_STOPPING_PATIENCE = flags.DEFINE_integer(
    'early_stopping_patience', 0, 'Early stopping: end the run once validation accuracy'
    ' has not improved for N epochs (at the latest after --epochs; the learning-rate'
    ' schedule still spans --epochs). The best validation epoch\'s weights are kept in'
    ' <workdir>/best_validation and are the model --eval_only and --export use. Needs'
    ' --validation_examples. 0 = train every epoch.', lower_bound=0)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run folder (checkpoints, metrics, flags, TensorBoard events). Default:'
    ' runs/<cell>_<runner> plus every flag that differs from its default (e.g.'
    ' runs/gru_static_epochs3), runs/compare... with --compare; the same flags resume'
    ' there.')
# Modes.
_COMPARE = flags.DEFINE_boolean(
    'compare', False, 'Train every --compare_cells x --compare_runners x --seeds with'
    ' these flags as an Optuna study, each run its own process in'
    ' <workdir>/<cell>_<runner>_seed<k>, --jobs at a time; then report mean, SD, 95%'
    ' CI and paired tests (comparison.md, .csv, .png). The same command again trains'
    ' only what is missing.')
# The comparison (with --compare).
_SEEDS = flags.DEFINE_integer('seeds', 1, '--compare: seeds 0..K-1 of every'
                              ' combination.', lower_bound=1)
_COMPARE_CELLS = flags.DEFINE_list('compare_cells', list(model_config.CELLS),
                                   '--compare: the cells to compare.')
_COMPARE_RUNNERS = flags.DEFINE_list('compare_runners', list(model_config.RUNNERS),
                                     '--compare: the runners to compare.')
_JOBS = flags.DEFINE_integer(
    'jobs', 0, '--compare: runs at once, each in its own process; 0 = one per core.'
    ' Each run gets --towers=cores/jobs (at least 1) unless --towers is given.',
    lower_bound=0)
_STORAGE = flags.DEFINE_string(
    'storage', '', '--compare: the Optuna storage (an SQLAlchemy URL, e.g.'
    ' postgresql://user@host/db); empty = sqlite:///<workdir>/study.db.')
_STUDY = flags.DEFINE_string('study', 'compare', '--compare: the study\'s name in'
                             ' --storage.')
_REPORT = flags.DEFINE_boolean('report', False, '--compare: train nothing; make the'
                               ' report from the study as it is.')
_TUNE = flags.DEFINE_boolean(
    'tune', False, '--compare: first tune each cell on validation accuracy (TPE over'
    ' --tune_space, --tune_trials runs, each at the comparison\'s own budget unless'
    ' --tune_epochs/--tune_train_examples say otherwise, the weak ones stopped early by'
    ' --tune_pruner), then compare each cell\'s best configuration over --seeds. A flag'
    ' given on the command line is left out of the search.')
_TUNE_TRIALS = flags.DEFINE_integer('tune_trials', 20, '--tune: runs per cell.',
                                    lower_bound=1)
_TUNE_EPOCHS = flags.DEFINE_integer(
    'tune_epochs', 0, '--tune: epochs of a search run; 0 = the comparison\'s --epochs'
    ' (the full budget, with its schedule).', lower_bound=0)
_TUNE_TRAIN_EXAMPLES = flags.DEFINE_integer(
    'tune_train_examples', 0, '--tune: training examples of a search run; 0 = the'
    ' comparison\'s --train_examples.', lower_bound=0)
_TUNE_SPACE = flags.DEFINE_string(
    'tune_space', '', '--tune: the search space, a JSON file like configs/tune_space.json'
    ' (empty = that file).')
_TUNE_PRUNER = flags.DEFINE_enum(
    'tune_pruner', 'successive_halving', ['successive_halving', 'hyperband', 'median',
                                          'none'],
    '--tune: which search runs stop early, judged on validation accuracy after each'
    ' epoch: successive_halving (asynchronous, Optuna\'s SuccessiveHalvingPruner: at'
    ' epochs 1, r, r^2, ... only the top 1/r of the runs that reached that rung go on),'
    ' hyperband (Optuna\'s HyperbandPruner over 1..--tune_epochs), median (below the'
    ' median of earlier runs at that epoch), none.')
_TUNE_REDUCTION_FACTOR = flags.DEFINE_integer(
    'tune_reduction_factor', 3, '--tune: r of successive_halving and hyperband.',
    lower_bound=2)
_TUNE_SEED = flags.DEFINE_integer(
    'tune_seed', 0, '--tune: the TPE sampler\'s seed (two searches of one cell with'
    ' different seeds show how repeatable the search is).')
_HEARTBEAT_SECONDS = flags.DEFINE_integer(
    'heartbeat_seconds', 30, '--compare: a worker records it is alive this often; a'
    ' run whose worker is silent for 3 of these is failed and retried by another.',
    lower_bound=1)
_INSPECT = flags.DEFINE_boolean('inspect', False, 'Build the graph, run it once on a few'
                                ' test images and explain outputs/states; no training.')
_EQUALITY_TABLE = flags.DEFINE_boolean(
    'equality_table', False, 'Print which equalities (states.h == outputs[-1], c == h,'
    ' backward ones) hold for every cell x runner x variant, measured; no training.')
_EVAL_ONLY = flags.DEFINE_boolean(
    'eval_only', False, 'Evaluate the latest checkpoint in --workdir (test accuracy and'
    ' the check); no training. A run of lstm evaluates as fused_lstm and back, gru as fused_gru.')
_EXPORT = flags.DEFINE_boolean(
    'export', False, 'Write the latest checkpoint in --workdir as a SavedModel to'
    ' <workdir>/saved_model/<step>/ (input images [batch, 28, 28]; outputs'
    ' probabilities, classes, last_output, state_h); no training.')

flags.register_validator('pixels_per_step', model_config.valid_pixels_per_step,
                         message='--pixels_per_step must divide 784 (1, 2, 4, 7, 14, 28,'
                         ' 49, 56, 98, 112, 196, 392 or 784)')
flags.register_validator('learning_rate', lambda v: 0 < v < math.inf,
                         message='--learning_rate must be > 0 and finite')
flags.register_multi_flags_validator(
    ['compare', 'inspect', 'eval_only', 'equality_table', 'export'],
    lambda d: sum(d.values()) <= 1,
    message='--compare, --inspect, --eval_only, --equality_table and --export are'
    ' separate modes: pick one')
def _names_in(allowed):
  return lambda values: bool(values) and set(values) <= set(allowed) and len(
      set(values)) == len(values)


flags.register_validator('compare_cells', _names_in(model_config.CELLS),
                         message='--compare_cells takes distinct names of '
                         + ', '.join(model_config.CELLS))
flags.register_validator('compare_runners', _names_in(model_config.RUNNERS),
                         message='--compare_runners takes distinct names of '
                         + ', '.join(model_config.RUNNERS))
flags.register_multi_flags_validator(
    ['report', 'compare'], lambda d: d['compare'] or not d['report'],
    message='--report makes the report of a --compare study: add --compare')
flags.register_multi_flags_validator(
    ['early_stopping_patience', 'validation_examples'],
    lambda d: not d['early_stopping_patience'] or d['validation_examples'] > 0,
    message='--early_stopping_patience stops on validation accuracy: give'
    ' --validation_examples=N')
flags.register_multi_flags_validator(
    ['tune', 'compare', 'validation_examples'],
    lambda d: not d['tune'] or (d['compare'] and d['validation_examples'] > 0),
    message='--tune tunes on a validation split: give --compare and --validation_examples=N')
def _inits_apply_to_the_cell(d):
  problem = model_config.init_conflict(d['cell'], d['gate_bias_init'], d['recurrent_init'])
  if problem:  # the library's own sentence, naming the flag and the cell
    raise flags.ValidationError(problem)
  return True


flags.register_multi_flags_validator(['cell', 'gate_bias_init', 'recurrent_init'],
                                     _inits_apply_to_the_cell)


def _zoneout_applies(d):
  problem = model_config.zoneout_conflict(d['cell'], d['num_layers'], d['bidirectional'],
                                          d['zoneout_c'], d['zoneout_h'])
  if problem:
    raise flags.ValidationError(problem)
  return True


flags.register_multi_flags_validator(
    ['cell', 'num_layers', 'bidirectional', 'zoneout_c', 'zoneout_h'], _zoneout_applies)


def _compared_cells_take_the_model_flags(d):
  """--compare trains each of --compare_cells with the same init and zoneout flags."""
  if not d['compare']:
    return True
  for cell in d['compare_cells']:
    problem = (model_config.init_conflict(cell, d['gate_bias_init'], d['recurrent_init'])
               or model_config.zoneout_conflict(cell, d['num_layers'], d['bidirectional'],
                                                d['zoneout_c'], d['zoneout_h']))
    if problem:
      raise flags.ValidationError(f'--compare_cells={",".join(d["compare_cells"])}'
                                  f' trains {cell}: {problem}')
  return True


flags.register_multi_flags_validator(
    ['compare', 'compare_cells', 'gate_bias_init', 'recurrent_init', 'num_layers',
     'bidirectional', 'zoneout_c', 'zoneout_h'], _compared_cells_take_the_model_flags)


def _rmsprop_flags_need_rmsprop(d):
  return d['optimizer'] == 'rmsprop' or not (d['rmsprop_decay'] != 0.9
                                             or d['rmsprop_momentum'] != 0.0)


flags.register_multi_flags_validator(
    ['optimizer', 'rmsprop_decay', 'rmsprop_momentum'], _rmsprop_flags_need_rmsprop,
    message='--rmsprop_decay and --rmsprop_momentum apply to --optimizer=rmsprop only')
flags.register_multi_flags_validator(
    ['time_major', 'runner'], lambda d: not (d['time_major'] and d['runner'] == 'static'),
    message='--time_major applies to --runner=dynamic only')

PROGRAM = 'train_mnist_rnn.py'


def config_from_flags() -> config_lib.TrainConfig:
  model = config_lib.ModelConfig(
      cell=_CELL.value, runner=_RUNNER.value, time_major=_TIME_MAJOR.value,
      num_units=_NUM_UNITS.value, num_layers=_NUM_LAYERS.value,
      bidirectional=_BIDIRECTIONAL.value, pixels_per_step=_PIXELS_PER_STEP.value,
      permute_pixels=_PERMUTE_PIXELS.value, permutation_seed=_PERMUTATION_SEED.value,
      sequence_length=_SEQUENCE_LENGTH.value,
      head_input=_HEAD_INPUT.value, forget_bias=_FORGET_BIAS.value,
      gate_bias_init=_GATE_BIAS_INIT.value, recurrent_init=_RECURRENT_INIT.value,
      optimizer=_OPTIMIZER.value, rmsprop_decay=_RMSPROP_DECAY.value,
      rmsprop_momentum=_RMSPROP_MOMENTUM.value,
      clip_norm=_CLIP_NORM.value, zoneout_c=_ZONEOUT_C.value, zoneout_h=_ZONEOUT_H.value,
      fused_h_gradient=_FUSED_H_GRADIENT.value,
      towers=_TOWERS.value, seed=_SEED.value)
  config = config_lib.TrainConfig(
      model=model, data_dir=_DATA_DIR.value, workdir='',
      epochs=_EPOCHS.value, batch_size=_BATCH_SIZE.value,
      learning_rate=_LEARNING_RATE.value, lr_schedule=_LR_SCHEDULE.value,
      shift_pixels=_SHIFT_PIXELS.value, rotate_degrees=_ROTATE_DEGREES.value,
      intra_op_threads=_INTRA_OP_THREADS.value,
      inter_op_threads=_INTER_OP_THREADS.value,
      train_examples=_TRAIN_EXAMPLES.value, test_examples=_TEST_EXAMPLES.value,
      validation_examples=_VALIDATION_EXAMPLES.value,
      early_stopping_patience=_EARLY_STOPPING_PATIENCE.value)
  workdir = _WORKDIR.value or config_lib.default_workdir(config, compare=_COMPARE.value)
  return dataclasses.replace(config, workdir=workdir)


def fail(message: str, code: int = errors.EXIT_ERROR):
  cli.fail(PROGRAM, message, code)


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


def _load_kernels_if_needed(config):
  """Builds a fused cell's kernels before anything is written (a missing compiler is
  then a one-line error, not a half-made run)."""
  if config.model.cell.startswith('fused_') and not _COMPARE.value:
    from models import fused_ops  # pylint: disable=g-import-not-at-top
    try:
      fused_ops.load(config.model.cell)
    except fused_ops.KernelBuildError as e:
      raise errors.ReportedError(str(e)) from None


def _explain(config):
  """--inspect and --equality_table: print, train nothing, write nothing."""
  data = mnist_data.load(config.data_dir)
  from mnist_rnn import equalities  # pylint: disable=g-import-not-at-top
  from mnist_rnn import inspect_graph  # pylint: disable=g-import-not-at-top
  _load_kernels_if_needed(config)
  if _INSPECT.value:
    print(inspect_graph.inspect(config.model, data.test.take(4).images), end='')
  else:
    print(equalities.table(data.test.take(64).images), end='')


def _evaluate(config):
  """--eval_only: reads the run folder (while no run trains in it), writes nothing."""
  workdir_lib.check_readable(config.workdir, config_lib.flag_lines(config))
  with workdir_lib.locked(config.workdir, shared=True):
    data = mnist_data.load(config.data_dir)
    from mnist_rnn import train  # pylint: disable=g-import-not-at-top
    _load_kernels_if_needed(config)
    result = train.evaluate_checkpoint(config, data)
  # The result on stdout, as training prints its own (`> result.txt` keeps it).
  print(f'eval: step {result["step"]} | test loss {result["test_loss"]:.4f} acc'
        f' {result["test_accuracy"]:.4f} | states.h == outputs[-1]:'
        f' {result["state_equals_output"]}', flush=True)


def _export(config):
  """--export: reads the checkpoint, writes only under <workdir>/saved_model."""
  workdir_lib.check_readable(config.workdir, config_lib.flag_lines(config), 'export')
  with workdir_lib.locked(config.workdir):
    from mnist_rnn import export  # pylint: disable=g-import-not-at-top
    print(export.export(config))


def _train(config, stop):
  lines = config_lib.flag_lines(config)
  # Checked before anything is written: the folder may hold another run.
  workdir_lib.check_writable(config.workdir, lines,
                             suggestion=config_lib.default_workdir(config))
  data = mnist_data.load(config.data_dir)
  train_split, _ = mnist_data.hold_out(data.train, config.validation_examples)
  # What this command adds to the folder's record (or refuses), before writing.
  steps_per_epoch = math.ceil(len(train_split.take(config.train_examples))
                              / config.batch_size)
  done_steps = workdir_lib.checkpoint_steps(config.workdir)
  saved = workdir_lib.read_saved_flags(config.workdir)
  start, segment = segments.plan(
      config.workdir, int(saved.get('epochs', 0)) if done_steps else 0,
      done_steps[0] // steps_per_epoch if done_steps else 0, config.epochs,
      config.lr_schedule, _RESTART_SCHEDULE.value, lines,
      f'python train_mnist_rnn.py --flagfile={config.workdir}/flags.txt'
      f' --workdir={config.workdir}')
  config = dataclasses.replace(config, schedule_start_epoch=start)
  done_epochs = done_steps[0] // steps_per_epoch if done_steps else 0
  if segment is None and done_epochs and (done_epochs >= config.epochs
                                          or config.early_stopping_patience):
    # A finished run asked again: answered from its files, without TensorFlow.
    history = segments.finished_history(config.workdir, done_epochs)
    stopped = metrics_log.stopped_early(history, config.early_stopping_patience)
    if history and (stopped or done_epochs >= config.epochs):
      logging.info('%s', f'{config.workdir} stopped early after epoch {done_epochs}:'
                   ' nothing to train' if stopped else segments.nothing_to_train(
                       config.workdir, done_epochs, config.epochs, config.lr_schedule))
      print(metrics_log.summary_line(history, bool(config.early_stopping_patience)),
            flush=True)
      return
  if not _WORKDIR.value and not done_steps:
    _say_if_finished_elsewhere(config, lines, steps_per_epoch)
  with contextlib.ExitStack() as hold:
    # From here the folder is created; if the set-up fails before training starts,
    # what was created is removed again. One process at a time trains in it.
    with workdir_lib.created(config.workdir):
      hold.enter_context(workdir_lib.locked(config.workdir))
      logging.info('run folder: %s', config.workdir)
      from mnist_rnn import train  # pylint: disable=g-import-not-at-top
      _load_kernels_if_needed(config)
      workdir_lib.write_flags(config.workdir, lines)
      if segment is not None:
        segments.append(config.workdir, segment)
    result = train.train_and_evaluate(config, data, should_stop=stop)
  # The result on stdout (`> log` keeps it); progress went to stderr.
  print(train.summary_line(result.history, bool(config.early_stopping_patience)),
        flush=True)


def _say_if_finished_elsewhere(config, lines, steps_per_epoch):
  """A new default folder while a finished run of the same flags (another --epochs)
  sits beside it: one line naming that run and the command that trains it on."""
  folder, done = segments.finished_elsewhere(config.workdir, lines, steps_per_epoch)
  if folder and done < config.epochs:
    logging.warning('%s holds a finished run of these flags (%d epoch%s); this command'
                    ' starts a new one in %s from epoch 1. To train that run on to %d'
                    ' epochs instead, stop this (Ctrl-C) and run: %s', folder, done,
                    '' if done == 1 else 's',
                    config.workdir, config.epochs, segments.continue_command(
                        folder, config.lr_schedule, config.epochs))


def _compare(config):
  """--compare: the study (package `study`) runs each run as a process of its own."""
  if flags.FLAGS['seed'].present:
    fail('--compare trains seeds 0..K-1 of each combination: give --seeds=K, not'
         ' --seed', errors.EXIT_USAGE)
  data = mnist_data.load(config.data_dir)  # a bad data folder: one line, nothing made
  mnist_data.hold_out(data.train, config.validation_examples)
  del data
  from study import comparison  # pylint: disable=g-import-not-at-top  (Optuna, SQLAlchemy)
  jobs = _JOBS.value or os.cpu_count() or 1
  towers = _TOWERS.value if flags.FLAGS['towers'].present else max(
      1, (os.cpu_count() or 1) // jobs)
  grid = comparison.Grid(base=config, cells=tuple(_COMPARE_CELLS.value),
                         runners=tuple(_COMPARE_RUNNERS.value), seeds=_SEEDS.value,
                         towers=towers)
  folder = _WORKDIR.value or (config_lib.default_workdir(config, compare=True)
                              + grid.folder_suffix())
  if _TUNE.value and not _WORKDIR.value:
    folder += '_tuned'
  options = comparison.Options(
      folder=folder, storage=_STORAGE.value, study=_STUDY.value, jobs=jobs,
      heartbeat_seconds=_HEARTBEAT_SECONDS.value, report_only=_REPORT.value)
  lines = _compare_flag_lines(config, folder)
  if _TUNE.value:
    from study import tuning  # pylint: disable=g-import-not-at-top
    given = tuple(sorted(name for name in config_lib.flatten(config)
                         if name in flags.FLAGS and flags.FLAGS[name].present))
    outcome = tuning.run(grid, options, tuning.Options(
        trials=_TUNE_TRIALS.value, epochs=_TUNE_EPOCHS.value or config.epochs,
        train_examples=_TUNE_TRAIN_EXAMPLES.value or config.train_examples,
        space=_TUNE_SPACE.value or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), 'configs', 'tune_space.json'),
        pruner=_TUNE_PRUNER.value, reduction_factor=_TUNE_REDUCTION_FACTOR.value,
        sampler_seed=_TUNE_SEED.value,
        given=given), lines)
  else:
    outcome = comparison.run(grid, options, flag_lines=lines)
  if outcome.markdown:
    print(outcome.markdown, end='')
    sys.stdout.flush()
  if outcome.error:
    fail(outcome.error, outcome.exit_code)


def _compare_flag_lines(config, folder):
  """The comparison's own flags.txt: --flagfile of it repeats the whole comparison."""
  lines = [l for l in config_lib.flag_lines(dataclasses.replace(config, workdir=folder))
           if not l.startswith('--seed=')]
  return lines + ['--compare', f'--compare_cells={",".join(_COMPARE_CELLS.value)}',
                  f'--compare_runners={",".join(_COMPARE_RUNNERS.value)}',
                  f'--seeds={_SEEDS.value}'] + (
                      [f'--storage={_STORAGE.value}', f'--study={_STUDY.value}']
                      if _STORAGE.value else []) + (
                          ['--tune', f'--tune_trials={_TUNE_TRIALS.value}',
                           f'--tune_epochs={_TUNE_EPOCHS.value}',
                           f'--tune_train_examples={_TUNE_TRAIN_EXAMPLES.value}',
                           f'--tune_space={_TUNE_SPACE.value}',
                           f'--tune_pruner={_TUNE_PRUNER.value}',
                           f'--tune_reduction_factor={_TUNE_REDUCTION_FACTOR.value}',
                           f'--tune_seed={_TUNE_SEED.value}']
                          if _TUNE.value else [])


def main(argv):
  if len(argv) > 1:
    fail(f'unexpected arguments: {" ".join(argv[1:])}', errors.EXIT_USAGE)
  stop = StopRequest()
  stop.install()
  config = config_from_flags()
  try:
    if _COMPARE.value:
      _compare(config)
    elif _INSPECT.value or _EQUALITY_TABLE.value:
      _explain(config)
    elif _EVAL_ONLY.value:
      _evaluate(config)
    elif _EXPORT.value:
      _export(config)
    else:
      _train(config, stop)
  except errors.TrainingInterrupted as e:
    logging.warning('%s received: %s', stop.signal_name, e)
    fail(f'interrupted by {stop.signal_name}: {e}; rerun the same command to resume',
         e.exit_code)
  except errors.ReportedError as e:
    fail(str(e), e.exit_code)


# What --helpshort lists (--help lists every flag).
MAIN_FLAGS = ('cell', 'runner', 'time_major', 'num_units', 'num_layers', 'pixels_per_step',
              'epochs', 'batch_size', 'learning_rate', 'seed', 'validation_examples',
              'workdir', 'inspect', 'equality_table', 'eval_only', 'export', 'compare',
              'seeds')

if __name__ == '__main__':
  app.run(main, flags_parser=cli.flags_parser(PROGRAM, __doc__, MAIN_FLAGS))
