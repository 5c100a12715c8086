"""The comparison's report, made from the study's trials alone: a table per
configuration over seeds, the paired differences with their verdicts, the seeds a
difference would need, one CSV row per run, and the picture (study.plots).

Test accuracy here is reported, never used to choose: the best epoch, where there is
one, was chosen on the validation split by the trainer.
"""

import csv
import dataclasses
import itertools
import math
import os

from study import grid as grid_lib
from study import statistics

NAMES = {'lstm': 'LSTM', 'gru': 'GRU', 'rnn': 'RNN', 'basic_lstm': 'BasicLSTM',
         'fused_lstm': 'fused LSTM', 'fused_gru': 'fused GRU'}

RUN_COLUMNS = ('cell', 'runner', 'seed', 'final_test_accuracy', 'best_validation_epoch',
               'best_validation_accuracy', 'test_accuracy_at_best_validation',
               'steady_examples_per_sec', 'train_seconds', 'check_every_epoch',
               'check_max_abs_diff', 'trial', 'folder')


@dataclasses.dataclass(frozen=True)
class Combination:
  cell: str
  runner: str
  final: statistics.Summary              # final-epoch test accuracy over seeds
  at_best_validation: object             # Summary, or None without validation
  speed: object                          # Summary of steady examples/sec, or None
  check_every_epoch: bool                # states.h == outputs[-1] in every run's epochs
  by_seed: dict                          # seed -> final test accuracy
  curves: list                           # each run's per-epoch test accuracy


@dataclasses.dataclass(frozen=True)
class Report:
  grid: grid_lib.Grid
  combinations: list                     # Combination, in grid order (done ones)
  differences: list                      # statistics.Difference, Holm-corrected
  runs: list                             # dict per run with RUN_COLUMNS
  missing: list                          # run names without a completed trial


def build(grid: grid_lib.Grid, done: dict) -> Report:
  """`done`: {(cell, runner, seed): completed FrozenTrial} (storage.completed)."""
  runs = []
  for point in grid.points():
    trial = done.get(point)
    if trial is None:
      continue
    a = trial.user_attrs
    runs.append({'cell': point[0], 'runner': point[1], 'seed': point[2],
                 'trial': trial.number, **{k: a.get(k) for k in RUN_COLUMNS
                                           if k not in ('cell', 'runner', 'seed', 'trial')},
                 'curve': a.get('test_accuracy_curve', [])})
  combos = []
  for cell, runner in grid.combinations():
    mine = [r for r in runs if (r['cell'], r['runner']) == (cell, runner)]
    if not mine:
      continue
    at_best = [r['test_accuracy_at_best_validation'] for r in mine
               if r['test_accuracy_at_best_validation'] is not None]
    speeds = [r['steady_examples_per_sec'] for r in mine if r['steady_examples_per_sec']]
    combos.append(Combination(
        cell, runner, statistics.summarize([r['final_test_accuracy'] for r in mine]),
        statistics.summarize(at_best) if len(at_best) == len(mine) else None,
        statistics.summarize(speeds) if speeds else None,
        all(r['check_every_epoch'] for r in mine),
        {r['seed']: r['final_test_accuracy'] for r in mine}, [r['curve'] for r in mine]))
  missing = [grid_lib.run_name(*p) for p in grid.points() if p not in done]
  return Report(grid, combos, statistics.holm(_pairs(combos)), runs, missing)


def _pairs(combos: list) -> list:
  """Every pair of configurations that differ in one factor: two cells at the same
  runner, or the two runners of one cell."""
  out = []
  for a, b in itertools.combinations(combos, 2):
    if a.runner == b.runner:
      label = f'{NAMES[b.cell]} \u2212 {NAMES[a.cell]} ({a.runner})'
    elif a.cell == b.cell:
      label = f'{b.runner} \u2212 {a.runner} ({NAMES[a.cell]})'
    else:
      continue
    d = statistics.paired_difference(label, a.by_seed, b.by_seed)
    if d is not None:
      out.append(d)
  return out


def _pct(x: float) -> str:
  return '' if x is None or math.isnan(x) else f'{100 * x:.2f}%'


def _interval(s: statistics.Summary) -> str:
  return '' if math.isnan(s.ci_low) else f'[{100 * s.ci_low:.2f}, {100 * s.ci_high:.2f}]'


def power_sentence(needed) -> str:
  """What statistics.seeds_needed's answer means, in words (thousands separated)."""
  if needed is None:
    return ('the seeds differ by exactly nothing, so no number of seeds can detect a'
            ' difference')
  return (f'about {needed:,} seeds would detect a true difference this large with 80%'
          ' power')


def markdown(report: Report) -> str:
  """The report as markdown: the table, the verdicts, the seeds needed."""
  with_validation = any(c.at_best_validation for c in report.combinations)
  head = ['cell', 'runner', 'n', 'final test acc: mean', 'SD (points)', '95% CI',
          'min–max']
  if with_validation:
    head += ['test acc at best-validation epoch: mean', '95% CI']
  head += ['steady ex/s: mean (min–max)', 'states.h == outputs[-1] every epoch']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for c in report.combinations:
    f = c.final
    row = [c.cell, c.runner, str(f.n), _pct(f.mean),
           '' if math.isnan(f.sd) else f'{100 * f.sd:.3f}', _interval(f),
           f'{_pct(f.min)}–{_pct(f.max)}']
    if with_validation:
      b = c.at_best_validation
      row += [_pct(b.mean), _interval(b)] if b else ['', '']
    row.append('' if c.speed is None else
               f'{c.speed.mean:,.0f} ({c.speed.min:,.0f}–{c.speed.max:,.0f})')
    row.append(str(c.check_every_epoch))
    lines.append('| ' + ' | '.join(row) + ' |')
  out = '\n'.join(lines) + '\n'
  if report.differences:
    out += (f'\nPaired differences of final test accuracy (same seeds; paired t-test,'
            f' Holm-corrected over these {len(report.differences)}):\n\n')
    for d in report.differences:
      power = power_sentence(statistics.seeds_needed(d.mean, d.sd))
      out += f'- {statistics.describe_difference(d)}; {power}\n'
  elif report.combinations:
    out += '\nNo paired differences: a comparison needs two or more seeds of each.\n'
  if report.missing:
    out += (f'\nNot in this report ({len(report.missing)} runs not done):'
            f' {", ".join(report.missing)}\n')
  return out


def write(report: Report, folder: str) -> list:
  """Writes comparison.md, comparison.csv (a row per run) and comparison.png into
  `folder`; returns their paths."""
  from study import plots  # pylint: disable=g-import-not-at-top  (matplotlib: slow)
  md_path = os.path.join(folder, 'comparison.md')
  with open(md_path, 'w', encoding='utf-8') as f:
    f.write(markdown(report))
  csv_path = os.path.join(folder, 'comparison.csv')
  with open(csv_path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=RUN_COLUMNS, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(report.runs)
  png_path = os.path.join(folder, 'comparison.png')
  plots.comparison(report, png_path)
  return [md_path, csv_path, png_path]
