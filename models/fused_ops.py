"""Builds and loads the compiled gate kernels of the fused cells (`fused_lstm`, `fused_gru`).

Each fused cell's kernels are one C++ file in `models/kernels/`, built on first use with
the C++ compiler (`$CXX`, else `g++`) against the installed TensorFlow into `build/` at
the repository root; later runs load the built library. CPU kernels only: on a machine
where TensorFlow sees a GPU, loading them is refused (`_refuse_a_gpu`).
"""

import glob
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile

from absl import logging

from models import config
from models import tf_env

tf = tf_env.tensorflow()

_KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'kernels')
_BUILD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'build', 'kernels')
# Each fused cell's kernels: one source file.
SOURCES = {'fused_lstm': 'lstm_gates.cc', 'fused_gru': 'gru_gates.cc'}

_loaded = {}

# Under static_rnn a fused cell reads its kernels afresh every this many steps
# (`rows_for_x_and_h`).
KERNEL_READ_EVERY = 7


class KernelBuildError(Exception):
  """A fused cell's kernels could not be compiled or loaded (or a GPU is present)."""


def source_path(cell: str) -> str:
  return os.path.join(_KERNELS, SOURCES[cell])


def _compile_flags() -> list:
  flags = ['-O3', '-shared', '-fPIC', '-march=native']
  if platform.machine() in ('x86_64', 'AMD64'):
    # TensorFlow's Eigen does not compile with AVX512-FP16 on (which -march=native
    # turns on where the CPU has it); fp32 AVX-512 stays.
    flags.append('-mno-avx512fp16')
  return flags + tf.sysconfig.get_compile_flags()


def library_path(cell: str, cxx: str) -> str:
  """Where `cell`'s built kernels live: a name that changes with the source (and the
  shared header), the compiler and its flags, and the TensorFlow version, so a stale
  build is never loaded."""
  key = hashlib.sha256()
  for path in [source_path(cell)] + sorted(glob.glob(os.path.join(_KERNELS, '*.h'))):
    with open(path, 'rb') as f:  # the source and the header it includes
      key.update(f.read())
  for part in [cxx, tf.__version__, ' '.join(_compile_flags())]:
    key.update(part.encode())
  stem = os.path.splitext(SOURCES[cell])[0]
  return os.path.join(_BUILD_DIR, f'{stem}_{key.hexdigest()[:16]}.so')


def _build(cell: str, cxx: str, path: str) -> None:
  compiler = shutil.which(cxx)
  if compiler is None:
    raise KernelBuildError(
        f'--cell={cell} compiles its C++ kernels on first use and needs a C++'
        f' compiler: {cxx!r} was not found (install g++ or set $CXX)')
  # Built under a temporary name, then renamed: a concurrent or interrupted build never
  # leaves a half-written library under the final name.
  try:
    os.makedirs(_BUILD_DIR, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix='.so', dir=_BUILD_DIR)
  except OSError as e:
    raise KernelBuildError(f'--cell={cell}: cannot write its build folder: {e}') from e
  os.close(fd)
  command = ([compiler, source_path(cell), '-o', partial] + _compile_flags()
             + tf.sysconfig.get_link_flags())
  logging.info('compiling the %s kernels: %s', cell, path)
  try:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
      errors = [l for l in result.stderr.splitlines() if 'error' in l] or ['(no message)']
      raise KernelBuildError(
          f'--cell={cell}: compiling {source_path(cell)} failed: {errors[0]}')
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def _refuse_a_gpu(cell: str) -> None:
  """The kernels are CPU kernels: on a machine where TensorFlow sees a GPU they would run
  on the CPU between the GPU's matmuls, copying every step's tensors both ways. Refused
  rather than pinned to the CPU: the stock cell, the same model, runs all on the GPU."""
  gpus = tf.config.list_physical_devices('GPU')
  if gpus:
    raise KernelBuildError(
        f'--cell={cell} has CPU kernels only and TensorFlow sees {len(gpus)} GPU(s)'
        f' ({gpus[0].name}): use --cell={config.checkpoint_family(cell)}, the same model and'
        ' checkpoints, on the GPU')


