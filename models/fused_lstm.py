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
the project teaches; this one is the speed option (README, Speed).

The kernels are C++ built here on first use with the C++ compiler (`$CXX`, else `g++`)
against the installed TensorFlow, into `build/` at the repository root; later runs
load the built library. CPU kernels only.
"""

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings

from absl import logging

from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'kernels', 'lstm_gates.cc')
_BUILD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'build', 'kernels')
# The kernel is read through a fresh identity every this many steps (see `call`).
KERNEL_READ_EVERY = 7

_ops = None


class KernelBuildError(Exception):
  """The fused LSTM kernels could not be compiled or loaded."""


def _compile_flags() -> list:
  flags = ['-O3', '-shared', '-fPIC', '-march=native']
  if platform.machine() in ('x86_64', 'AMD64'):
    # TensorFlow's Eigen does not compile with AVX512-FP16 on (which -march=native
    # turns on where the CPU has it); fp32 AVX-512 stays.
    flags.append('-mno-avx512fp16')
  return flags + tf.sysconfig.get_compile_flags()


def library_path(cxx: str) -> str:
  """Where the built kernels live: a name that changes with the source, the compiler
  and its flags, and the TensorFlow version, so a stale build is never loaded."""
  with open(_SOURCE, 'rb') as f:
    key = hashlib.sha256(f.read())
  for part in [cxx, tf.__version__, ' '.join(_compile_flags())]:
    key.update(part.encode())
  return os.path.join(_BUILD_DIR, f'lstm_gates_{key.hexdigest()[:16]}.so')


def _build(cxx: str, path: str) -> None:
  compiler = shutil.which(cxx)
  if compiler is None:
    raise KernelBuildError(
        f'--cell=fused_lstm compiles its C++ kernels on first use and needs a C++'
        f' compiler: {cxx!r} was not found (install g++ or set $CXX)')
  # Built under a temporary name, then renamed: a concurrent or interrupted build never
  # leaves a half-written library under the final name.
  try:
    os.makedirs(_BUILD_DIR, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix='.so', dir=_BUILD_DIR)
  except OSError as e:
    raise KernelBuildError(f'--cell=fused_lstm: cannot write its build folder: {e}') from e
  os.close(fd)
  command = ([compiler, _SOURCE, '-o', partial] + _compile_flags()
             + tf.sysconfig.get_link_flags())
  logging.info('compiling the fused LSTM kernels: %s', path)
  try:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
      errors = [l for l in result.stderr.splitlines() if 'error' in l] or ['(no message)']
      raise KernelBuildError(f'--cell=fused_lstm: compiling {_SOURCE} failed: {errors[0]}')
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def _refuse_a_gpu() -> None:
  """The kernels are CPU kernels: on a machine where TensorFlow sees a GPU they would run
  on the CPU between the GPU's matmuls, copying every step's tensors both ways. Refused
  rather than pinned to the CPU: LSTMCell, the same model, runs all on the GPU."""
  gpus = tf.config.list_physical_devices('GPU')
  if gpus:
    raise KernelBuildError(
        f'--cell=fused_lstm has CPU kernels only and TensorFlow sees {len(gpus)} GPU(s)'
        f' ({gpus[0].name}): use --cell=lstm, the same model and checkpoints, on the GPU')


def load_ops():
  """The compiled op module (built first if needed); raises KernelBuildError, also on a
  machine with a GPU."""
  global _ops
  _refuse_a_gpu()
  if _ops is None:
    cxx = os.environ.get('CXX', 'g++')
    path = library_path(cxx)
    if not os.path.exists(path):
      _build(cxx, path)
    try:
      _ops = tf.load_op_library(path)
    except tf.errors.OpError as e:
      raise KernelBuildError(f'--cell=fused_lstm: loading {path} failed: {e.message}') from e
  return _ops


@tf.RegisterGradient('MnistRnnLstmGates')
def _lstm_gates_grad(op, dc, dh, dacts):
  """Gradients of (*parts, bias, c_prev) from those of (c, h, acts).

  `acts` is kept only for this gradient; tf.gradients hands in zeros for it."""
  del dacts
  c, _, acts = op.outputs
  dgates, dbias, dc_prev = _ops.mnist_rnn_lstm_gates_grad(op.inputs[-1], c, acts, dc, dh)
  return [dgates] * op.get_attr('N') + [dbias, dc_prev]


class FusedLSTMCell(tf1.nn.rnn_cell.LSTMCell):
  """LSTMCell(num_units, forget_bias) whose step runs the fused gate kernels.

  Only LSTMCell's defaults are supported (no peepholes, projection or clipping; tanh).
  State: LSTMStateTuple(c [batch, units], h [batch, units]); output: h, the same tensor
  as the state's h (as in LSTMCell).
  """

  def __init__(self, num_units: int, forget_bias: float = 1.0, reuse=None):
    load_ops()  # fail here, while building the graph, if the kernels cannot be built
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', UserWarning)  # LSTMCell's deprecation notice
      # Named like LSTMCell so the variables are too: lstm_cell/kernel, lstm_cell/bias.
      super().__init__(num_units, forget_bias=forget_bias, reuse=reuse, name='lstm_cell')
    self._steps = 0

  def call(self, inputs, state):
    """One step: inputs [batch, features], state (c, h) -> (h, LSTMStateTuple(c, h))."""
    c_prev, h_prev = state
    if tf1.get_default_graph().building_function:
      # The body of dynamic_rnn's while loop, built once and run for every step: as
      # LSTMCell, one product of concat([x, h]) with the kernel. (The unrolled form
      # below, per loop iteration, was slower than LSTMCell itself: README, Speed.)
      parts = [tf.matmul(tf.concat([inputs, h_prev], 1), self._kernel)]
    else:
      # static_rnn: this graph holds every step. A fresh read of the kernel every
      # KERNEL_READ_EVERY steps: its gradient is then summed in groups, each as soon
      # as its steps' weight gradients exist, instead of in one AddN over every step
      # of every tower after the backward pass (~0.8 ms on one core while the other
      # waits: 56 terms of [156, 512] with 2 towers).
      if self._steps % KERNEL_READ_EVERY == 0:
        # LSTMCell's kernel is [inputs + units, 4 * units]: the rows for x, then h.
        self._kernel_x, self._kernel_h = tf.split(
            tf.identity(self._kernel), [inputs.shape[1], self._num_units], 0)
      self._steps += 1
      # concat([x, h]) @ kernel as two products: the gradient then computes only dh,
      # [batch, units], where concat's computes [batch, inputs + units] and slices.
      parts = [tf.matmul(inputs, self._kernel_x), tf.matmul(h_prev, self._kernel_h)]
    c, h, _ = _ops.mnist_rnn_lstm_gates(parts, self._bias, c_prev,
                                        forget_bias=self._forget_bias)
    return h, tf1.nn.rnn_cell.LSTMStateTuple(c, h)
