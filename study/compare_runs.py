"""Compares two recipes' run folders, several seeds each, on final accuracy.

Each recipe is a group of run folders that differ only in --seed (and in where and on
how many threads they ran); the final validation and test accuracy of their runs are
compared seed by seed:

    python -m study.compare_runs \\
        --a=docs/runs/sequential_mnist,docs/runs/sequential_mnist_seed1,docs/runs/sequential_mnist_seed2 \\
        --b=docs/runs/sequential_mnist_rot10,docs/runs/sequential_mnist_rot10_seed1,docs/runs/sequential_mnist_rot10_seed2 \\
        --a_label=preset --b_label='rotations of 10 degrees'

Prints Markdown: the flags in which the recipes differ, each run's final figures, and
for each figure both recipes' mean with its 95% t-interval and the difference B - A
paired by seed (scipy's paired t-test, `study.statistics`). The same seed is the same
initial weights and order of examples in both recipes, so seeds pair.

Validation is the figure that may choose between the recipes; test accuracy is
reported beside it and chooses nothing. A run with --early_stopping_patience ends as
its best validation epoch's model, so its figures are that epoch's; any other run's are
its last epoch's. No TensorFlow.
"""

import argparse
import dataclasses
import math
import os
import sys

from mnist_rnn import metrics_log
from mnist_rnn import workdir
from study import statistics

# Flags that say where or how fast a run ran, or which seed it drew, not what it trains.
NOT_THE_RECIPE = ('seed', 'workdir', 'data_dir', 'intra_op_threads', 'inter_op_threads')
FIGURES = (('validation', 'final validation accuracy'), ('test', 'final test accuracy'))


