"""--compare, --inspect and the TensorBoard event files."""

import csv
import json
import os

import pytest

from mnist_rnn import config as config_lib
from mnist_rnn import inspect_graph
from mnist_rnn import mnist_data
from mnist_rnn import summaries
from models import config as model_config
from tests.test_cli import SMOKE, run_cli


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('compare')
  result = run_cli(f'--flagfile={SMOKE}', '--compare', '--epochs=1', '--num_units=16',
                   f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


def test_compare_writes_one_row_per_combination(compared):
  workdir, result = compared
  with open(workdir / 'comparison.csv') as f:
    rows = list(csv.DictReader(f))
  assert [(r['cell'], r['runner']) for r in rows] == [
      (c, r) for c in ('lstm', 'gru', 'rnn', 'basic_lstm', 'fused_lstm', 'fused_gru')
      for r in ('static', 'dynamic')]
  for r in rows:
    assert r['error'] == ''
    assert r['state_equals_output'] == 'True' and float(r['state_output_max_abs_diff']) == 0
    assert float(r['examples_per_sec']) > 0 and float(r['build_seconds']) > 0
    assert 0 <= float(r['final_test_accuracy']) <= float(r['best_test_accuracy']) <= 1
  # LSTMs: 4 gates x (28 + 16 + 1) x 16; GRU: 3 x that; RNN: 1 x; head: 16 x 10 + 10.
  assert [int(r['trainable_parameters']) for r in rows] == (
      [2880 + 170] * 2 + [2160 + 170] * 2 + [720 + 170] * 2 + [2880 + 170] * 4
      + [2160 + 170] * 2)
  markdown = (workdir / 'comparison.md').read_text()
  assert markdown.count('\n') == 14 and '| gru | dynamic |' in markdown
  assert '| gru | dynamic |' in result.stdout
  for name in ('lstm_static', 'lstm_dynamic', 'gru_static', 'gru_dynamic', 'rnn_static',
               'basic_lstm_dynamic', 'fused_lstm_static', 'fused_gru_dynamic'):
    assert os.path.exists(workdir / name / 'metrics.jsonl')
    cell, runner = name.rsplit('_', 1)
    saved = (workdir / name / 'flags.txt').read_text()  # each run can be repeated alone
    assert f'--cell={cell}\n' in saved and f'--runner={runner}\n' in saved
  assert '--compare\n' in (workdir / 'flags.txt').read_text()


@pytest.mark.parametrize('name', ['gru_dynamic', 'lstm_static'])
def test_event_files_hold_the_epoch_scalars(compared, name):
  workdir, _ = compared
  run = workdir / name
  with open(run / 'metrics.jsonl') as f:
    record = json.loads(f.readline())
  scalars = summaries.read_scalars(str(run))
  written = [key for key in summaries.SCALARS if key in record]
  for key in written:
    tag = summaries.SCALARS[key]
    assert scalars[tag][1] == pytest.approx(float(record[key]), rel=1e-6), tag
  # c exists for LSTMs only; everything else in every run.
  assert set(summaries.SCALARS) - set(written) == (set() if name == 'lstm_static'
                                                   else {'c_h_max_abs_diff'})
  assert scalars['check/state_h_equals_outputs_last'][1] == 1.0


def test_event_files_hold_graph_and_hparams(compared):
  import tensorflow as tf
  workdir, _ = compared
  path = [p for p in os.listdir(workdir / 'lstm_static') if p.startswith('events.out')][0]
  assert any(event.graph_def for event in
             tf.compat.v1.train.summary_iterator(str(workdir / 'lstm_static' / path)))
  # Each run's flags, as the HParams dashboard reads them, one session per run.
  for name in ('lstm_static', 'gru_dynamic'):
    hparams = summaries.read_hparams(str(workdir / name))
    cell, runner = name.split('_')
    assert hparams['cell'] == cell and hparams['runner'] == runner
    assert hparams['num_units'] == 16 and hparams['bidirectional'] is False
    assert hparams['trainable_parameters'] > 0 and 'workdir' not in hparams


@pytest.fixture(scope='module')
def images():
  return mnist_data.load().test.images[:3]


@pytest.mark.parametrize('cell, runner, time_major, expected', [
    ('lstm', 'static', False, ['a Python list of 28 tensors', 'outputs[27] [3, 8]',
                               'LSTMStateTuple(c=[3, 8], h=[3, 8])',
                               'states.c == states.h: False']),
    ('lstm', 'dynamic', False, ['[batch, time, units] = [3, 28, 8]',
                                'shape [28, 8] = [time, units]',
                                'its last row == states.h of the last example: True']),
    ('lstm', 'dynamic', True, ['[time, batch, units] = [28, 3, 8]']),
    ('gru', 'static', False, ['a Python list of 28 tensors', 'states: [3, 8]', 'a GRU\'s state is its output at the last step']),
    ('gru', 'dynamic', False, ['[batch, time, units] = [3, 28, 8]',
                               'states: [3, 8]', 'a GRU\'s state is its output at the last step']),
], ids=['lstm-static', 'lstm-dynamic', 'lstm-time_major', 'gru-static', 'gru-dynamic'])
def test_inspect_prints_the_real_shapes(cell, runner, time_major, expected, images):
  text = inspect_graph.inspect(config_lib.ModelConfig(
      cell=cell, runner=runner, time_major=time_major, num_units=8), images)
  assert 'states.h == outputs[-1]: True (max |diff| 0.0e+00)' in text
  for fragment in expected:
    assert fragment in text, text


def test_inspect_cli_runs_without_training(tmp_path):
  result = run_cli('--inspect', '--cell=gru', '--runner=dynamic', '--time_major',
                   f'--workdir={tmp_path}/unused')
  assert result.returncode == 0, result.stderr[-2000:]
  assert '[time, batch, units] = [28, 4, 128]' in result.stdout
  assert not os.path.exists(tmp_path / 'unused')


def test_a_failing_combination_is_reported_and_the_others_run(tmp_path):
  from mnist_rnn import compare
  from mnist_rnn import workdir
  data = mnist_data.load()
  data = mnist_data.Mnist(data.train.take(128), data.test.take(64))
  config = config_lib.TrainConfig(model=config_lib.ModelConfig(num_units=8),
                                  workdir=str(tmp_path), batch_size=64, epochs=1)
  # gru_dynamic's folder already holds another run: that combination must fail alone.
  os.makedirs(tmp_path / 'gru_dynamic')
  workdir.write_flags(str(tmp_path / 'gru_dynamic'), ['--cell=gru', '--num_units=99'])
  rows = compare.compare(config, data)
  failed = [r for r in rows if r['error']]
  assert [(r['cell'], r['runner']) for r in failed] == [('gru', 'dynamic')]
  assert '--num_units: saved 99, requested 8' in failed[0]['error']
  assert len(rows) == 2 * len(model_config.CELLS) == 12
  assert all(r['final_test_accuracy'] != '' for r in rows if not r['error'])
  assert '| gru | dynamic |' in compare.markdown(rows)
