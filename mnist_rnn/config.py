"""Frozen configuration values passed from the command line to the library."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything that shapes the graph. Changing any of it breaks a resume."""
  cell: str = 'lstm'            # 'lstm' | 'gru' | 'rnn' | 'basic_lstm' | 'fused_lstm'
  runner: str = 'static'        # 'static' | 'dynamic'
  time_major: bool = False      # dynamic only
  num_units: int = 128
  num_layers: int = 1           # > 1: a MultiRNNCell of fresh cells
  bidirectional: bool = False   # forward and backward cells, features concatenated
  sequence_length: str = 'full'        # 'full' (28) | 'trimmed' (to the last inked row)
  head_input: str = 'outputs_last'     # 'outputs_last' | 'last_relevant' | 'state_h'
  forget_bias: float = 1.0      # LSTM only
  clip_norm: float = 5.0        # global gradient-norm clip; 0 disables
  # Split each batch into this many towers sharing the weights; with one intra-op
  # thread they run in parallel, one per core (LSTM static on 2 cores: ~1.7x).
  # The same model and loss; only the order of float sums changes.
  towers: int = 2
  seed: int = 0                 # graph-level seed: initial weights


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
  train_examples: int = 0       # 0 = all 60,000
  test_examples: int = 0        # 0 = all 10,000
  check_examples: int = 256     # fixed test images for the states-vs-outputs check
  # TensorFlow's thread pools. On 2 cores one thread per op and two ops at a time
  # trains the static LSTM 5-12% faster than TF's default (both pools = all cores):
  # the unrolled graph has many small independent ops (README, Speed).
  intra_op_threads: int = 1     # 0 = TensorFlow's choice
  inter_op_threads: int = 0     # 0 = TensorFlow's choice (the number of cores)


# TrainConfig fields that are settings of the library, not command-line flags.
_NOT_FLAGS = ('check_examples',)


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
