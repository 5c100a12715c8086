"""Trains every cell x runner with otherwise identical settings and tabulates them."""

import csv
import dataclasses
import os
from typing import Callable

from absl import logging

from mnist_rnn import config as config_lib
from mnist_rnn import mnist_data
from mnist_rnn import train
from mnist_rnn import workdir
from models import config as model_config

COLUMNS = ('cell', 'runner', 'trainable_parameters', 'build_seconds', 'examples_per_sec',
           'epoch_seconds', 'final_test_accuracy', 'best_test_accuracy',
           'state_equals_output', 'state_output_max_abs_diff', 'error')


def combinations() -> list:
  """Every (cell, runner) the models package offers: new cells join automatically."""
  return [(c, r) for c in model_config.CELLS for r in model_config.RUNNERS]


def compare(config: config_lib.TrainConfig, data: mnist_data.Mnist,
            should_stop: Callable[[], bool] = lambda: False) -> list:
  """Trains each combination in its own subfolder of `config.workdir`.

  A combination that fails gets its error in its row; the others still run.
  (TrainingInterrupted is not a failure of one combination: it propagates.)

  Returns:
    One dict per combination with the keys in COLUMNS.
  """
  rows = []
  for cell, runner in combinations():
    model = dataclasses.replace(config.model, cell=cell, runner=runner, time_major=False)
    name = config_lib.run_name(model)
    sub = dataclasses.replace(config, model=model,
                              workdir=os.path.join(config.workdir, name))
    row = dict.fromkeys(COLUMNS, '')
    row.update(cell=cell, runner=runner)
    try:
      workdir.claim(sub.workdir, config_lib.flag_lines(sub))
      with workdir.locked(sub.workdir):
        result = train.train_and_evaluate(sub, data, should_stop)
      history = result.history
      last = history[-1]
      # Steady state: the first epoch's throughput includes graph optimisation.
      speeds = [r['examples_per_sec'] for r in history[1:]] or [last['examples_per_sec']]
      row.update(
          trainable_parameters=result.trainable_parameters,
          build_seconds=round(result.build_seconds, 3),
          examples_per_sec=round(sum(speeds) / len(speeds)),
          epoch_seconds=round(sum(r['epoch_seconds'] for r in history) / len(history), 2),
          final_test_accuracy=last['test_accuracy'],
          best_test_accuracy=max(r['test_accuracy'] for r in history),
          state_equals_output=last['state_equals_output'],
          state_output_max_abs_diff=last['state_output_max_abs_diff'])
    except train.TrainingInterrupted:
      raise
    except Exception as e:  # pylint: disable=broad-except  (reported in the row)
      logging.error('%s failed: %s: %s', name, type(e).__name__, e)
      row['error'] = f'{type(e).__name__}: {e}'.splitlines()[0]
    rows.append(row)
  return rows


def markdown(rows: list) -> str:
  """The comparison as a markdown table."""
  def fmt(key, value):
    if key.endswith('accuracy') and isinstance(value, float):
      return f'{100 * value:.2f}%'
    if key == 'state_output_max_abs_diff' and isinstance(value, float):
      return f'{value:.1e}'
    return str(value)
  lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
  lines += ['| ' + ' | '.join(fmt(k, r[k]) for k in COLUMNS) + ' |' for r in rows]
  return '\n'.join(lines) + '\n'


def write(rows: list, workdir: str) -> tuple:
  """Writes comparison.csv and comparison.md into `workdir`; returns their paths."""
  csv_path = os.path.join(workdir, 'comparison.csv')
  with open(csv_path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  md_path = os.path.join(workdir, 'comparison.md')
  with open(md_path, 'w', encoding='utf-8') as f:
    f.write(markdown(rows))
  return csv_path, md_path
