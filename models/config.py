"""What shapes the graph: the model's configuration and the names it accepts.

Pure Python, no TensorFlow: the command line offers and validates these names
before TensorFlow is imported.
"""

import dataclasses

# The cell names `cells.make_cell` knows; new names join --compare, --equality_table
# and the benchmark.
CELLS = ('lstm', 'gru', 'rnn', 'basic_lstm', 'fused_lstm')
RUNNERS = ('static', 'dynamic')
HEAD_INPUTS = ('outputs_last', 'last_relevant', 'state_h')
SEQUENCE_LENGTHS = ('full', 'trimmed')

# Cells whose checkpoints hold the same variables under the same names, so a
# checkpoint of one restores into the other (FusedLSTMCell subclasses LSTMCell).
CHECKPOINT_FAMILIES = {'fused_lstm': 'lstm'}


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
  sequence_length: str = 'full'        # 'full' (28) | 'trimmed' (to the last inked row)
  head_input: str = 'outputs_last'     # one of HEAD_INPUTS
  forget_bias: float = 1.0      # LSTM only
  clip_norm: float = 5.0        # global gradient-norm clip; 0 disables
  # Split each batch into this many towers sharing the weights; with one intra-op
  # thread they run in parallel, one per core (docs/speed.md). The same model and
  # loss; only the order of float sums changes.
  towers: int = 2
  seed: int = 0                 # graph-level seed: initial weights
