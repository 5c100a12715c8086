"""Reads and writes `metrics.jsonl`: one JSON object per finished epoch.

Appends are flushed and fsynced; a reader skips a half-written last line, so a
process killed mid-write leaves a file that `truncate_after` repairs on resume. A
line that cannot be read (cut short, corrupted on disk, edited by hand) is never
dropped: before the file is rewritten it is kept in `metrics.jsonl.unreadable`, with
its line number, and the caller is told which epochs are missing.
"""

import json
import os

FILE_NAME = 'metrics.jsonl'
UNREADABLE_SUFFIX = '.unreadable'


def append(path: str, record: dict) -> None:
  """Appends `record` as one line; if the write fails (a full disk), the file is cut
  back to what it was, so no partial line is left."""
  size = os.path.getsize(path) if os.path.exists(path) else 0
  try:
    with open(path, 'a', encoding='utf-8') as f:
      f.write(json.dumps(record, sort_keys=True) + '\n')
      f.flush()
      os.fsync(f.fileno())
  except OSError:
    if os.path.exists(path):
      os.truncate(path, size)  # frees space, needs none
    raise


def read_lines(path: str) -> tuple:
  """Returns (the records of `path`, [(line number, text, why)] of the lines that are
  not a whole JSON object: why is 'cut short' (a last line with no newline: a write
  that was interrupted) or 'not JSON' (corrupted on disk, edited by hand))."""
  if not os.path.exists(path):
    return [], []
  records, unreadable = [], []
  with open(path, encoding='utf-8', errors='replace') as f:
    for number, line in enumerate(f, start=1):
      try:
        record = json.loads(line) if line.endswith('\n') else None
      except json.JSONDecodeError:
        record = None
      if isinstance(record, dict):
        records.append(record)
      elif line.strip():
        why = 'not JSON' if line.endswith('\n') else 'cut short'
        unreadable.append((number, line.rstrip('\n'), why))
  return records, unreadable


def read(path: str) -> list:
  """Returns the records of `path` that read ([] if it does not exist)."""
  return read_lines(path)[0]


def keep_aside(path: str, unreadable: list) -> str:
  """Appends each (line number, text, why) to `path`.unreadable; returns that path."""
  aside = path + UNREADABLE_SUFFIX
  with open(aside, 'a', encoding='utf-8') as f:
    f.writelines(f'line {number}: {text}\n' for number, text, _ in unreadable)
    f.flush()
    os.fsync(f.fileno())
  return aside


def truncate_after(path: str, last_epoch: int, recreate=None) -> tuple:
  """Keeps one record per epoch 1..last_epoch (the latest of each); rewrites atomically.

  Lines that do not read are first kept aside (`keep_aside`), never just dropped.

  Args:
    recreate: epoch -> a record or None, called for each epoch 1..last_epoch without
      a readable record.

  Returns:
    (the records kept, in epoch order; the unreadable [(line number, text, why)]; the
    epochs that stay without a record).
  """
  records, unreadable = read_lines(path)
  by_epoch = {}
  for record in records:
    epoch = record.get('epoch')
    if isinstance(epoch, int) and 1 <= epoch <= last_epoch:
      by_epoch[epoch] = record
  for epoch in range(1, last_epoch + 1):
    if epoch not in by_epoch and recreate is not None:
      record = recreate(epoch)
      if record is not None:
        by_epoch[epoch] = record
  kept = [by_epoch[e] for e in sorted(by_epoch)]
  lost = [e for e in range(1, last_epoch + 1) if e not in by_epoch]
  if unreadable:
    keep_aside(path, unreadable)
  if os.path.exists(path):
    tmp = path + '.tmp'
    try:
      with open(tmp, 'w', encoding='utf-8') as f:
        f.writelines(json.dumps(r, sort_keys=True) + '\n' for r in kept)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)
    except OSError:
      if os.path.exists(tmp):  # a full disk: the file stays as it was
        os.remove(tmp)
      raise
  return kept, unreadable, lost


def stopped_early(history: list, patience: int) -> bool:
  """Whether a run with --early_stopping_patience=`patience` stops after the last of
  `history`'s epochs: validation accuracy has not improved for `patience` epochs."""
  if not patience or not history or 'best_validation_epoch' not in history[-1]:
    return False
  return history[-1]['epoch'] - history[-1]['best_validation_epoch'] >= patience


def _epochs(n: int) -> str:
  return f'{n} epoch' + ('s' if n != 1 else '')


def summary_line(history: list, early_stopping: bool = False) -> str:
  """The run's result in one line (the trainer prints it on stdout), e.g.
  'done: 25 epochs | final test accuracy 0.9915 | states.h == outputs[-1] every epoch:
  True'. No 'best' on the test set: an epoch picked by test accuracy would report an
  optimistic number; with a validation split the best epoch is picked there.

  Args:
    history: the run's metrics records, epoch 1 first.
    early_stopping: the run had --early_stopping_patience: its model is its best
      validation epoch's, whether it stopped early (its last record says so) or not.
  """
  last = history[-1]
  chosen = (f' | best validation accuracy {last["best_validation_accuracy"]:.4f} at'
            f' epoch {last["best_validation_epoch"]} (test accuracy there'
            f' {last["test_accuracy_at_best_validation"]:.4f})'
            if 'best_validation_epoch' in last else '')
  epochs = _epochs(len(history))
  if early_stopping and 'best_validation_epoch' in last:
    # Early stopping: the run's model is the best validation epoch's, and its test
    # accuracy the result, whether the run stopped or trained every epoch.
    ended = (f'stopped early after {epochs}, validation accuracy not improved for'
             f' {_epochs(last["epoch"] - last["best_validation_epoch"])}'
             if last.get('stopped_early') else epochs)
    return (f'done: {ended} | the model: epoch'
            f' {last["best_validation_epoch"]}, best validation accuracy'
            f' {last["best_validation_accuracy"]:.4f}, final test accuracy'
            f' {last["test_accuracy_at_best_validation"]:.4f} (at the last epoch'
            f' {last["test_accuracy"]:.4f}) | states.h == outputs[-1] every epoch:'
            f' {all(r["state_equals_output"] for r in history)}')
  return (f'done: {epochs} | final test accuracy {last["test_accuracy"]:.4f}'
          f'{chosen} | states.h == outputs[-1] every epoch:'
          f' {all(r["state_equals_output"] for r in history)}')
