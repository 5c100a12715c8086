"""What a run folder trained, segment by segment: `segments.jsonl`, one JSON line per
command that trained epochs in it (its flags, its first and last epoch, where its
learning-rate schedule starts), and the rule for training a folder further.

A run's cosine schedule decays to 0 over its --epochs. Continuing it is therefore a
choice, never a silent stretch of the schedule:
- a schedule under way keeps its --epochs (a resume); another --epochs is refused;
- a finished cosine run trains further only with --restart_schedule: a warm restart
  (as in SGDR) that decays again from --learning_rate over the added epochs;
- a constant schedule continues as it was, for any larger --epochs.
No TensorFlow here.
"""

import dataclasses
import json
import os

from absl import logging

from mnist_rnn import errors
from mnist_rnn import metrics_log
from mnist_rnn import workdir as workdir_lib

FILE_NAME = 'segments.jsonl'


class ContinuationError(errors.ReportedError, ValueError):
  """The requested --epochs cannot continue this folder's run; says what can."""


@dataclasses.dataclass(frozen=True)
class Segment:
  first_epoch: int
  last_epoch: int
  schedule_start_epoch: int   # the cosine decays over schedule_start..last_epoch
  flags: tuple = ()

  def as_json(self) -> dict:
    return {'first_epoch': self.first_epoch, 'last_epoch': self.last_epoch,
            'schedule_start_epoch': self.schedule_start_epoch, 'flags': list(self.flags)}


def read(workdir: str, saved_epochs: int = 0) -> list:
  """The folder's segments; a folder from before segments.jsonl (or whose file does
  not read) counts as one segment of its saved --epochs."""
  path = os.path.join(workdir, FILE_NAME)
  found = []
  if os.path.exists(path):
    with open(path, encoding='utf-8', errors='replace') as f:
      for number, line in enumerate(f, start=1):
        try:
          d = json.loads(line)
          found.append(Segment(d['first_epoch'], d['last_epoch'],
                               d['schedule_start_epoch'], tuple(d.get('flags', ()))))
        except (ValueError, KeyError, TypeError):
          # The file is only ever appended to: the line stays where it is.
          logging.warning('%s line %d could not be read; left in place, not used', path,
                          number)
  if not found and saved_epochs:
    found = [Segment(1, saved_epochs, 1)]
  return found


def append(workdir: str, segment: Segment) -> None:
  with open(os.path.join(workdir, FILE_NAME), 'a', encoding='utf-8') as f:
    f.write(json.dumps(segment.as_json(), sort_keys=True) + '\n')
    f.flush()
    os.fsync(f.fileno())


def plan(workdir: str, saved_epochs: int, done_epochs: int, epochs: int, schedule: str,
         restart: bool, flags: list, command: str) -> tuple:
  """Decides what a command with `epochs` does in `workdir`, writing nothing.

  Args:
    saved_epochs: --epochs of the folder's flags.txt (0: a new run).
    done_epochs: the epochs its newest checkpoint holds.
    command: how to name the command in advice ('python train_mnist_rnn.py
      --flagfile=.../flags.txt --workdir=...').

  Returns:
    (schedule_start_epoch for the trainer, the Segment to record or None when the
    command starts no new segment: a resume, or nothing to train).

  Raises:
    ContinuationError: the requested --epochs would change a schedule under way, or
      continue a finished cosine schedule without --restart_schedule.
  """
  segments = read(workdir, saved_epochs)
  if not segments:
    return 1, Segment(1, epochs, 1, tuple(flags))
  last = segments[-1]
  if epochs == last.last_epoch or (epochs < last.last_epoch and done_epochs >= epochs):
    return last.schedule_start_epoch, None  # a resume, or a finished run asked again
  if done_epochs < last.last_epoch:
    if schedule == 'constant':
      return last.schedule_start_epoch, Segment(last.first_epoch, epochs,
                                                last.schedule_start_epoch, tuple(flags))
    raise ContinuationError(
        f'--workdir={workdir} is training epochs {last.first_epoch}-{last.last_epoch}'
        f' under a cosine schedule ({done_epochs} done); --epochs={epochs} would change'
        f' its learning rate mid-way: finish it with --epochs={last.last_epoch}, or train'
        ' these flags in another --workdir')
  if epochs < done_epochs:
    raise ContinuationError(f'--workdir={workdir} holds {done_epochs} epochs already;'
                            f' --epochs={epochs} cannot undo them')
  if schedule == 'constant':
    return last.schedule_start_epoch, Segment(done_epochs + 1, epochs,
                                              last.schedule_start_epoch, tuple(flags))
  if not restart:
    raise ContinuationError(
        f'--workdir={workdir} has finished its cosine schedule (learning rate 0 after'
        f' epoch {done_epochs}); to decay again from --learning_rate over epochs'
        f' {done_epochs + 1}-{epochs} (a warm restart), run: {command} --epochs={epochs}'
        ' --restart_schedule')
  return done_epochs + 1, Segment(done_epochs + 1, epochs, done_epochs + 1, tuple(flags))


