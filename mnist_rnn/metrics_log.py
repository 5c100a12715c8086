"""Reads and writes `metrics.jsonl`: one JSON object per finished epoch.

Appends are flushed and fsynced; a reader skips a half-written last line, so a
process killed mid-write leaves a file that `truncate_after` repairs on resume.
"""

import json
import os

FILE_NAME = 'metrics.jsonl'


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


def read(path: str) -> list:
  """Returns the complete records of `path` ([] if it does not exist)."""
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding='utf-8') as f:
    for line in f:
      if not line.endswith('\n'):
        break  # a write that was cut short
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return records


def truncate_after(path: str, last_epoch: int) -> list:
  """Keeps one record per epoch 1..last_epoch (the latest of each); rewrites atomically.

  Returns:
    The records kept, in epoch order.
  """
  by_epoch = {}
  for record in read(path):
    epoch = record.get('epoch')
    if isinstance(epoch, int) and 1 <= epoch <= last_epoch:
      by_epoch[epoch] = record
  kept = [by_epoch[e] for e in sorted(by_epoch)]
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
  return kept