def load(cell: str):
  """The compiled op module of `cell` ('fused_lstm' or 'fused_gru'), built first if
  needed. Raises KernelBuildError, also on a machine with a GPU."""
  _refuse_a_gpu(cell)
  if cell not in _loaded:
    cxx = os.environ.get('CXX', 'g++')
    path = library_path(cell, cxx)
    if not os.path.exists(path):
      _build(cell, cxx, path)
    try:
      _loaded[cell] = tf.load_op_library(path)
    except tf.errors.OpError as e:
      raise KernelBuildError(f'--cell={cell}: loading {path} failed: {e.message}') from e
  return _loaded[cell]


def rows_for_x_and_h(kernel, input_size: int, units: int, form: str) -> tuple:
  """A fresh read of a cell's kernel [input_size + units, width], split into its rows
  for x and for h, and h's rows transposed: [input_size, width], [units, width],
  [width, units] (the last for `times_h` in `form`; None for 'matmul', which has no
  use for it: a graph of that form holds exactly the ops of the runs before the flag).

  Each read's gradient is summed as soon as its steps' weight gradients exist, so a
  static cell that takes a new read every KERNEL_READ_EVERY steps sums its kernel
  gradient in groups during the backward pass instead of in one AddN over every step
  of every tower after it (~0.8 ms on one core while the other waits: 56 terms of
  [156, 512] for the LSTM with 2 towers). Two products instead of concat's one: the
  gradient then computes only h's part, [batch, units], where concat's computes
  [batch, inputs + units] and slices.

  The transposed rows are cut from a transpose of the whole read, not made by
  transposing h's rows: Grappler folds a Transpose that feeds a MatMul back into the
  MatMul's transpose flag, the slow form this copy exists to avoid (`times_h_rows`).
  """
  read = tf.identity(kernel)
  rows_x, rows_h = tf.split(read, [input_size, units], 0)
  if form == 'matmul':
    return rows_x, rows_h, None
  rows_h_t = tf.split(tf.transpose(read), [input_size, units], 1)[1]
  return rows_x, rows_h, rows_h_t


def times_h(h, rows_h, rows_h_t, form: str):
  """h @ rows_h with h's gradient in `form` (config.FUSED_H_GRADIENTS): 'transposed_rows'
  (`times_h_rows`) or 'matmul' (tf.matmul's own gradient; rows_h_t unused, may be None).
  """
  if form == 'matmul':
    return tf.matmul(h, rows_h)
  if form != 'transposed_rows':
    raise ValueError(f'unknown fused_h_gradient {form!r}; expected one of'
                     f' {config.FUSED_H_GRADIENTS}')
  return times_h_rows(h, rows_h, rows_h_t)


def times_kernel_in_loop(concat, kernel, form: str):
  """In the body of dynamic_rnn's while loop: concat([x, h]) @ kernel, h's gradient in
  `form` (`times_h`). For 'transposed_rows' the kernel is transposed in the outermost
  graph (tf.init_scope), before the loop, once per run instead of once per step; the
  loop reads it as an invariant."""
  if form == 'matmul':
    return times_h(concat, kernel, None, form)
  with tf.init_scope():
    kernel_t = tf.transpose(kernel)
  return times_h(concat, kernel, kernel_t, form)


@tf.custom_gradient
def times_h_rows(h, rows_h, rows_h_t):
  """h [batch, units] @ rows_h [units, width] -> [batch, width], as tf.matmul.

  (In dynamic_rnn's loop the cells pass concat([x, h]) and the whole kernel:
  `times_kernel_in_loop`.)

  Only the gradient differs from tf.matmul's: h's is dy @ rows_h_t, a plain product
  with the rows transposed once per kernel read (`rows_for_x_and_h`), where tf.matmul's
  gradient is dy @ rows_h with transpose_b, about twice as slow per step on a CPU for
  these shapes ([64, 512] @ [512, 128]: docs/speed.md). The kernel's gradient is
  tf.matmul's, h^T @ dy; rows_h_t gets none (its kernel's gradient comes through
  rows_h). The same products of the same numbers, but their float sums may round
  otherwise than transpose_b's: on an AVX2 EPYC the two forms trained the same first
  20 batches to the last digit and parted within 125 (docs/speed.md). Runs made before
  this form keep theirs with --fused_h_gradient=matmul.
  """
  def gradient(dy):
    return (tf.matmul(dy, rows_h_t), tf.matmul(h, dy, transpose_a=True), None)
  return tf.matmul(h, rows_h), gradient


def loaded(cell: str):
  """The op module `load(cell)` returned before (for gradient functions)."""
  return _loaded[cell]

