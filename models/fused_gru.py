"""FusedGRUCell: GRUCell with its elementwise math in two compiled ops each way.

`--cell=fused_gru`. It is a `tf.compat.v1.nn.rnn_cell.GRUCell` (a subclass) with the
same variables (`gru_cell/gates/kernel` [inputs + units, 2 * units], `gates/bias`
[2 * units], `candidate/kernel` [inputs + units, units], `candidate/bias` [units]), the
same initial weights for a seed, the same state (h, [batch, units]) and the same
equations; only `call` differs. A step is

  MatMul(s) -> MnistRnnGruGates -> r * h_prev -> MatMul(s) -> MnistRnnGruState -> h

(`kernels/gru_gates.cc`), where GRUCell runs about ten small ops besides its MatMuls;
each op's gradient is one op too. Under static_rnn the MatMuls are x @ kernel_x and
h @ kernel_h (each kernel's rows for x and for h); in dynamic_rnn's loop, one product
of the concatenation with the whole kernel, as in GRUCell. The default GRU stays
GRUCell, the cell the project teaches; this one is the speed option (docs/speed.md).
The kernels are built on first use by `fused_ops`; CPU kernels only.
"""

import warnings

from models import fused_ops
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1


@tf.RegisterGradient('MnistRnnGruGates')
def _gru_gates_grad(op, dr_h, dacts):
  """Gradients of (*parts, bias, h_prev) from those of (r * h_prev, acts)."""
  h_prev = op.inputs[-1]
  dgates, dbias, dh_prev = fused_ops.loaded('fused_gru').mnist_rnn_gru_gates_grad(
      h_prev, op.outputs[1], dr_h, dacts)
  return [dgates] * op.get_attr('N') + [dbias, dh_prev]


@tf.RegisterGradient('MnistRnnGruState')
def _gru_state_grad(op, dh, dcand):
  """Gradients of (*parts, bias, acts, h_prev) from those of (h, cand).

  `cand` is kept only for this gradient; tf.gradients hands in zeros for it."""
  acts, h_prev = op.inputs[-2], op.inputs[-1]
  dparts, dbias, dacts, dh_prev = fused_ops.loaded('fused_gru').mnist_rnn_gru_state_grad(
      acts, h_prev, op.outputs[1], dh, dcand)
  return [dparts] * op.get_attr('N') + [dbias, dacts, dh_prev]


class FusedGRUCell(tf1.nn.rnn_cell.GRUCell):
  """GRUCell(num_units) whose step runs the fused kernels.

  Only GRUCell's defaults are supported (tanh, the default initializers). State and
  output: h [batch, units], the same tensor (as in GRUCell).
  """

  def __init__(self, num_units: int, reuse=None, h_gradient: str = 'transposed_rows'):
    # Fails here, while building the graph, if the kernels cannot be built.
    gru_ops = fused_ops.load('fused_gru')
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', UserWarning)  # GRUCell's deprecation notice
      # Named like GRUCell so the variables are too: gru_cell/gates/kernel, ...
      super().__init__(num_units, reuse=reuse, name='gru_cell')
    self._gru_ops = gru_ops
    self._h_gradient = h_gradient  # config.FUSED_H_GRADIENTS: fused_ops.times_h
    self._steps = 0

  def call(self, inputs, state):
    """One step: inputs [batch, features], state h [batch, units] -> (h, h)."""
    h_prev = state
    if tf1.get_default_graph().building_function:
      # The body of dynamic_rnn's while loop, built once and run for every step: as
      # GRUCell, each kernel multiplies a concatenation.
      # (Their gradients with the kernels transposed before the loop.)
      r_h, acts = self._gru_ops.mnist_rnn_gru_gates(
          [fused_ops.times_kernel_in_loop(tf.concat([inputs, h_prev], 1),
                                          self._gate_kernel, self._h_gradient)],
          self._gate_bias, h_prev)
      candidate = [fused_ops.times_kernel_in_loop(
          tf.concat([inputs, r_h], 1), self._candidate_kernel, self._h_gradient)]
    else:
      # static_rnn: this graph holds every step. As in FusedLSTMCell, each kernel's
      # rows for x and for h, read afresh every KERNEL_READ_EVERY steps
      # (fused_ops.rows_for_x_and_h says why).
      if self._steps % fused_ops.KERNEL_READ_EVERY == 0:
        sizes = (inputs.shape[1], self._num_units, self._h_gradient)
        self._gate_x, self._gate_h, self._gate_h_t = fused_ops.rows_for_x_and_h(
            self._gate_kernel, *sizes)
        self._candidate_x, self._candidate_h, self._candidate_h_t = (
            fused_ops.rows_for_x_and_h(self._candidate_kernel, *sizes))
      self._steps += 1
      r_h, acts = self._gru_ops.mnist_rnn_gru_gates(
          [tf.matmul(inputs, self._gate_x),
           fused_ops.times_h(h_prev, self._gate_h, self._gate_h_t, self._h_gradient)],
          self._gate_bias, h_prev)
      candidate = [tf.matmul(inputs, self._candidate_x),
                   fused_ops.times_h(r_h, self._candidate_h, self._candidate_h_t,
                                     self._h_gradient)]
    h, _ = self._gru_ops.mnist_rnn_gru_state(candidate, self._candidate_bias, acts, h_prev)
    return h, h

