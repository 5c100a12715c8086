"""Builds the tf.compat.v1 RNN cells by name, and reads the hidden part of a state."""

import warnings

from models import config
from models import fused_gru
from models import fused_lstm
from models import fused_ops
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1


def make_cell(name: str, num_units: int, forget_bias: float = 1.0,
              fused_h_gradient: str = 'transposed_rows'):
  """Returns a fresh `tf.compat.v1.nn.rnn_cell` cell.

  Args:
    name: 'lstm' (LSTMCell), 'basic_lstm' (BasicLSTMCell) or 'fused_lstm'
      (fused_lstm.FusedLSTMCell: LSTMCell with compiled gate kernels): state
      LSTMStateTuple(c, h), each [batch, num_units]; 'gru' (GRUCell) or 'rnn'
      (BasicRNNCell, tanh) or 'fused_gru' (fused_gru.FusedGRUCell: GRUCell with
      compiled kernels): the state is h itself, [batch, num_units].
    num_units: hidden size.
    forget_bias: added to the LSTM forget gate (ignored by GRU and RNN).
    fused_h_gradient: the fused cells' form of h's gradient, one of
      config.FUSED_H_GRADIENTS (fused_ops.times_h); ignored by the others.

  Raises:
    fused_ops.KernelBuildError: a fused cell whose kernels cannot be built.
  """
  # These classes warn that they are deprecated; using them is this project's point.
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', UserWarning)
    if name == 'lstm':
      return tf1.nn.rnn_cell.LSTMCell(num_units, forget_bias=forget_bias)
    if name == 'basic_lstm':
      return tf1.nn.rnn_cell.BasicLSTMCell(num_units, forget_bias=forget_bias)
    if name == 'gru':
      return tf1.nn.rnn_cell.GRUCell(num_units)
    if name == 'rnn':
      return tf1.nn.rnn_cell.BasicRNNCell(num_units)
  if name == 'fused_lstm':
    return fused_lstm.FusedLSTMCell(num_units, forget_bias=forget_bias,
                                    h_gradient=fused_h_gradient)
  if name == 'fused_gru':
    return fused_gru.FusedGRUCell(num_units, h_gradient=fused_h_gradient)
  raise ValueError(f'unknown cell {name!r}; expected one of {config.CELLS}')


def make_stack(name: str, num_units: int, num_layers: int = 1, forget_bias: float = 1.0,
               fused_h_gradient: str = 'transposed_rows'):
  """One cell, or a MultiRNNCell of `num_layers` fresh cells (never one cell reused:
  each layer needs its own weights). Its state is then a tuple, one entry per layer."""
  if num_layers == 1:
    return make_cell(name, num_units, forget_bias, fused_h_gradient)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', UserWarning)
    return tf1.nn.rnn_cell.MultiRNNCell(
        [make_cell(name, num_units, forget_bias, fused_h_gradient)
         for _ in range(num_layers)])


def hidden_and_cell_state(state):
  """Splits a final state into (h, c) of the top layer: c is None without one.

  Args:
    state: LSTMStateTuple(c, h); a [batch, units] tensor (GRU, RNN: h itself); or a
      MultiRNNCell's tuple with one such entry per layer.

  Returns:
    (h [batch, units], c [batch, units] or None).
  """
  if isinstance(state, tuple) and not isinstance(state, tf1.nn.rnn_cell.LSTMStateTuple):
    state = state[-1]  # stacked: the top layer is what produced outputs
  if isinstance(state, tf1.nn.rnn_cell.LSTMStateTuple):
    return state.h, state.c
  return state, None
