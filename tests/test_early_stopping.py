"""--early_stopping_patience: when a run stops, which weights are its model, resume, and
the CLI's answers (bad values are in test_cli)."""

import dataclasses
import json
import os

import optuna
import pytest

from mnist_rnn import checkpoints
from mnist_rnn import config as config_lib
from mnist_rnn import errors
from mnist_rnn import metrics_log
from mnist_rnn import mnist_data
from mnist_rnn import train
from study import run_results
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_reliability import without_timing

# A small fast run whose validation accuracy stalls early (a high learning rate):
# with a patience of 1 it stops well before its 15 epochs.
PATIENCE = 1
EPOCHS = 15
# The same as a command (the first 1,000 training examples, the last 500 held out).
SMALL_RUN = ['--train_examples=1000', '--validation_examples=500', '--test_examples=500',
             f'--epochs={EPOCHS}', f'--early_stopping_patience={PATIENCE}',
             '--num_units=16', '--learning_rate=0.03', '--workdir=set by the test']


def record(epoch, best_epoch):
  return {'epoch': epoch, 'best_validation_epoch': best_epoch}


@pytest.mark.parametrize('history, patience, stops', [
    ([record(1, 1), record(2, 1), record(3, 1)], 2, True),
    ([record(1, 1), record(2, 1), record(3, 1)], 3, False),
    ([record(1, 1), record(2, 2)], 1, False),
    ([record(1, 1), record(2, 1)], 1, True),
    ([record(1, 1), record(2, 1), record(3, 1)], 0, False),    # 0 = off
    ([{'epoch': 1}, {'epoch': 2}], 1, False),                   # no validation split
    ([], 1, False),
])
def test_a_run_stops_once_validation_has_not_improved_for_patience_epochs(
    history, patience, stops):
  assert metrics_log.stopped_early(history, patience) is stops


@pytest.fixture(scope='module')
def small_data():
  data = mnist_data.load()
  return mnist_data.Mnist(data.train.take(1500), data.test.take(500))


def small_config(workdir, patience=PATIENCE):
  return config_lib.TrainConfig(
      model=config_lib.ModelConfig(num_units=16), workdir=str(workdir), batch_size=128,
      epochs=EPOCHS, learning_rate=0.03, validation_examples=500,
      early_stopping_patience=patience)


@pytest.fixture(scope='module')
def stopped(tmp_path_factory, small_data):
  """An uninterrupted run with early stopping (read only)."""
  workdir = tmp_path_factory.mktemp('stopped')
  result = train.train_and_evaluate(small_config(workdir), small_data)
  return str(workdir), result


def test_the_run_stops_patience_epochs_after_its_best_and_says_so(stopped):
  _, result = stopped
  history = result.history
  last = history[-1]
  assert last['epoch'] < EPOCHS, 'the fixture run must stop early to test anything'
  assert last['stopped_early'] is True
  assert last['epoch'] - last['best_validation_epoch'] == PATIENCE
  # Every earlier epoch was within the patience of its best, and is not marked.
  for r in history[:-1]:
    assert r['epoch'] - r['best_validation_epoch'] < PATIENCE
    assert 'stopped_early' not in r
  line = metrics_log.summary_line(history, early_stopping=True)
  assert line.startswith(f'done: stopped early after {last["epoch"]} epochs')
  assert f'the model: epoch {last["best_validation_epoch"]}' in line
  assert f'final test accuracy {last["test_accuracy_at_best_validation"]:.4f}' in line


