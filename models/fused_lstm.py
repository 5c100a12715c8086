"""FusedLSTMCell: LSTMCell with its gate math in one compiled op forward, one backward.

`--cell=fused_lstm`. It is a `tf.compat.v1.nn.rnn_cell.LSTMCell` (a subclass) with the
same variables (`lstm_cell/kernel` [inputs + units, 4 * units], `lstm_cell/bias`
[4 * units]), the same initial weights for a seed, the same state LSTMStateTuple(c, h)
and the same equations; only `call` differs. LSTMCell computes a step as

  concat -> MatMul -> BiasAdd -> split -> 3 sigmoids, 2 tanhs, 3 multiplies, 2 adds

about a dozen small ops, and its gradient as about twice as many. On a CPU each costs
a few microseconds plus TensorFlow's cost of running an op, together as much as the
step's matrix multiplies. Here a step is its MatMuls -> `MnistRnnLstmGates`
(`kernels/lstm_gates.cc`), and its gradient one `MnistRnnLstmGatesGrad` (which also
gives the bias gradient) besides the MatMuls'. Under static_rnn the MatMuls are
x @ kernel_x and h @ kernel_h (the kernel's rows for x and for h); in dynamic_rnn's
loop, concat([x, h]) @ kernel as in LSTMCell. The default stays LSTMCell, the cell
the project teaches; this one is the speed option (docs/speed.md).

The kernels (`kernels/lstm_gates.cc`) are built on first use by `fused_ops`; CPU
kernels only.
"""

import warnings

from models import fused_ops
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1


@tf.RegisterGradient('MnistRnnLstmGates')
def _lstm_gates_grad(op, dc, dh, dacts):
  """Gradients of (*parts, bias, c_prev) from those of (c, h, acts).

  `acts` is kept only for this gradient; tf.gradients hands in zeros for it."""
  del dacts
  c, _, acts = op.outputs
  dgates, dbias, dc_prev = fused_ops.loaded('fused_lstm').mnist_rnn_lstm_gates_grad(
      op.inputs[-1], c, acts, dc, dh)
  return [dgates] * op.get_attr('N') + [dbias, dc_prev]


class FusedLSTMCell(tf1.nn.rnn_cell.LSTMCell):
  """LSTMCell(num_units, forget_bias) whose step runs the fused gate kernels.

  Only LSTMCell's defaults are supported (no peepholes, projection or clipping; tanh).
  State: LSTMStateTuple(c [batch, units], h [batch, units]); output: h, the same tensor
  as the state's h (as in LSTMCell).
  """

  def __init__(self, num_units: int, forget_bias: float = 1.0, reuse=None,
               h_gradient: str = 'transposed_rows'):
    # Fails here, while building the graph, if the kernels cannot be built.
    gate_ops = fused_ops.load('fused_lstm')
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', UserWarning)  # LSTMCell's deprecation notice
      # Named like LSTMCell so the variables are too: lstm_cell/kernel, lstm_cell/bias.
      super().__init__(num_units, forget_bias=forget_bias, reuse=reuse, name='lstm_cell')
    self._gate_ops = gate_ops
    self._h_gradient = h_gradient  # config.FUSED_H_GRADIENTS: fused_ops.times_h
    self._steps = 0

  def call(self, inputs, state):
    """One step: inputs [batch, features], state (c, h) -> (h, LSTMStateTuple(c, h))."""
    c_prev, h_prev = state
    if tf1.get_default_graph().building_function:
      # The body of dynamic_rnn's while loop, built once and run for every step: as
      # LSTMCell, one product of concat([x, h]) with the kernel (its gradient with the
      # kernel transposed before the loop). (The unrolled form below, per loop
      # iteration, was slower than LSTMCell itself: docs/speed.md.)
      parts = [fused_ops.times_kernel_in_loop(tf.concat([inputs, h_prev], 1), self._kernel,
                                              self._h_gradient)]
    else:
      # static_rnn: this graph holds every step. concat([x, h]) @ kernel as two
      # products, on a fresh read of the kernel every KERNEL_READ_EVERY steps
      # (fused_ops.rows_for_x_and_h says why).
      if self._steps % fused_ops.KERNEL_READ_EVERY == 0:
        self._kernel_x, self._kernel_h, self._kernel_h_t = fused_ops.rows_for_x_and_h(
            self._kernel, inputs.shape[1], self._num_units, self._h_gradient)
      self._steps += 1
      parts = [tf.matmul(inputs, self._kernel_x),
               fused_ops.times_h(h_prev, self._kernel_h, self._kernel_h_t, self._h_gradient)]
    c, h, _ = self._gate_ops.mnist_rnn_lstm_gates(parts, self._bias, c_prev,
                                                  forget_bias=self._forget_bias)
    return h, tf1.nn.rnn_cell.LSTMStateTuple(c, h)
