"""--inspect and the TensorBoard event files."""

import json
import os

import pytest

from mnist_rnn import config as config_lib
from mnist_rnn import inspect_graph
from mnist_rnn import mnist_data
from mnist_rnn import summaries
from tests.test_cli import ROOT, SMOKE, run_cli


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
  """Two one-epoch runs, an LSTM static and a GRU dynamic, each in its folder."""
  workdir = tmp_path_factory.mktemp('runs')
  for cell, runner in (('lstm', 'static'), ('gru', 'dynamic')):
    result = run_cli(f'--flagfile={SMOKE}', f'--cell={cell}', f'--runner={runner}',
                     '--epochs=1', '--num_units=16', f'--workdir={workdir}/{cell}_{runner}')
    assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


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
  # c exists for LSTMs only, validation only with --validation_examples.
  validation = {'validation_loss', 'validation_accuracy', 'test_accuracy_at_best_validation'}
  assert set(summaries.SCALARS) - set(written) == validation | (
      set() if name == 'lstm_static' else {'c_h_max_abs_diff'})
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


@pytest.mark.parametrize('preset', ['sequential_mnist', 'permuted_mnist'])
def test_the_784_step_presets_build_and_hold_the_check(preset, tmp_path):
  """Each preset's flags parse and validate together, and its graph (784 static steps
  of the fused LSTM) builds and runs: the equality at step 784 holds."""
  result = run_cli(f'--flagfile={ROOT}/configs/{preset}.flags', '--inspect',
                   f'--workdir={tmp_path}/unused')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'a Python list of 784 tensors' in result.stdout
  assert 'states.h == outputs[-1]: True' in result.stdout
  assert not os.path.exists(tmp_path / 'unused')
