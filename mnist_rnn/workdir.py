"""The run folder: whether a run may use it, creating it, and `flags.txt` (its identity).

Nothing here writes before a run is known to be good: `check_writable` and
`check_readable` only read, and `created` removes a folder it made if the set-up
inside it fails, so a command that fails before training leaves no trace.
"""

import contextlib
import fcntl
import os
import re
import shutil
import tempfile

from absl import logging

from mnist_rnn import errors
from models import config as model_config

FLAGS_FILE = 'flags.txt'

# Flags that change the graph or the order of training steps: a checkpoint written
# under one value cannot be continued under another. Early stopping too: it decides
# where training ends and keeps the best epoch's weights from the first epoch on.
RESUME_KEYS = ('cell', 'runner', 'time_major', 'num_units', 'num_layers', 'bidirectional',
               'pixels_per_step', 'permute_pixels', 'permutation_seed', 'sequence_length',
               'head_input', 'forget_bias', 'gate_bias_init', 'recurrent_init',
               'optimizer', 'rmsprop_decay', 'rmsprop_momentum', 'clip_norm', 'seed',
               'batch_size', 'train_examples', 'validation_examples', 'zoneout_c',
               'zoneout_h', 'fused_h_gradient', 'early_stopping_patience')
# The value a flag added later had in a flags.txt written before it: zoneout was off,
# the fused cells took h's gradient as tf.matmul does, every epoch was trained and no
# image was turned.
BEFORE_THE_FLAG = {'zoneout_c': '0.0', 'zoneout_h': '0.0', 'fused_h_gradient': 'matmul',
                   'early_stopping_patience': '0', 'rotate_degrees': '0.0'}


class WorkdirError(errors.ReportedError, ValueError):
  """The workdir cannot be used; the message names it and why."""


def parse_flag_lines(text: str) -> dict:
  """Parses flagfile text ('--name=value' / '--name' / '--noname') into name -> str."""
  values = {}
  for line in text.splitlines():
    line = line.strip()
    if not line.startswith('--'):
      continue
    name, sep, value = line[2:].partition('=')
    if not sep:  # boolean form
      name, value = (name[2:], 'false') if name.startswith('no') else (name, 'true')
    values[name] = value
  return values


def read_saved_flags(path: str) -> dict:
  """The flags saved by the previous run in workdir `path` ({} if none)."""
  flags_path = os.path.join(path, FLAGS_FILE)
  if not os.path.exists(flags_path):
    return {}
  with open(flags_path, encoding='utf-8') as f:
    return parse_flag_lines(f.read())


def resume_conflicts(saved: dict, requested: dict, keys=RESUME_KEYS,
                     reading: bool = False) -> list:
  """Lists '--name: saved X, requested Y' for each key whose values differ.

  With `reading` (evaluating, not training), cells whose checkpoints interchange
  (lstm and fused_lstm) do not conflict.
  """
  def same(key, a, b):
    if reading and key == 'cell' and a is not None and b is not None:
      return model_config.checkpoint_family(a) == model_config.checkpoint_family(b)
    return a == b
  if saved:  # a flags.txt of before a flag: the flag had its old value
    saved = {**{k: v for k, v in BEFORE_THE_FLAG.items() if k in requested}, **saved}
  # The form of h's gradient matters to the fused cells only.
  fused = {saved.get('cell'), requested.get('cell')} & set(model_config.FUSED_CELLS)
  return [f'--{k}: saved {saved[k]}, requested {requested.get(k)}'
          for k in keys if k in saved and not same(k, saved[k], requested.get(k))
          and (k != 'fused_h_gradient' or fused)]


def flags_before_the_flag(saved: dict) -> list:
  """'--name=value' for each flag added since `saved` (a flags.txt) was written, at the
  value it had before: what a rerun of that flags.txt appends to compute the same."""
  return [f'--{k}={v}' for k, v in BEFORE_THE_FLAG.items() if k not in saved]