class RunsError(ValueError):
  """A folder or a group cannot be compared; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Run:
  folder: str
  seed: int
  recipe: dict          # flags.txt less NOT_THE_RECIPE, flags added since at their old value
  epochs: int           # epochs trained
  model_epoch: int      # the epoch whose weights are the run's model
  validation: float     # that model's accuracies, fractions
  test: float


def read_run(folder: str) -> Run:
  """The final figures of the finished or stopped run in `folder`.

  Raises:
    RunsError: no flags.txt or metrics.jsonl, no validation split, or no epochs.
  """
  for name in (workdir.FLAGS_FILE, metrics_log.FILE_NAME):
    if not os.path.exists(os.path.join(folder, name)):
      raise RunsError(f'{folder}: no {name}: give run folders written by train_mnist_rnn.py')
  saved = workdir.read_saved_flags(folder)
  saved.update({k: v for k, v in workdir.BEFORE_THE_FLAG.items() if k not in saved})
  history = metrics_log.read(os.path.join(folder, metrics_log.FILE_NAME))
  if not history:
    raise RunsError(f'{folder}: {metrics_log.FILE_NAME} holds no epoch yet')
  last = history[-1]
  if 'validation_accuracy' not in last:
    raise RunsError(f'{folder}: the run has no validation split (--validation_examples=0):'
                    ' nothing may choose between recipes without one')
  if int(saved.get('early_stopping_patience', '0')) > 0:
    model_epoch = last['best_validation_epoch']
    validation = last['best_validation_accuracy']
    test = last['test_accuracy_at_best_validation']
  else:
    model_epoch = last['epoch']
    validation, test = last['validation_accuracy'], last['test_accuracy']
  recipe = {k: v for k, v in saved.items() if k not in NOT_THE_RECIPE}
  return Run(folder, int(saved['seed']), recipe, last['epoch'], model_epoch, validation, test)


def read_group(folders: list, label: str) -> list:
  """The runs of one recipe, one seed each.

  Raises:
    RunsError: a folder cannot be read, two runs share a seed, or the runs differ in a
      flag of the recipe (they would not be seeds of one recipe).
  """
  runs = [read_run(f) for f in folders]
  seeds = [r.seed for r in runs]
  repeated = sorted({s for s in seeds if seeds.count(s) > 1})
  if repeated:
    raise RunsError(f'{label}: seed {repeated[0]} is in more than one folder: give each'
                    ' seed once')
  first = runs[0]
  for run in runs[1:]:
    differing = sorted(k for k in set(first.recipe) | set(run.recipe)
                       if first.recipe.get(k) != run.recipe.get(k))
    if differing:
      name = differing[0]
      raise RunsError(f'{label}: {run.folder} has --{name}={run.recipe.get(name)} but'
                      f' {first.folder} --{name}={first.recipe.get(name)}: a group holds'
                      ' seeds of one recipe')
  return runs


def recipe_differences(a: list, b: list) -> list:
  """'--name: A value → B value' for each flag in which the two recipes differ."""
  ra, rb = a[0].recipe, b[0].recipe
  return [f'--{k}: {ra.get(k, "(absent)")} \u2192 {rb.get(k, "(absent)")}'
          for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)]


def _percent(value: float) -> str:
  return f'{100 * value:.2f}%'


def _interval(summary: statistics.Summary) -> str:
  if math.isnan(summary.ci_low):
    return f'{_percent(summary.mean)} (one seed)'
  return (f'{_percent(summary.mean)} [{100 * summary.ci_low:.2f}, {100 * summary.ci_high:.2f}]'
          f' (n = {summary.n})')


def _difference(d) -> str:
  if d is None:
    return 'no test: the recipes share fewer than 2 seeds'
  mean, low, high = (statistics.points(x) for x in (d.mean, d.ci_low, d.ci_high))
  if math.isnan(d.p):
    return f'{mean} points in each of the {d.n} seeds, no test (no spread)'
  return f'{mean} points [{low}, {high}], p = {d.p:.2g} (n = {d.n})'


def report(a: list, b: list, a_label: str, b_label: str) -> str:
  """The comparison as Markdown (see the module's docstring)."""
  changes = recipe_differences(a, b)
  lines = [f'{b_label} (B) against {a_label} (A); the recipes differ in: '
           + ('; '.join(changes) if changes else 'nothing but the folders') + '.', '',
           '| recipe | run | seed | epochs | model: epoch | validation | test |',
           '|---|---|---|---|---|---|---|']
  for label, runs in ((a_label, a), (b_label, b)):
    for r in sorted(runs, key=lambda r: r.seed):
      lines.append(f'| {label} | {os.path.basename(os.path.normpath(r.folder))} | {r.seed} |'
                   f' {r.epochs} | {r.model_epoch} | {_percent(r.validation)} |'
                   f' {_percent(r.test)} |')
  lines += ['', f'| figure | {a_label}: mean [95% CI] | {b_label}: mean [95% CI] |'
            ' B \u2212 A, paired by seed: mean [95% CI], paired t-test |', '|---|---|---|---|']
  for attribute, name in FIGURES:
    by_seed_a = {r.seed: getattr(r, attribute) for r in a}
    by_seed_b = {r.seed: getattr(r, attribute) for r in b}
    difference = statistics.paired_difference(name, by_seed_a, by_seed_b)
    lines.append(f'| {name} | {_interval(statistics.summarize(list(by_seed_a.values())))} |'
                 f' {_interval(statistics.summarize(list(by_seed_b.values())))} |'
                 f' {_difference(difference)} |')
  return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--a', required=True, help='comma-separated run folders of recipe A')
  parser.add_argument('--b', required=True, help='comma-separated run folders of recipe B')
  parser.add_argument('--a_label', default='A', help='recipe A\'s name in the tables')
  parser.add_argument('--b_label', default='B', help='recipe B\'s name in the tables')
  args = parser.parse_args(argv)
  groups = {label: [f for f in folders.split(',') if f]
            for label, folders in ((args.a_label, args.a), (args.b_label, args.b))}
  try:
    for label, folders in groups.items():
      if not folders:
        raise RunsError(f'{label}: no run folder given')
    a, b = (read_group(folders, label) for label, folders in groups.items())
  except RunsError as e:
    sys.stderr.write(f'compare_runs: error: {e}\n')
    return 1
  print(report(a, b, args.a_label, args.b_label), end='')
  return 0


if __name__ == '__main__':
  sys.exit(main())
