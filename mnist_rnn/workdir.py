"""The run folder: checks it is writable, and keeps `flags.txt` (the run's identity)."""

import os
import tempfile

FLAGS_FILE = 'flags.txt'

# Flags that change the graph or the order of training steps: a checkpoint written
# under one value cannot be continued under another.
RESUME_KEYS = ('cell', 'runner', 'time_major', 'num_units', 'num_layers', 'bidirectional',
               'sequence_length', 'head_input', 'forget_bias', 'clip_norm', 'seed',
               'batch_size', 'train_examples')


class WorkdirError(ValueError):
  """The workdir cannot be used; the message names it and why."""


def prepare(path: str) -> None:
  """Creates `path` if needed and proves it writable, before any training starts."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(f'--workdir={path}: exists and is not a folder')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f'--workdir={path}: cannot create: {e.strerror or e}') from None
  try:
    with tempfile.NamedTemporaryFile(dir=path, prefix='.write-test-'):
      pass
  except OSError as e:
    raise WorkdirError(f'--workdir={path}: not writable: {e.strerror or e}') from None


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


def resume_conflicts(saved: dict, requested: dict, keys=RESUME_KEYS) -> list:
  """Lists '--name: saved X, requested Y' for each key whose values differ."""
  return [f'--{k}: saved {saved[k]}, requested {requested.get(k)}'
          for k in keys if k in saved and saved[k] != requested.get(k)]


def claim(path: str, lines: list, write: bool = True) -> None:
  """Makes `path` this run's workdir: writable, and not holding a different run.

  Args:
    path: the workdir.
    lines: the run's flags ('--name=value'), saved to flags.txt when `write`.
    write: False to only check (e.g. for --eval_only).

  Raises:
    WorkdirError: not usable, or its flags.txt differs in a RESUME_KEYS flag (the
      message names each flag with its saved and requested value); nothing is written.
  """
  prepare(path)
  conflicts = resume_conflicts(read_saved_flags(path), parse_flag_lines('\n'.join(lines)))
  if conflicts:
    raise WorkdirError(f'--workdir={path} holds a run with other flags'
                       f' ({"; ".join(conflicts)}); use another --workdir or the saved'
                       ' flags')
  if write:
    write_flags(path, lines)


def write_flags(path: str, lines: list) -> None:
  """Writes `lines` ('--name=value') to workdir/flags.txt, atomically."""
  target = os.path.join(path, FLAGS_FILE)
  with open(target + '.tmp', 'w', encoding='utf-8') as f:
    f.write('# Resolved flags of this run; repeat it with --flagfile=' + target + '\n')
    f.writelines(line + '\n' for line in lines)
  os.replace(target + '.tmp', target)
