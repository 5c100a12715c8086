"""Frozen configuration values passed from the command line to the library, and the
run folder's default name derived from them."""

import dataclasses
import os
import re

from mnist_rnn import workdir as workdir_lib
from models.config import ModelConfig  # noqa: F401  (re-exported: the model part of a run)
from models.config import time_steps


# The subfolder of a run folder holding the weights of its best validation epoch
# (with early stopping: the run's model).
BEST_VALIDATION_FOLDER = 'best_validation'


def model_folder(config: 'TrainConfig') -> str:
  """The folder whose newest checkpoint is the run's model (what --eval_only and
  --export read): with early stopping, the best validation epoch's once one is saved;
  otherwise the run folder's newest, its last epoch."""
  best = os.path.join(config.workdir, BEST_VALIDATION_FOLDER)
  if config.early_stopping_patience and workdir_lib.checkpoint_steps(best):
    return best
  return config.workdir


def run_name(model: ModelConfig) -> str:
  """A folder name for a model: cell_runner plus whatever differs from the defaults,
  e.g. 'lstm_dynamic_time_major_2layers_bidirectional_trimmed_last_relevant'."""
  parts = [model.cell, model.runner]
  if model.time_major:
    parts.append('time_major')
  if model.num_layers > 1:
    parts.append(f'{model.num_layers}layers')
  if model.bidirectional:
    parts.append('bidirectional')
  if model.pixels_per_step != 28:
    parts.append(f'{time_steps(model)}steps')
  if model.permute_pixels:
    parts.append('permuted')
  if model.sequence_length != 'full':
    parts.append(model.sequence_length)
  if model.head_input != 'outputs_last':
    parts.append(model.head_input)
  return '_'.join(parts)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run: the model plus data, schedule and output folder."""
  model: ModelConfig = ModelConfig()
  data_dir: str = ''            # '' = the bundled copy of MNIST
  workdir: str = 'runs/lstm_static'
  epochs: int = 25
  batch_size: int = 128
  learning_rate: float = 1e-3   # peak; cosine-decayed to 0 over `epochs`
  lr_schedule: str = 'cosine'   # 'cosine' | 'constant'
  shift_pixels: int = 2         # random translation of training images; 0 = none
  rotate_degrees: float = 0.0   # random rotation of training images (before the shift)
  train_examples: int = 0       # 0 = all 60,000
  test_examples: int = 0        # 0 = all 10,000
  # Held out from the END of the training set (before train_examples takes the first
  # N of the rest); it picks the best epoch, so test accuracy never picks anything.
  validation_examples: int = 0  # 0 = no validation split
  # Early stopping on the validation split: stop once validation accuracy has not
  # improved for this many epochs; the best epoch's weights are kept apart
  # (BEST_VALIDATION_FOLDER). 0 = train every epoch.
  early_stopping_patience: int = 0
  check_examples: int = 256     # fixed test images for the states-vs-outputs check
  # The epoch the learning-rate schedule starts at: 1, or the first epoch of a warm
  # restart (mnist_rnn.segments); the cosine decays to 0 over schedule_start..epochs.
  schedule_start_epoch: int = 1
  # TensorFlow's thread pools. On 2 cores one thread per op and two ops at a time
  # trains the static LSTM 5-12% faster than TF's default (both pools = all cores):
  # the unrolled graph has many small independent ops (docs/speed.md).
  intra_op_threads: int = 1     # 0 = TensorFlow's choice
  inter_op_threads: int = 0     # 0 = TensorFlow's choice (the number of cores)


# TrainConfig fields that are settings of the library, not command-line flags.
_NOT_FLAGS = ('check_examples', 'schedule_start_epoch')


def flatten(config: TrainConfig) -> dict:
  """Every setting of `config` in one dict: the model's fields, then the run's."""
  values = dataclasses.asdict(config.model)
  values.update((k, v) for k, v in dataclasses.asdict(config).items() if k != 'model')
  return values


def flag_lines(config: TrainConfig) -> list:
  """The config as absl flagfile lines ('--name=value', '--flag' / '--noflag'), one
  per command-line flag, so that `--flagfile` of them rebuilds the same config."""
  lines = []
  for name, value in flatten(config).items():
    if name in _NOT_FLAGS:
      continue
    if isinstance(value, bool):
      lines.append(f'--{name}' if value else f'--no{name}')
    else:
      lines.append(f'--{name}={value}')
  return lines


# Settings that change how fast a run computes, not what it computes: they are left
# out of the default folder name (towers change only the order of float sums).
_SPEED_ONLY = ('towers', 'intra_op_threads', 'inter_op_threads')
# Already spelled by run_name().
_IN_RUN_NAME = ('cell', 'runner', 'time_major', 'num_layers', 'bidirectional',
                'pixels_per_step', 'permute_pixels', 'sequence_length', 'head_input')


def _name_part(key: str, value) -> str:
  if key == 'data_dir':  # a folder: its last part names it well enough
    value = os.path.basename(os.path.normpath(value))
  text = f'{key}{value}' if isinstance(value, (int, float)) else f'{key}_{value}'
  return re.sub(r'[^A-Za-z0-9._+-]+', '-', text)


def default_workdir(config: TrainConfig, compare: bool = False) -> str:
  """The run folder for `config` when --workdir is not given.

  runs/<run_name> (runs/compare with --compare) plus every other setting that differs
  from its default and changes what is computed, in flag order, e.g.
  'runs/gru_static_epochs3_train_examples20000'. So a run with other flags never lands
  in an existing run's folder, and the same flags find their folder again to resume.
  """
  defaults = flatten(TrainConfig())
  parts = ['compare' if compare else run_name(config.model)]
  for key, value in flatten(config).items():
    if key in _SPEED_ONLY + _IN_RUN_NAME + _NOT_FLAGS + ('workdir',):
      continue
    if value != defaults[key]:
      parts.append(_name_part(key, value))
  if compare:  # the model options run_name() would have spelled
    model = dataclasses.replace(config.model, cell='lstm', runner='static', time_major=False)
    parts.extend(run_name(model).split('_')[2:])
  return os.path.join('runs', '_'.join(parts))
