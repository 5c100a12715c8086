"""Zoneout (Krueger et al. 2016): at each step some units keep their previous value.

`--zoneout_c=z_c --zoneout_h=z_h`. In training each unit of the LSTM's c (with
probability z_c) and of h (z_h; a GRU's or RNN's state is h) keeps its value of the step
before instead of taking the new one:

  c_t = m_c * c_{t-1} + (1 - m_c) * c_new,   m_c ~ Bernoulli(z_c), one per unit and step
  h_t = m_h * h_{t-1} + (1 - m_h) * h_new

and in evaluation m is its expectation z (a fixed mix of old and new). Unlike dropout,
nothing is zeroed: the state and its gradient flow on unchanged through the kept units,
which is why it regularises long sequences without cutting their memory.

The wrapped cell's output is the new h, the same tensor as the state's h, so
`states.h == outputs[-1]` holds with zoneout as without.

Where the masks come from. A cell inside dynamic_rnn's while loop does not know which
step it is at, and a stateful random op would draw different masks after a resume than
in an unbroken run. So the masks of every step are drawn at once, before the runner,
by a stateless op from a seed the training loop feeds per batch (a function of the
run's seed, the epoch and the batch: a resumed run draws the same masks), and ride
along as extra input features: each step's input is [pixels, m_c, m_h], and the
wrapper splits them off before the cell sees its input. In evaluation the same
features hold z.

The price: a dozen small ops per step around the cell (the fused gate kernels do not
take masks) and wider inputs; at 784 steps of the fused LSTM, 0.57-0.74x the examples/s
and a graph three times as slow to build (docs/results.md).
"""

import numpy as np

from models import config as config_lib
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1


def rates(cell: str, zoneout_c: float, zoneout_h: float) -> tuple:
  """The zoned-out parts of the state, in mask order: ((name, rate), ...), c before h;
  parts with rate 0 are left out (an empty tuple: no zoneout)."""
  parts = ((('c', zoneout_c),) if cell in config_lib.LSTM_CELLS else ()) + (('h', zoneout_h),)
  return tuple((name, z) for name, z in parts if z > 0)


def mask_features(parts: tuple, units: int) -> int:
  """How many input features the masks add to each step."""
  return len(parts) * units


def masks(parts: tuple, units: int, batch, steps: int, seed=None, training=None):
  """The masks of every step: [batch, steps, len(parts) * units] float32.

  Args:
    parts: `rates(...)`.
    units: the cell's units.
    batch: the batch size (an int or a scalar tensor).
    steps: the time steps.
    seed: [2] int64 tensor, the stateless draw's seed (fed per batch in training).
    training: scalar bool tensor: Bernoulli(z) draws when true, z itself when false.
      None: z itself (an inference graph, which never trains).
  """
  z = tf.constant(np.repeat([rate for _, rate in parts], units).astype(np.float32))

  def expectation():
    return tf.broadcast_to(z, [batch, steps, len(parts) * units])

  if training is None:
    return expectation()

  def draw():
    u = tf.random.stateless_uniform([batch, steps, len(parts) * units], seed=seed)
    return tf.cast(u < z, tf.float32)

  return tf1.cond(training, draw, expectation)


class ZoneoutWrapper(tf1.nn.rnn_cell.RNNCell):
  """A cell whose input ends with its zoneout masks (see the module docstring).

  Input [batch, features + mask features]; state and output as the wrapped cell's
  (LSTMStateTuple(c, h) and h; or h and h). The wrapped cell's variables keep their
  names (the wrapper opens no variable scope of its own), so checkpoints, the init
  recipes and the export read them as without zoneout.
  """

  def __init__(self, cell, parts: tuple, units: int):
    super().__init__()
    self._cell = cell
    self._parts = tuple(name for name, _ in parts)
    self._units = units

  @property
  def state_size(self):
    return self._cell.state_size

  @property
  def output_size(self):
    return self._cell.output_size

  def zero_state(self, batch_size, dtype):
    return self._cell.zero_state(batch_size, dtype)

  def __call__(self, inputs, state, scope=None):
    """inputs [batch, features + masks], state -> (h, new state), zoned out."""
    width = mask_features(self._parts, self._units)
    x, mask = inputs[:, :-width], inputs[:, -width:]
    by_part = dict(zip(self._parts, tf.split(mask, len(self._parts), axis=1)))
    output, new_state = self._cell(x, state, scope=scope)

    def keep(name, old, new):
      if name not in by_part:
        return new
      m = by_part[name]
      return m * old + (1.0 - m) * new

    if isinstance(new_state, tf1.nn.rnn_cell.LSTMStateTuple):
      c = keep('c', state.c, new_state.c)
      h = keep('h', state.h, new_state.h)
      return h, tf1.nn.rnn_cell.LSTMStateTuple(c, h)
    del output  # a GRU's or RNN's output is its new state
    h = keep('h', state, new_state)
    return h, h