def test_the_best_validation_folder_holds_the_best_epochs_weights(stopped, small_data):
  workdir, result = stopped
  last = result.history[-1]
  steps_per_epoch = -(-1000 // 128)
  best = os.path.join(workdir, config_lib.BEST_VALIDATION_FOLDER)
  assert checkpoints.steps(best) == [last['best_validation_epoch'] * steps_per_epoch]
  assert checkpoints.steps(workdir)[0] == last['epoch'] * steps_per_epoch
  config = small_config(workdir)
  assert config_lib.model_folder(config) == best
  # Evaluated again, the kept weights give the test accuracy recorded at that epoch;
  # the run folder's newest checkpoint (the last epoch's) gives the last epoch's.
  assert train.evaluate_checkpoint(config, small_data)['test_accuracy'] == pytest.approx(
      last['test_accuracy_at_best_validation'], abs=1e-9)
  without = dataclasses.replace(config, early_stopping_patience=0)
  assert config_lib.model_folder(without) == workdir
  assert train.evaluate_checkpoint(without, small_data)['test_accuracy'] == pytest.approx(
      last['test_accuracy'], abs=1e-9)
  assert last['test_accuracy'] != last['test_accuracy_at_best_validation']


def test_a_stopped_run_asked_again_trains_nothing(stopped, small_data):
  workdir, result = stopped
  before = os.path.getsize(os.path.join(workdir, metrics_log.FILE_NAME))
  again = train.train_and_evaluate(small_config(workdir), small_data)
  assert again.already_complete
  assert again.history == result.history
  assert os.path.getsize(os.path.join(workdir, metrics_log.FILE_NAME)) == before


def test_an_interrupted_run_resumes_and_stops_where_the_whole_run_stopped(
    tmp_path, stopped, small_data):
  _, whole = stopped
  # Killed mid-way through the epoch after the best one (SIGTERM's path: the
  # weights are saved mid-epoch), then resumed.
  steps_per_epoch = -(-1000 // 128)
  stop_at = (whole.history[-1]['best_validation_epoch'] * steps_per_epoch
             + steps_per_epoch // 2)
  polls = []
  def should_stop():
    polls.append(1)
    return len(polls) > stop_at
  with pytest.raises(errors.TrainingInterrupted):
    train.train_and_evaluate(small_config(tmp_path), small_data, should_stop=should_stop)
  resumed = train.train_and_evaluate(small_config(tmp_path), small_data)
  assert resumed.resumed_from_step == stop_at
  assert without_timing(resumed.history) == without_timing(whole.history)
  best = os.path.join(tmp_path, config_lib.BEST_VALIDATION_FOLDER)
  assert checkpoints.steps(best) == [
      whole.history[-1]['best_validation_epoch'] * steps_per_epoch]


def test_the_cli_stops_answers_again_without_training_and_evaluates_the_best(tmp_path):
  args = [*SMALL_RUN[:-1], f'--workdir={tmp_path}']
  first = run_cli(*args)
  assert first.returncode == 0, first.stderr[-2000:]
  with open(tmp_path / metrics_log.FILE_NAME) as f:
    last = [json.loads(line) for line in f][-1]
  assert last['stopped_early'] and last['epoch'] < EPOCHS
  assert 'stopped early after epoch' in first.stderr
  assert first.stdout.startswith('done: stopped early after')
  again = run_cli(*args)
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'stopped early after epoch' in again.stderr and 'nothing to train' in again.stderr
  assert again.stdout == first.stdout
  evaluated = run_cli(*args, '--eval_only')
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  assert (f'acc {last["test_accuracy_at_best_validation"]:.4f}'
          in evaluated.stdout), evaluated.stdout


def test_with_early_stopping_the_model_is_the_best_epochs_even_without_a_stop():
  history = [dict(record(1, 1), best_validation_accuracy=0.9, test_accuracy=0.88,
                  test_accuracy_at_best_validation=0.88, state_equals_output=True),
             dict(record(2, 1), best_validation_accuracy=0.9, test_accuracy=0.91,
                  test_accuracy_at_best_validation=0.88, state_equals_output=True)]
  line = metrics_log.summary_line(history, early_stopping=True)
  assert line.startswith('done: 2 epochs | the model: epoch 1')
  assert 'final test accuracy 0.8800 (at the last epoch 0.9100)' in line
  assert 'final test accuracy 0.9100' in metrics_log.summary_line(history)


def test_a_studys_result_of_a_stopped_run_is_its_models(stopped):
  workdir, result = stopped
  last = result.history[-1]
  summary = run_results.summarize(workdir, EPOCHS, early_stopping=True)
  assert summary['final_test_accuracy'] == last['test_accuracy_at_best_validation']
  assert len(summary['test_accuracy_curve']) == last['epoch'] < EPOCHS
  with pytest.raises(run_results.IncompleteRun):  # without early stopping: a cut run
    run_results.summarize(workdir, EPOCHS)


def test_a_comparison_with_early_stopping_takes_each_runs_model(tmp_path):
  folder = str(tmp_path / 'cmp')
  result = run_cli('--compare', '--compare_cells=lstm', '--compare_runners=static',
                   '--seeds=1', *SMALL_RUN[:-1], f'--workdir={folder}')
  assert result.returncode == 0, result.stderr[-3000:]
  study = optuna.load_study(study_name='compare', storage=f'sqlite:///{folder}/study.db')
  (trial,) = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
  with open(os.path.join(folder, trial.user_attrs['run'], metrics_log.FILE_NAME)) as f:
    last = [json.loads(line) for line in f][-1]
  assert last['stopped_early'] and last['epoch'] < EPOCHS
  assert trial.value == last['test_accuracy_at_best_validation'] != last['test_accuracy']


def test_a_run_resumes_only_with_its_own_patience(tmp_path):
  # The best epoch's weights are kept from the first epoch on: a run trained without
  # early stopping (or with another patience) is not continued with it.
  args = [*SMALL_RUN[:-1], '--epochs=1', f'--workdir={tmp_path}']
  first = run_cli(*args)
  assert first.returncode == 0, first.stderr[-2000:]
  other = run_cli(*args, '--epochs=2', '--early_stopping_patience=3')
  assert_one_line_error(other, '--early_stopping_patience: saved 1, requested 3')
  without = run_cli(*args, '--early_stopping_patience=0', '--validation_examples=500')
  assert_one_line_error(without, '--early_stopping_patience: saved 1, requested 0')
