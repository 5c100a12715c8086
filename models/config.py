"""What shapes the graph: the model's configuration and the names it accepts.

Pure Python, no TensorFlow: the command line offers and validates these names
before TensorFlow is imported.
"""

import dataclasses

import numpy as np

# The cell names `cells.make_cell` knows; new names join --compare, --equality_table
# and the benchmark.
CELLS = ('lstm', 'gru', 'rnn', 'basic_lstm', 'fused_lstm', 'fused_gru')
RUNNERS = ('static', 'dynamic')
HEAD_INPUTS = ('outputs_last', 'last_relevant', 'state_h')
SEQUENCE_LENGTHS = ('full', 'trimmed')
OPTIMIZERS = ('adam', 'rmsprop')
# default: the cells' own (zeros; GRUCell's gates 1.0). chrono: Tallec & Ollivier 2018.
GATE_BIAS_INITS = ('default', 'chrono')
# default: the cells' own (Glorot uniform over the whole kernel). orthogonal: each gate's
# [units, units] block of recurrent rows. identity: the recurrent rows of a BasicRNNCell
# (IRNN, Le et al. 2015).
RECURRENT_INITS = ('default', 'orthogonal', 'identity')
LSTM_CELLS = ('lstm', 'basic_lstm', 'fused_lstm')  # a state with c (--zoneout_c)
# The cells that have gates chrono initialisation sets (an LSTM's forget and input gates,
# a GRU's update gate), and the cell identity applies to.
GATED_CELLS = ('lstm', 'basic_lstm', 'fused_lstm', 'gru', 'fused_gru')
IDENTITY_CELLS = ('rnn',)
# How the fused cells multiply for h's gradient (fused_ops.times_h): on kernel rows
# transposed beforehand, or as tf.matmul's gradient does (transpose_b), the form of
# every run before 2026-12-06. The same products; their float sums may round apart.
FUSED_H_GRADIENTS = ('transposed_rows', 'matmul')
FUSED_CELLS = ('fused_lstm', 'fused_gru')

IMAGE_PIXELS = 28 * 28

# Cells whose checkpoints hold the same variables under the same names, so a
# checkpoint of one restores into the other (FusedLSTMCell subclasses LSTMCell,
# FusedGRUCell GRUCell).
CHECKPOINT_FAMILIES = {'fused_lstm': 'lstm', 'fused_gru': 'gru'}


def checkpoint_family(cell: str) -> str:
  """The name shared by cells whose checkpoints interchange ('fused_lstm' -> 'lstm')."""
  return CHECKPOINT_FAMILIES.get(cell, cell)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything that shapes the graph. Changing any of it breaks a resume."""
  cell: str = 'lstm'            # one of CELLS
  runner: str = 'static'        # one of RUNNERS
  time_major: bool = False      # dynamic only
  num_units: int = 128
  num_layers: int = 1           # > 1: a MultiRNNCell of fresh cells
  bidirectional: bool = False   # forward and backward cells, features concatenated
  # Each image is read row-major as IMAGE_PIXELS // pixels_per_step steps of
  # pixels_per_step pixels: 28 = a row per step (the tutorial), 1 = sequential MNIST.
  pixels_per_step: int = 28
  permute_pixels: bool = False  # one fixed permutation of the 784 pixels first
  permutation_seed: int = 0     # which permutation (its own seed)
  sequence_length: str = 'full'        # 'full' | 'trimmed' (to the last step with ink)
  head_input: str = 'outputs_last'     # one of HEAD_INPUTS
  forget_bias: float = 1.0      # LSTM only
  gate_bias_init: str = 'default'      # one of GATE_BIAS_INITS (gated cells only)
  recurrent_init: str = 'default'      # one of RECURRENT_INITS
  optimizer: str = 'adam'       # one of OPTIMIZERS
  rmsprop_decay: float = 0.9    # rmsprop only: the decay of the mean square
  rmsprop_momentum: float = 0.0  # rmsprop only
  clip_norm: float = 5.0        # global gradient-norm clip; 0 disables
  # Zoneout (models/zoneout.py): the chance that a unit of the LSTM's c, or of h (any
  # cell), keeps its previous value at a training step; 0 = none. One layer, one way.
  zoneout_c: float = 0.0
  zoneout_h: float = 0.0
  fused_h_gradient: str = 'transposed_rows'  # one of FUSED_H_GRADIENTS (fused cells)
  # Split each batch into this many towers sharing the weights; with one intra-op
  # thread they run in parallel, one per core (docs/speed.md). The same model and
  # loss; only the order of float sums changes.
  towers: int = 2
  seed: int = 0                 # graph-level seed: initial weights


def time_steps(config: ModelConfig) -> int:
  """How many steps the RNN reads an image in."""
  return IMAGE_PIXELS // config.pixels_per_step


def reads_rows(config: ModelConfig) -> bool:
  """True when each step is an image row, unpermuted: the tutorial's reading."""
  return config.pixels_per_step == 28 and not config.permute_pixels


def init_conflict(cell: str, gate_bias_init: str, recurrent_init: str) -> str:
  """'' when the initialisations apply to `cell`, else what is wrong, in one line."""
  if gate_bias_init == 'chrono' and cell not in GATED_CELLS:
    return (f'--gate_bias_init=chrono sets gate biases; --cell={cell} has no gates'
            f' (use one of {", ".join(GATED_CELLS)})')
  if recurrent_init == 'identity' and cell not in IDENTITY_CELLS:
    return (f'--recurrent_init=identity applies to --cell=rnn only (IRNN); for'
            f' --cell={cell} use --recurrent_init=orthogonal')
  return ''


def zoneout_conflict(cell: str, num_layers: int, bidirectional: bool, zoneout_c: float,
                     zoneout_h: float) -> str:
  """'' when the zoneout rates apply to the model, else what is wrong, in one line."""
  for name, rate in (('zoneout_c', zoneout_c), ('zoneout_h', zoneout_h)):
    if not 0.0 <= rate < 1.0:
      return f'--{name}={rate}: a rate in [0, 1) (1 would never update the state)'
  if zoneout_c > 0 and cell not in LSTM_CELLS:
    return (f'--zoneout_c zones out an LSTM\'s c; --cell={cell} has no c (use'
            f' --zoneout_h, or one of {", ".join(LSTM_CELLS)})')
  if (zoneout_c > 0 or zoneout_h > 0) and (num_layers > 1 or bidirectional):
    return ('--zoneout_c/--zoneout_h apply to one layer run one way: drop --num_layers'
            ' and --bidirectional, or the zoneout')
  return ''


def valid_pixels_per_step(n: int) -> bool:
  return 1 <= n <= IMAGE_PIXELS and IMAGE_PIXELS % n == 0


def pixel_permutation(seed: int) -> np.ndarray:
  """The fixed order in which --permute_pixels reads the 784 pixels: [784] int32, a
  function of `seed` alone (so a resumed or exported run reads the same order)."""
  return np.random.default_rng([seed, IMAGE_PIXELS]).permutation(IMAGE_PIXELS).astype(np.int32)
