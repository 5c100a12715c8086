"""--compare --tune end to end on the embedded database: each cell searched on
validation accuracy, its best configuration compared over seeds; pruning; bad input."""

import json
import os

import optuna
import pytest

from study import tuning
from tests.test_cli import ROOT, assert_one_line_error, run_cli
from tests.test_study import TINY, metrics

SMALL = [*TINY, '--tune', '--compare_cells=lstm,gru', '--compare_runners=static',
         '--seeds=2', '--epochs=1', '--validation_examples=128', '--tune_trials=3',
         '--tune_epochs=1', '--tune_train_examples=256', '--jobs=2']


@pytest.fixture(scope='module')
def tuned(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('tune') / 'cmp')
  result = run_cli(*SMALL, f'--workdir={folder}')
  assert result.returncode == 0, result.stderr[-3000:]
  return folder, result


def test_each_cell_is_searched_on_validation_accuracy_alone(tuned):
  folder, _ = tuned
  url = f'sqlite:///{folder}/study.db'
  for cell in ('lstm', 'gru'):
    search = optuna.load_study(study_name=f'compare-tune-{cell}', storage=url)
    settings = search.user_attrs['tune']
    assert (settings['pruner'], settings['reduction_factor'], settings['sampler_seed'],
            settings['tune_epochs']) == ('successive_halving', 3, 0, 1)
    assert 'num_units' not in settings['space'] and 'learning_rate' in settings['space']
    done = search.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 3
    for t in done:
      run = os.path.basename(t.user_attrs['folder'])
      records = metrics(os.path.join(folder, 'tune'), run)
      assert t.value == records[-1]['validation_accuracy']  # the objective
      assert not [k for k in t.user_attrs if 'test' in k]  # the search never saw test
      # --num_units and --batch_size were given (TINY, its flagfile): fixed, not searched.
      assert set(t.params) == ({'learning_rate', 'clip_norm'}
                               | ({'forget_bias'} if cell == 'lstm' else set()))
      assert list(t.intermediate_values) == [1]  # its validation accuracy per epoch
    # The comparison ran the best configuration of the cell, every seed, with the
    # given flags as they were given.
    best = search.best_trial.params
    for seed in (0, 1):
      saved = open(os.path.join(folder, f'{cell}_static_seed{seed}', 'flags.txt')).read()
      for name, value in best.items():
        assert f'--{name}={value}\n' in saved, (name, value)
      assert '--num_units=8\n' in saved and '--batch_size=64\n' in saved


def test_a_given_flag_is_left_out_of_the_search_and_said_so(tuned):
  folder, result = tuned
  for name, value in (('num_units', 8), ('batch_size', 64)):
    assert (f'tune: --{name}={value} was given, so it is left out of the search: every'
            ' run uses it') in result.stderr
  text = open(os.path.join(folder, 'tuning.md')).read()
  assert 'Given on the command line, so not searched: --batch_size=64, --num_units=8.' in text


def test_every_comparison_trial_has_its_test_curve_and_the_study_its_note(tuned):
  folder, result = tuned
  study = optuna.load_study(study_name='compare', storage=f'sqlite:///{folder}/study.db')
  done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
  assert len(done) == 4
  for t in done:  # the comparison's runs: 1 epoch, its test accuracy
    assert t.intermediate_values == {1: t.value}
  from optuna_dashboard._note import get_note_from_system_attrs  # pylint: disable=g-import-not-at-top
  note = get_note_from_system_attrs(study._storage.get_study_system_attrs(  # pylint: disable=protected-access
      study._study_id), None)['body']  # pylint: disable=protected-access
  report = open(os.path.join(folder, 'comparison.md')).read().strip()
  assert report in note and note.startswith('## The comparison, over seeds')
  assert 'GRU − LSTM (static):' in note and '95% CI' in note


