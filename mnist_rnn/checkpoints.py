"""A run folder's checkpoints: saved whole or not at all, found wherever the folder lives.

`tf.compat.v1.train.Saver` writes a checkpoint as `ckpt-<step>.index` plus
`ckpt-<step>.data-*`, and by default then records it in a `checkpoint` file with
absolute paths (a moved or copied folder then finds nothing) and a `.meta` graph (not
needed: the trainer always rebuilds its graph). Here:

- `save` has the Saver write only the tensors; the `checkpoint` file (relative names)
  is rewritten atomically once they are complete, and older checkpoints than the
  newest KEEP are removed after that. A save that fails (a full disk) removes what it
  wrote of its step: the folder still holds the previous complete checkpoint, and the
  `checkpoint` file still names it.
- `restore` lists `ckpt-*.index` itself and tries the newest first; one that does not
  restore (a truncated data file) is skipped with a warning naming it, and a folder
  whose checkpoint files all fail is refused, never silently started over.
"""

import glob
import os

from absl import logging

from mnist_rnn import errors
from mnist_rnn import workdir as workdir_lib
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

PREFIX = workdir_lib.CHECKPOINT_PREFIX
KEEP = 3
STATE_FILE = 'checkpoint'
steps = workdir_lib.checkpoint_steps  # the steps held, newest first (TensorFlow-free there)


class CheckpointError(errors.ReportedError):
  """A folder holds checkpoint files but none that restores."""


def path(workdir: str, step: int) -> str:
  """The checkpoint prefix of `step` in `workdir` (what Saver.restore takes)."""
  return os.path.join(workdir, f'{PREFIX}-{step}')


def _files_of(workdir: str, step: int) -> list:
  """Everything a save of `step` may have written, finished or not (Saver writes into a
  `<prefix>_temp...` folder first, then renames)."""
  prefix = glob.escape(path(workdir, step))
  return glob.glob(prefix + '.*') + glob.glob(prefix + '_temp*')


def _remove(paths) -> None:
  for p in paths:
    if os.path.isdir(p):
      for root, dirs, files in os.walk(p, topdown=False):
        for name in files:
          os.remove(os.path.join(root, name))
        for name in dirs:
          os.rmdir(os.path.join(root, name))
      os.rmdir(p)
    elif os.path.exists(p):
      os.remove(p)


def _write_state(workdir: str, kept: list) -> None:
  """Writes the `checkpoint` file (newest last, names relative to the folder) atomically;
  the temporary file is removed if the write fails."""
  target = os.path.join(workdir, STATE_FILE)
  names = [f'{PREFIX}-{s}' for s in sorted(kept)]
  text = f'model_checkpoint_path: "{names[-1]}"\n' + ''.join(
      f'all_model_checkpoint_paths: "{n}"\n' for n in names)
  tmp = target + '.tmp'
  try:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, target)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def save(session, saver, workdir: str, step: int, keep: int = KEEP) -> str:
  """Saves the session's variables as checkpoint `step`; keeps the newest `keep`.

  Raises:
    OSError or tf.errors.OpError: the save failed; nothing of `step` is left and the
      previous checkpoint is still the latest.
  """
  try:
    saver.save(session, os.path.join(workdir, PREFIX), global_step=step,
               write_meta_graph=False, write_state=False)
    kept = sorted(set(steps(workdir)) | {step}, reverse=True)[:keep]
    _write_state(workdir, kept)
  except BaseException:
    _remove(_files_of(workdir, step))
    raise
  for old in steps(workdir)[keep:]:
    _remove(_files_of(workdir, old))
  return path(workdir, step)


def _strays(workdir: str) -> list:
  """Checkpoint-like files in `workdir` (a state file, data files without an index)."""
  if not os.path.isdir(workdir):
    return []
  return sorted(n for n in os.listdir(workdir)
                if n == STATE_FILE or n.startswith(PREFIX + '-'))


def restore(session, saver, workdir: str):
  """Restores the newest checkpoint of `workdir` that restores.

  Returns:
    Its step, or None when the folder holds no checkpoint files at all.

  Raises:
    CheckpointError: checkpoint files are there but none restores (the message lists
      what was found); nothing is changed.
  """
  found = steps(workdir)
  skipped = []
  for step in found:
    try:
      saver.restore(session, path(workdir, step))
    except (tf.errors.OpError, ValueError) as e:
      reason = str(getattr(e, 'message', e)).strip().splitlines()[0][:200]
      logging.warning('skipping checkpoint %s: it does not restore (%s)',
                      path(workdir, step), reason)
      skipped.append(f'{PREFIX}-{step}')
      continue
    if skipped:
      logging.warning('resuming from %s, the newest checkpoint that restores',
                      path(workdir, step))
    return step
  strays = _strays(workdir)
  if skipped or strays:
    what = (f'{len(skipped)} checkpoint(s) that do not restore ({", ".join(skipped)})'
            if skipped else f'checkpoint files without an index ({", ".join(strays[:4])})')
    raise CheckpointError(
        f'--workdir={workdir} holds {what}; nothing was changed. Move them away to'
        ' start this run over, or use another --workdir')
  return None
