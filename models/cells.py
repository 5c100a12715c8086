"""Builds the tf.compat.v1 RNN cells by name, and reads the hidden part of a state."""

import warnings

import tensorflow as tf

tf1 = tf.compat.v1

CELLS = ('lstm', 'gru')


def make_cell(name: str, num_units: int, forget_bias: float = 1.0):
  """Returns a fresh `tf.compat.v1.nn.rnn_cell` cell.

  Args:
    name: 'lstm' (LSTMCell: state LSTMStateTuple(c, h), each [batch, num_units])
      or 'gru' (GRUCell: state is h itself, [batch, num_units]).
    num_units: hidden size.
    forget_bias: added to the LSTM forget gate (ignored by GRU).
  """
  # These classes warn that they are deprecated; using them is this project's point.
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', UserWarning)
    if name == 'lstm':
      return tf1.nn.rnn_cell.LSTMCell(num_units, forget_bias=forget_bias)
    if name == 'gru':
      return tf1.nn.rnn_cell.GRUCell(num_units)
  raise ValueError(f'unknown cell {name!r}; expected one of {CELLS}')


def hidden_and_cell_state(state):
  """Splits a final state into (h, c): c is None for cells without one (GRU).

  Args:
    state: LSTMStateTuple(c, h) for an LSTM, or a [batch, units] tensor for a GRU.

  Returns:
    (h [batch, units], c [batch, units] or None).
  """
  if isinstance(state, tf1.nn.rnn_cell.LSTMStateTuple):
    return state.h, state.c
  return state, None