def continue_command(workdir: str, schedule: str, total_epochs: int) -> str:
  """The exact command that trains `workdir` on to `total_epochs` epochs in all (the
  hint a finished run prints; --epochs is the new total, not the number added)."""
  flagfile = os.path.join(workdir, 'flags.txt')
  restart = ' --restart_schedule' if schedule == 'cosine' else ''
  return (f'python train_mnist_rnn.py --flagfile={flagfile} --workdir={workdir}'
          f' --epochs={total_epochs}{restart}')


def nothing_to_train(workdir: str, done_epochs: int, epochs: int, schedule: str) -> str:
  """What a finished run asked again says: that it holds its epochs, and the command
  that trains it on (as many epochs again, as an example)."""
  total = 2 * done_epochs
  return (f'{workdir} already holds {done_epochs} of {epochs} epochs: nothing to train;'
          f' to train it to {total} epochs in all (--epochs is the new total):'
          f' {continue_command(workdir, schedule, total)}')


def finished_history(workdir: str, done_epochs: int) -> list:
  """The records of epochs 1..done_epochs from metrics.jsonl, if every one of them
  reads (then a finished run can answer without building its graph); else []."""
  records, unreadable = metrics_log.read_lines(os.path.join(workdir, metrics_log.FILE_NAME))
  by_epoch = {r.get('epoch'): r for r in records}
  if unreadable or any(e not in by_epoch for e in range(1, done_epochs + 1)):
    return []
  return [by_epoch[e] for e in range(1, done_epochs + 1)]


# Flags that say nothing about what a run computes (where it lives, how fast, how
# long): two folders that differ only in them hold runs of the same configuration.
_NOT_THE_CONFIGURATION = ('workdir', 'epochs', 'towers', 'intra_op_threads',
                          'inter_op_threads')


def finished_elsewhere(workdir: str, flags: list, steps_per_epoch: int) -> tuple:
  """A finished run of the same configuration in a folder beside `workdir` (e.g.
  runs/lstm_static when `workdir` is runs/lstm_static_epochs27, a new folder the
  default name gave a larger --epochs).

  Returns:
    (its folder, the epochs it holds), the one with the most epochs; ('', 0) if none.
  """
  parent = os.path.dirname(os.path.normpath(workdir)) or '.'
  wanted = workdir_lib.parse_flag_lines('\n'.join(flags))
  same = lambda saved: all(saved.get(k) == v for k, v in wanted.items()
                           if k not in _NOT_THE_CONFIGURATION) and set(saved) == set(wanted)
  best = ('', 0)
  try:
    names = sorted(os.listdir(parent))
  except OSError:
    return best
  for name in names:
    folder = os.path.join(parent, name)
    if os.path.normpath(folder) == os.path.normpath(workdir) or not os.path.isdir(folder):
      continue
    saved = workdir_lib.read_saved_flags(folder)
    steps = workdir_lib.checkpoint_steps(folder)
    if not saved or not steps or not same(saved):
      continue
    done = steps[0] // steps_per_epoch
    if done >= int(saved.get('epochs', 0) or 0) and done > best[1]:
      best = (folder, done)
  return best
