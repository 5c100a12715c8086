"""Initial values the cells' own initializers do not give, for long sequences.

`tf.compat.v1.nn.rnn_cell` cells create their variables with fixed initializers (the
kernel Glorot-uniform over [inputs + units, gates * units], the LSTM bias zeros, the
GRU gate bias 1.0). Two recipes of the sequential-MNIST literature change them:

- chrono (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?"): an
  LSTM's forget-gate bias b_f = log(u), u ~ U[1, T - 1] per unit, and its input-gate
  bias -b_f; a GRU's update gate (TF's GRUCell keeps u * h_prev, so u plays the forget
  gate's part) likewise log(u). A unit then starts out remembering over about u steps,
  spread over 1..T, instead of ~e steps (forget bias 1). LSTMCell adds --forget_bias to
  the forget gate itself; the variable is set to log(u) - forget_bias so the gate sees
  exactly log(u) whatever --forget_bias is.
- orthogonal: each gate's [units, units] block of recurrent rows (the kernel's last
  `units` rows) an orthogonal matrix, so a step neither shrinks nor grows h at the start;
  identity: the same rows of a BasicRNNCell set to I (IRNN, Le et al. 2015).

The values are drawn here with numpy from the model's seed (the same seed, the same
start), and assigned in the graph right after the variables' own initializers: a
restored checkpoint never runs them.
"""

import re

import numpy as np

from models import config as config_lib
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

# Variable names of each cell (the last parts; the scopes in front vary with layers,
# directions and runners): kernel [inputs + units, gates * units], bias [gates * units].
_LSTM = re.compile(r'(^|/)(lstm_cell|basic_lstm_cell)/(kernel|bias):0$')
_GRU = re.compile(r'(^|/)gru_cell/(gates|candidate)/(kernel|bias):0$')
_RNN = re.compile(r'(^|/)basic_rnn_cell/(kernel|bias):0$')


def chrono_biases(units: int, steps: int, rng: np.random.Generator) -> np.ndarray:
  """log(u), u ~ U[1, steps - 1]: [units] float32 (all 0 when steps <= 2)."""
  high = max(steps - 1, 1)
  return np.log(rng.uniform(1.0, high, size=units)).astype(np.float32)


def orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
  """A random [n, n] orthogonal float32 matrix (QR of a Gaussian, signs fixed so it is
  uniformly distributed)."""
  q, r = np.linalg.qr(rng.standard_normal((n, n)))
  return (q * np.sign(np.diag(r))).astype(np.float32)


def _recurrent_blocks(units: int, gates: int, kind: str, rng) -> np.ndarray:
  """[units, gates * units]: one block per gate, orthogonal or identity."""
  if kind == 'identity':
    return np.tile(np.eye(units, dtype=np.float32), (1, gates))
  return np.concatenate([orthogonal(units, rng) for _ in range(gates)], axis=1)


def assignments(config: config_lib.ModelConfig, variables, steps: int) -> list:
  """Ops that set `variables` as `config.gate_bias_init` and `config.recurrent_init` say.

  Args:
    config: the model (cell, num_units, forget_bias, the two inits, seed).
    variables: the graph's trainable variables (those of other cells are left alone).
    steps: T, the time steps one sequence has (chrono draws u from U[1, T - 1]).

  Returns:
    A list of assign ops (empty when both inits are 'default'); each must run after
    the variables' own initializers.

  Raises:
    ValueError: an init that does not apply to config.cell.
  """
  problem = config_lib.init_conflict(config.cell, config.gate_bias_init,
                                     config.recurrent_init)
  if problem:
    raise ValueError(problem)
  if config.gate_bias_init == 'default' and config.recurrent_init == 'default':
    return []
  rng = np.random.default_rng([config.seed, 784, 1])
  units, ops = config.num_units, []
  for v in sorted(variables, key=lambda v: v.name):  # a fixed order of draws
    name, shape = v.name, v.shape.as_list()
    lstm, gru = _LSTM.search(name), _GRU.search(name)
    rnn = None if lstm or gru else _RNN.search(name)
    if lstm or rnn:
      part = (lstm or rnn).group((lstm or rnn).lastindex)  # 'kernel' or 'bias'
    elif gru:
      part = f'{gru.group(2)}/{gru.group(3)}'  # 'gates/kernel', 'candidate/bias', ...
    else:
      continue
    if part.endswith('kernel') and config.recurrent_init != 'default':
      gates = shape[1] // units
      blocks = _recurrent_blocks(units, gates, config.recurrent_init, rng)
      # read_value(): a fresh read, after the initializers (v[...] would slice the
      # variable's cached read, which no control dependency orders).
      ops.append(v.assign(tf.concat([v.read_value()[:shape[0] - units], blocks], 0)))
    if config.gate_bias_init != 'chrono':
      continue
    if lstm and part == 'bias':  # gates i, j, f, o
      b_f = chrono_biases(units, steps, rng)
      bias = np.zeros(shape, np.float32)
      bias[:units] = -b_f                                 # input gate
      bias[2 * units:3 * units] = b_f - config.forget_bias  # forget gate (+ forget_bias)
      ops.append(v.assign(bias))
    elif gru and part == 'gates/bias':  # gates r, u; r keeps GRUCell's 1.0
      bias = np.ones(shape, np.float32)
      bias[units:] = chrono_biases(units, steps, rng)
      ops.append(v.assign(bias))
  return ops


def initializer(config: config_lib.ModelConfig, steps: int, name: str = 'init'):
  """Every variable's initializer, then the `assignments`: one op to run at a fresh
  start. Build it after every variable (the optimizer's slots too) exists."""
  init = tf1.global_variables_initializer()
  # The assignments (and the reads their slices make) are created under the control
  # dependency, so they run after every initializer, never racing one.
  with tf.control_dependencies([init]):
    ops = assignments(config, tf1.trainable_variables(), steps)
    return tf.group(*ops, name=name) if ops else tf.group(init, name=name)
