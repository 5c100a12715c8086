"""Frozen configuration values passed from the command line to the library."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything that shapes the graph. Changing any of it breaks a resume."""
  cell: str = 'lstm'            # 'lstm' | 'gru'
  runner: str = 'static'        # 'static' | 'dynamic'
  time_major: bool = False      # dynamic only
  num_units: int = 128
  forget_bias: float = 1.0      # LSTM only
  clip_norm: float = 5.0        # global gradient-norm clip; 0 disables
  seed: int = 0                 # graph-level seed: initial weights


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
  check_examples: int = 256     # fixed test batch for the states-vs-outputs check
  eval_batch_size: int = 1000