def _refuse_other_run(path: str, lines: list, advice: str, reading: bool = False) -> None:
  conflicts = resume_conflicts(read_saved_flags(path), parse_flag_lines('\n'.join(lines)),
                               reading=reading)
  if conflicts:
    raise WorkdirError(f'--workdir={path} holds a run with other flags'
                       f' ({"; ".join(conflicts)}); {advice}')


def check_writable(path: str, lines: list, suggestion: str = '') -> None:
  """Checks, writing nothing, that a run with flags `lines` may train in `path`.

  Args:
    path: the workdir (it need not exist yet).
    lines: the run's flags ('--name=value').
    suggestion: a folder to propose when `path` holds another run (the default
      folder for these flags).

  Raises:
    WorkdirError: `path` is not a folder, or its flags.txt differs in a RESUME_KEYS
      flag (the message names each flag with its saved and requested value, and the
      one flag to add to train elsewhere).
  """
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(f'--workdir={path}: exists and is not a folder')
  if suggestion and os.path.normpath(suggestion) != os.path.normpath(path):
    advice = f'add --workdir={suggestion} to train these flags in a folder of their own'
  else:
    advice = 'add --workdir=<a new folder> to train these flags there'
  _refuse_other_run(path, lines, advice)


CHECKPOINT_PREFIX = 'ckpt'
_INDEX = re.compile(r'^' + CHECKPOINT_PREFIX + r'-(\d+)\.index$')


def checkpoint_steps(path: str) -> list:
  """The steps of the checkpoints in `path` that have an index file, newest first."""
  if not os.path.isdir(path):
    return []
  found = [int(m.group(1)) for m in map(_INDEX.match, os.listdir(path)) if m]
  return sorted(found, reverse=True)


def check_readable(path: str, lines: list, purpose: str = 'evaluate') -> None:
  """Checks, writing nothing, that `path` holds a checkpoint of a run like `lines`.

  Raises:
    errors.NoCheckpoint: no such folder, or no checkpoint in it.
    WorkdirError: the folder's run has other flags (lstm and fused_lstm read each
      other's checkpoints).
  """
  if not os.path.isdir(path):
    raise errors.NoCheckpoint(f'--workdir={path}: no such folder, so no checkpoint to'
                              f' {purpose}')
  if not checkpoint_steps(path):
    writer = user(path)
    if writer:  # a run that has not finished its first epoch yet
      raise WorkdirError(f'--workdir={path}: {writer} trains in it and has saved no'
                         f' checkpoint yet; {purpose} after its first epoch')
    raise errors.NoCheckpoint(f'--workdir={path}: no checkpoint to {purpose}')
  _refuse_other_run(path, lines, 'give the flags it was trained with'
                    f' (--flagfile={os.path.join(path, FLAGS_FILE)})', reading=True)


def _prepare(path: str) -> str:
  """Creates `path` if needed and proves it writable; returns the topmost folder it
  created ('' if `path` existed)."""
  top, parent = '', os.path.abspath(path)
  while not os.path.exists(parent):
    top, parent = parent, os.path.dirname(parent)
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f'--workdir={path}: cannot create: {e.strerror or e}') from None
  try:
    with tempfile.NamedTemporaryFile(dir=path, prefix='.write-test-'):
      pass
  except OSError as e:
    if top:
      shutil.rmtree(top, ignore_errors=True)
    raise WorkdirError(f'--workdir={path}: not writable: {e.strerror or e}') from None
  return top


@contextlib.contextmanager
def created(path: str):
  """Creates `path` (see `_prepare`); if the block raises, removes what it created."""
  top = _prepare(path)
  try:
    yield
  except BaseException:
    if top:
      shutil.rmtree(top, ignore_errors=True)
    raise


def claim(path: str, lines: list) -> None:
  """Checks, creates and takes `path` for a run with flags `lines` (writes flags.txt).

  Raises:
    WorkdirError: as `check_writable`, or the folder cannot be created or written.
  """
  check_writable(path, lines)
  with created(path):
    write_flags(path, lines)


