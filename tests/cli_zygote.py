"""A process that has imported TensorFlow once and forks a fresh process per command.

Most end-to-end tests run `train_mnist_rnn.py` (or `predict_mnist_rnn.py`) as a user
does, and a new Python process spends ~5 s of CPU importing TensorFlow and tf-keras
before it reads a flag: most of what the suite costs (docs/design.md). `run` below
stands in for `subprocess.run` with a helper process, started once per pytest worker
(`python -m tests.cli_zygote`): it imports what the programs import (through
`mnist_rnn` first, which selects legacy Keras itself, as the programs do), then forks
one child per request. It never builds a graph, opens a session or runs an op, so a
fork copies no TensorFlow runtime state, only imported modules.

Each child is a real process: its own pid, signal handlers, exit code, working folder,
and stdout and stderr written to files (TensorFlow's C++ log lines too: they go to file
descriptor 2). It runs the program's file as `__main__`, so the program's absl flags are
defined and parsed afresh in every child.

Protocol, one JSON object per line: a request on stdin, {"program", "args", "cwd",
"environ", "stdout", "stderr", "timeout"}; the answer on the original stdout once the
child has ended, {"returncode"} (negative: the signal that ended it) or {"timeout":
true} when it outlived `timeout` seconds and was killed. stdin closed: the helper exits.
"""

import atexit
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Read by TensorFlow, oneDNN, CUDA or Python while they load: a command that sets one of
# these differently from the helper's start cannot be forked from it.
_READ_AT_IMPORT = ('TF_', 'CUDA', 'PYTHON', 'OMP_', 'KMP_', 'ONEDNN', 'DNNL', 'MKL',
                   'LD_', 'XLA')


def _preload() -> None:
  """What the programs import before they read a flag, and what they import in `main`."""
  # pylint: disable=g-import-not-at-top,import-outside-toplevel,unused-import
  import mnist_rnn  # noqa: F401  (first: selects legacy Keras before TensorFlow loads)
  from mnist_rnn import train  # noqa: F401  (TensorFlow, its compat.v1 graph code)
  from models import classifier  # noqa: F401
  import tensorflow as tf
  tf.compat.v1.nn.rnn_cell.LSTMCell  # pylint: disable=pointless-statement  (tf-keras)


def _child(request: dict, channels: tuple, set_by_import: dict) -> None:
  """In the forked child: becomes the program's process, runs it, exits with its code.

  `set_by_import`: the variables the imports set (TF_USE_LEGACY_KERAS, ...), which the
  program's own imports would set in a fresh process."""
  for fd in channels:
    os.close(fd)
  code = 1
  try:
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['environ'])
    os.environ.update(set_by_import)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, request['stdout']), (2, request['stderr'])):
      target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
      os.dup2(target, fd)
      os.close(target)
    sys.argv = [request['program'], *request['args']]
    try:
      runpy.run_path(request['program'], run_name='__main__')
      code = 0
    except SystemExit as e:
      if e.code is None:
        code = 0
      elif isinstance(e.code, int):
        code = e.code
      else:  # sys.exit('message'): printed, exit status 1, as Python does
        print(e.code, file=sys.stderr)
        code = 1
  except BaseException:  # pylint: disable=broad-except  (as an uncaught exception would)
    traceback.print_exc()
    code = 1
  finally:
    for stream in (sys.stdout, sys.stderr):
      try:
        stream.flush()
      except Exception:  # pylint: disable=broad-except
        pass
    os._exit(code & 0xFF)  # pylint: disable=protected-access


def _wait(pid: int, timeout: float) -> dict:
  """Waits for the child; kills it once `timeout` seconds have passed."""
  handle = os.pidfd_open(pid)
  try:
    ready, _, _ = select.select([handle], [], [], timeout)
    if not ready:
      os.kill(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
      return {'timeout': True}
    _, status = os.waitpid(pid, 0)
    return {'returncode': os.waitstatus_to_exitcode(status)}
  finally:
    os.close(handle)


def main() -> None:
  before = dict(os.environ)
  _preload()
  set_by_import = {k: v for k, v in os.environ.items() if before.get(k) != v}
  answers = os.fdopen(os.dup(1), 'w')
  requests = sys.stdin.buffer
  # The helper's own prints, if any, must not mix with the answers.
  os.dup2(2, 1)
  channels = (requests.fileno(), answers.fileno())
  for line in requests:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
      _child(request, channels, set_by_import)
    answer = _wait(pid, request['timeout'] - (time.monotonic() - start))
    answers.write(json.dumps(answer) + '\n')
    answers.flush()


# -- the tests' side ----------------------------------------------------------


def _own_environ() -> dict:
  """This process's environment as the programs start with it: without
  TF_USE_LEGACY_KERAS, which they set themselves."""
  return {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}


def _import_environ(environ: dict) -> dict:
  return {k: v for k, v in environ.items()
          if k.startswith(_READ_AT_IMPORT) and k != 'TF_USE_LEGACY_KERAS'}


class _Helper:
  """This process's helper: started on first use with this process's environment,
  ended when this process ends."""

  _lock = threading.Lock()
  _process = None

  @classmethod
  def get(cls):
    if cls._process is not None and cls._process.poll() is not None:
      cls._process = None  # it died: start another
    if cls._process is None:
      cls._process = subprocess.Popen(
          [sys.executable, '-m', 'tests.cli_zygote'], cwd=ROOT, env=_own_environ(),
          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
      atexit.register(cls._process.stdin.close)
    return cls._process

  @staticmethod
  def can_fork(environ: dict) -> bool:
    return _import_environ(environ) == _import_environ(_own_environ())


def run(program: str, args, cwd: str, environ: dict, timeout: float, fresh: bool = False):
  """As `subprocess.run([sys.executable, program, *args], cwd=cwd, env=environ,
  capture_output=True, text=True, timeout=timeout)`, in a process forked from the
  helper; in a new interpreter, as subprocess.run, when `fresh` or when `environ`
  sets what TensorFlow reads at import differently from this process's environment.

  Raises:
    subprocess.TimeoutExpired: as subprocess.run does, the process killed.
  """
  command = [sys.executable, program, *args]
  if fresh or not _Helper.can_fork(environ):
    return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=timeout)
  with _Helper._lock:  # pylint: disable=protected-access
    helper = _Helper.get()  # pylint: disable=protected-access
    with tempfile.TemporaryDirectory() as folder:
      out, err = os.path.join(folder, 'stdout'), os.path.join(folder, 'stderr')
      helper.stdin.write(json.dumps(dict(
          program=program, args=[os.fspath(a) for a in args], cwd=os.fspath(cwd),
          environ=dict(environ), stdout=out, stderr=err, timeout=timeout)) + '\n')
      helper.stdin.flush()
      line = helper.stdout.readline()
      if not line:
        raise RuntimeError(f'tests.cli_zygote ended (exit {helper.wait()})')
      answer = json.loads(line)
      with open(out) as f:
        stdout = f.read()
      with open(err) as f:
        stderr = f.read()
  if answer.get('timeout'):
    raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
  return subprocess.CompletedProcess(command, answer['returncode'], stdout, stderr)


if __name__ == '__main__':
  main()