def test_the_report_gives_best_parameters_importances_and_the_comparison(tuned):
  folder, result = tuned
  text = open(os.path.join(folder, 'tuning.md')).read()
  assert text in result.stdout and '| lstm |' in text and '| gru |' in text
  assert 'learning_rate' in text and "fANOVA (Optuna's FanovaImportanceEvaluator" in text
  # 3 complete trials: too few for fANOVA to rank anything, and it says so.
  assert '| not ranked: 3 complete trials, fewer than 20 |' in text
  assert '| lstm | static | 2 |' in result.stdout  # then the tuned comparison
  assert 'test acc at best-validation epoch' in result.stdout
  with open(os.path.join(folder, 'tuning.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  again = run_cli(*SMALL, f'--workdir={folder}')  # done: nothing is run again
  assert again.returncode == 0 and '3 of 3 trials done or running' in again.stderr
  assert again.stdout == result.stdout


def _pruning_worker(tmp_path, epochs):
  """(worker, study, config): a worker whose pruner stops every run at its first report,
  and a tiny run of `epochs` (~0.1 s each) in tmp_path/run."""
  from mnist_rnn import config as config_lib  # pylint: disable=g-import-not-at-top
  from study import grid as grid_lib  # pylint: disable=g-import-not-at-top
  from study import worker as worker_lib  # pylint: disable=g-import-not-at-top
  study = optuna.create_study(direction='maximize',
                              pruner=optuna.pruners.ThresholdPruner(lower=2.0))
  base = config_lib.TrainConfig(train_examples=2048, test_examples=256, batch_size=64,
                                epochs=epochs, validation_examples=128,
                                model=config_lib.ModelConfig(num_units=8))
  worker = worker_lib.Worker(study, grid_lib.Grid(base),
                             worker_lib.Options(folder=str(tmp_path)))
  return worker, study, grid_lib.with_flags(base, workdir=str(tmp_path / 'run'))


def test_a_run_below_the_pruners_bar_is_stopped_after_an_epoch(tmp_path):
  # Epochs of ~0.1 s against the worker's 0.5 s look at metrics.jsonl: a run of a few
  # epochs can end before it is seen (CI once saw all 4 of 4). 400 cannot end unseen.
  worker, study, config = _pruning_worker(tmp_path, epochs=400)
  trial = study.ask()
  with pytest.raises(optuna.TrialPruned):
    worker.train(trial, config, prune=True)
  frozen = study.trials[0]
  assert list(frozen.intermediate_values) == [1]  # reported epoch 1, stopped there
  epochs = [r['epoch'] for r in metrics(str(tmp_path), 'run')]
  assert epochs[0] == 1 and len(epochs) < 400  # SIGTERM: stopped early
  assert trial.user_attrs['pruned_after_epoch'] == 1
  log = (tmp_path / 'logs' / 'run.log').read_text()
  assert 'interrupted by SIGTERM' in log  # it saved: the same run resumes from there
  assert os.path.exists(tmp_path / 'run' / 'checkpoint')


def test_a_run_that_already_has_all_its_epochs_is_kept_not_pruned(tmp_path):
  # A retried trial whose run finished before (its result never reached the study): the
  # trainer has nothing to train, and the same pruner must not throw the result away.
  worker, study, config = _pruning_worker(tmp_path, epochs=2)
  from mnist_rnn import config as config_lib  # pylint: disable=g-import-not-at-top
  trainer = run_cli(*config_lib.flag_lines(config))  # the run, done before the trial
  assert trainer.returncode == 0, trainer.stderr[-2000:]
  trial = study.ask()
  result = worker.train(trial, config, prune=True)
  assert result['final_test_accuracy'] == metrics(str(tmp_path), 'run')[-1]['test_accuracy']
  assert list(study.trials[0].intermediate_values) == [1, 2]
  assert 'pruned_after_epoch' not in trial.user_attrs
  assert 'nothing to train' in (tmp_path / 'logs' / 'run.log').read_text()


def test_the_shipped_space_loads_and_a_bad_one_is_one_line(tmp_path):
  space = tuning.load_space(os.path.join(ROOT, 'configs', 'tune_space.json'))
  assert space['learning_rate'] == {'type': 'float', 'low': 0.0003, 'high': 0.01, 'log': True}
  assert space['forget_bias']['cells'] == ['lstm', 'basic_lstm', 'fused_lstm']
  (tmp_path / 'space.json').write_text(json.dumps({'dropout': {'type': 'float', 'low': 0,
                                                               'high': 1}}))
  result = run_cli(*SMALL, f'--tune_space={tmp_path}/space.json', f'--workdir={tmp_path}/c')
  assert_one_line_error(result, f"--tune_space={tmp_path}/space.json: 'dropout' is not a"
                        ' flag it can tune')
  no_validation = run_cli(*[a for a in SMALL if 'validation' not in a],
                          f'--workdir={tmp_path}/c')
  assert_one_line_error(no_validation, '--tune tunes on a validation split')
  assert no_validation.returncode == 2


def test_the_tuning_heading_says_epoch_or_epochs_and_separates_thousands():
  from study import tuning as tuning_lib  # pylint: disable=g-import-not-at-top
  one = tuning_lib.tuning_markdown({}, {}, tuning_lib.Options(trials=4, epochs=1,
                                                              train_examples=20000,
                                                              pruner='median'))
  assert one.startswith('Tuned on validation accuracy (4 trials per cell, 1 epoch on'
                        ' 20,000 training examples, TPE, median pruning):')
  three = tuning_lib.tuning_markdown({}, {}, tuning_lib.Options(epochs=3, train_examples=0,
                                                                pruner='none'))
  assert '3 epochs on all training examples, TPE):' in three
  full = tuning_lib.tuning_markdown({}, {}, tuning_lib.Options(epochs=25))
  assert ('25 epochs on all training examples, TPE, successive halving (r = 3, rungs at'
          ' epoch 1, 3, 9)):') in full


def test_successive_halving_rungs_and_pruners():
  assert tuning.rungs(tuning.Options(epochs=25, reduction_factor=3)) == [1, 3, 9]
  assert tuning.rungs(tuning.Options(epochs=25, reduction_factor=2)) == [1, 2, 4, 8, 16]
  assert tuning.rungs(tuning.Options(epochs=25, pruner='hyperband')) == []
  kinds = {p: type(tuning.make_pruner(tuning.Options(epochs=25, pruner=p))).__name__
           for p in tuning.PRUNERS}
  assert kinds == {'successive_halving': 'SuccessiveHalvingPruner',
                   'hyperband': 'HyperbandPruner', 'median': 'MedianPruner',
                   'none': 'NopPruner'}


def test_successive_halving_stops_the_weaker_full_budget_run_at_its_first_rung(tmp_path):
  """Two real runs at the full budget (3 epochs) under r = 2: the first, which learns,
  completes; the second (a learning rate that learns nothing) is below the top half at
  epoch 1 and is stopped there, its checkpoint kept."""
  from study import grid as grid_lib  # pylint: disable=g-import-not-at-top
  worker, _, config = _pruning_worker(tmp_path, epochs=3)
  # Epochs of 625 steps (about 2 s here): the worker's look every 0.5 s sees epoch 1 of
  # the weak run before its run ends (a run that has all its epochs is never pruned).
  config = grid_lib.with_flags(config, train_examples=40000)
  study = optuna.create_study(direction='maximize', pruner=tuning.make_pruner(
      tuning.Options(epochs=3, reduction_factor=2)))
  worker.study = study
  good = worker.train(study.ask(), grid_lib.with_flags(
      config, learning_rate=0.01, workdir=str(tmp_path / 'good')), prune=True)
  study.tell(0, good['validation_accuracy_curve'][-1])
  weak = study.ask()
  with pytest.raises(optuna.TrialPruned):
    worker.train(weak, grid_lib.with_flags(config, learning_rate=1e-9,
                                           workdir=str(tmp_path / 'weak')), prune=True)
  assert weak.user_attrs['pruned_after_epoch'] == 1
  assert [r['epoch'] for r in metrics(str(tmp_path), 'weak')][0] == 1
  assert len(metrics(str(tmp_path), 'weak')) < 3 and len(metrics(str(tmp_path), 'good')) == 3
  assert os.path.exists(tmp_path / 'weak' / 'checkpoint')


def test_a_bad_pruner_and_a_search_with_nothing_left_are_one_line(tmp_path):
  bad = run_cli(*SMALL, '--tune_pruner=asha', f'--workdir={tmp_path}/c')
  assert_one_line_error(bad, 'flag --tune_pruner=asha')
  assert bad.returncode == 2 and not os.path.exists(tmp_path / 'c')
  every = [a for a in SMALL if not a.startswith(('--tune_epochs', '--tune_train_examples'))]
  space = tmp_path / 'space.json'
  space.write_text(json.dumps({'num_units': {'type': 'categorical', 'choices': [8, 16]}}))
  nothing = run_cli(*every, f'--tune_space={space}', f'--workdir={tmp_path}/c')
  assert_one_line_error(nothing, f'every flag of --tune_space={space} was given on the'
                        ' command line; nothing is left to search')
  assert not os.path.exists(tmp_path / 'c')