def write_flags(path: str, lines: list) -> None:
  """Writes `lines` ('--name=value') to workdir/flags.txt, atomically.

  Raises:
    errors.NoSpace: the disk is full (flags.txt is as it was, no temporary file left).
  """
  target = os.path.join(path, FLAGS_FILE)
  _keep_unreadable_flags(target)
  tmp = target + '.tmp'
  try:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write('# Resolved flags of this run; repeat it with --flagfile=' + target + '\n')
      f.writelines(line + '\n' for line in lines)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, target)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    if errors.is_no_space(e):
      raise errors.NoSpace(f'no space left on the device of {path} while saving'
                           f' {FLAGS_FILE}; free some space and rerun the same'
                           ' command') from None
    raise


def _keep_unreadable_flags(target: str) -> None:
  """Before flags.txt is rewritten: lines of it that are neither a flag nor a comment
  (corrupted, edited by hand) are kept in flags.txt.unreadable, never just dropped."""
  try:
    with open(target, encoding='utf-8', errors='replace') as f:
      lines = list(enumerate(f, start=1))
  except FileNotFoundError:
    return
  odd = [(n, l.rstrip('\n')) for n, l in lines
         if l.strip() and not l.lstrip().startswith(('--', '#'))]
  if not odd:
    return
  with open(target + '.unreadable', 'a', encoding='utf-8') as f:
    f.writelines(f'line {n}: {text}\n' for n, text in odd)
  for n, _ in odd:
    logging.warning('%s line %d is not a flag; it is kept in %s.unreadable', target, n,
                    FLAGS_FILE)


# -- one process at a time ----------------------------------------------------

LOCK_FILE = '.lock'  # who holds the folder: 'pid <n>' (the lock itself is flock's)
_held = {}           # real path -> (fd, shared) of the folders this process holds


def _holder(path: str) -> str:
  """'process N' from the folder's LOCK_FILE, or 'another process'."""
  try:
    with open(os.path.join(path, LOCK_FILE), encoding='utf-8') as f:
      pid = f.read().split()[1]
    return f'process {int(pid)}'
  except (OSError, IndexError, ValueError):
    return 'another process'


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def user(path: str) -> str:
  """'process N' if a process holds `path` (see `locked`), else ''. Only looks."""
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    return _holder(path)
  finally:
    os.close(fd)  # also releases the shared lock if it was taken
  return ''


@contextlib.contextmanager
def locked(path: str, shared: bool = False):
  """Holds `path` for this process: exclusively for a run that writes it, shared for
  readers (--eval_only), so a reader never reads a half-written checkpoint.

  The lock is flock(2) on the folder itself: the kernel releases it when the process
  ends, however it ends, so a killed run can never leave it stuck. A writer records
  its pid in LOCK_FILE for the message others get; one that finds a pid left there by
  a process that is gone says so in the log and takes over.

  Raises:
    WorkdirError: another process holds the folder (the message names its pid).
  """
  key = os.path.realpath(path)
  if key in _held:  # taken already by this process (e.g. --compare's parent)
    yield
    return
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    doing = 'trains in' if shared else 'is using'
    raise WorkdirError(f'--workdir={path}: {_holder(path)} {doing} it; wait for it to'
                       ' end (or stop it) and rerun') from None
  _held[key] = fd
  lock_file = os.path.join(path, LOCK_FILE)
  try:
    if not shared:
      left = _holder(path)
      if left != 'another process' and int(left.split()[1]) != os.getpid():
        if not _alive(int(left.split()[1])):
          logging.warning('%s: taking over the lock left by %s, which is no longer'
                          ' running', path, left)
      try:
        with open(lock_file, 'w', encoding='utf-8') as f:
          f.write(f'pid {os.getpid()}\n')
      except OSError:  # a full disk: the lock holds without the note of who has it
        if os.path.exists(lock_file):
          os.remove(lock_file)
    yield
  finally:
    if not shared and os.path.exists(lock_file):
      os.remove(lock_file)
    del _held[key]
    os.close(fd)  # releases the lock
