"""Does a committed run reproduce? Reruns a run folder's own flags (`flags.txt`) in a new
folder, stops it after its first N epochs (SIGTERM: the trainer saves and stops, so the
check can go on later with the same command) and compares those epochs' losses,
accuracies, learning rates and check values with the committed `metrics.jsonl`, exactly
(timings aside). No TensorFlow in this process.

  python -m study.first_epochs docs/runs/sequential_mnist --epochs=1 \
      --workdir=/tmp/sequential_check

Prints a row per epoch and field that differs, or that all are equal, and, where values
differ and the two records name different machines (each epoch's `machine`), both
machines; exits 0 when every compared value is equal, 1 when one differs (or the run
cannot be made).
"""

import argparse
import os
import signal
import subprocess
import sys
import time

from mnist_rnn import machine
from mnist_rnn import metrics_log
from mnist_rnn import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a run computes (the same flags and seed give the same values); its timings and
# speeds are the machine's.
COMPARED = ('learning_rate', 'train_loss', 'train_accuracy', 'validation_loss',
            'validation_accuracy', 'test_loss', 'test_accuracy', 'state_equals_output',
            'state_output_max_abs_diff', 'c_h_max_abs_diff')


def differences(committed: list, rerun: list, epochs: int) -> list:
  """[(epoch, field, committed value, rerun value)] for the first `epochs` epochs."""
  out = []
  for epoch in range(1, epochs + 1):
    old = next((r for r in committed if r['epoch'] == epoch), None)
    new = next((r for r in rerun if r['epoch'] == epoch), None)
    if old is None or new is None:
      out.append((epoch, 'the epoch itself', old is not None, new is not None))
      continue
    out += [(epoch, key, old.get(key), new.get(key)) for key in COMPARED
            if old.get(key) != new.get(key)]
  return out


def machine_note(committed: list, rerun: list) -> str:
  """Where the committed run and the rerun name different machines for their first
  epoch, a line naming both (values are expected to differ across kinds of CPU);
  else ''. A record from before the field names none."""
  old = committed[0].get('machine') if committed else None
  new = rerun[0].get('machine') if rerun else None
  if old == new:
    return ''
  return (f'the committed epochs were computed on {machine.text(old)}; this rerun on'
          f' {machine.text(new)}: a committed run reruns exactly only on the kind of CPU'
          ' it was recorded on (docs/mnist_784_log.md, "Across kinds of CPU")')


def rerun(flags_file: str, workdir: str, epochs: int, poll_seconds: float = 1.0) -> tuple:
  """Trains `flags_file`'s run in `workdir` until it has `epochs` epochs (or ends);
  returns (its records, its exit code, its log's last lines). A folder that already
  has those epochs (the same command before) is read, not trained."""
  log_path = os.path.join(workdir, 'first_epochs.log')
  os.makedirs(workdir, exist_ok=True)
  metrics_path = os.path.join(workdir, metrics_log.FILE_NAME)
  before = metrics_log.read(metrics_path)
  if len(before) >= epochs:  # rerun before: compare only
    return before, 0, []
  with open(log_path, 'a', encoding='utf-8') as log:
    # A flags.txt of before a flag reruns at the flag's old value (the form of the
    # fused cells' h gradient, say), not at today's default.
    with open(flags_file, encoding='utf-8') as f:
      added = workdir_lib.flags_before_the_flag(workdir_lib.parse_flag_lines(f.read()))
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train_mnist_rnn.py'), f'--flagfile={flags_file}',
         *added, f'--workdir={workdir}'], cwd=ROOT, stdout=log, stderr=log)
    while process.poll() is None:
      if len(metrics_log.read(metrics_path)) >= epochs:
        process.send_signal(signal.SIGTERM)  # saves and stops; the same command resumes
        process.wait()
        break
      time.sleep(poll_seconds)
  with open(log_path, encoding='utf-8', errors='replace') as f:
    tail = f.read().splitlines()[-3:]
  return metrics_log.read(metrics_path), process.returncode, tail


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('run', help='a committed run folder (flags.txt, metrics.jsonl)')
  parser.add_argument('--epochs', type=int, default=1, help='epochs to rerun and compare')
  parser.add_argument('--workdir', required=True, help='the rerun\'s own folder (not the'
                      ' committed one)')
  args = parser.parse_args(argv)
  flags_file = os.path.join(args.run, 'flags.txt')
  committed = metrics_log.read(os.path.join(args.run, metrics_log.FILE_NAME))
  if not os.path.exists(flags_file) or not committed:
    sys.stderr.write(f'first_epochs: error: {args.run} has no flags.txt or no'
                     f' {metrics_log.FILE_NAME} records\n')
    return 1
  if args.epochs < 1 or args.epochs > len(committed):
    sys.stderr.write(f'first_epochs: error: --epochs={args.epochs}: {args.run} has epochs'
                     f' 1-{len(committed)}\n')
    return 1
  if os.path.abspath(args.workdir) == os.path.abspath(args.run):
    sys.stderr.write('first_epochs: error: --workdir is the committed run; give a new'
                     ' folder\n')
    return 1
  records, code, tail = rerun(os.path.abspath(flags_file), args.workdir, args.epochs)
  if len(records) < args.epochs:
    sys.stderr.write(f'first_epochs: error: the rerun stopped after {len(records)} epochs'
                     f' (exit {code}): {tail[-1] if tail else "no output"}\n')
    return 1
  diff = differences(committed, records, args.epochs)
  for epoch, key, old, new in diff:
    print(f'epoch {epoch}: {key} differs: committed {old!r}, rerun {new!r}')
  note = machine_note(committed, records) if diff else ''
  if note:
    print(note)
  shown = ', '.join(f'{k} {records[args.epochs - 1].get(k)!r}' for k in
                    ('train_loss', 'validation_accuracy', 'test_accuracy'))
  print(f'{args.run}: epochs 1-{args.epochs} rerun in {args.workdir}:'
        f' {"every compared value equal" if not diff else f"{len(diff)} values differ"}'
        f' (epoch {args.epochs}: {shown})')
  return 0 if not diff else 1


if __name__ == '__main__':
  sys.exit(main())
