"""--compare as an Optuna study, through the real CLI: runs as processes in parallel,
the report against the runs' own metrics.jsonl, reruns that train nothing, a killed
worker and a killed run, another grid, bad input."""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from study import statistics
from tests.test_cli import ROOT, SMOKE, assert_one_line_error, run_cli

TINY = [f'--flagfile={SMOKE}', '--num_units=8', '--compare']
GRID = ['--compare_cells=lstm,gru', '--compare_runners=static', '--seeds=3']
RUNS = [f'{c}_static_seed{s}' for s in range(3) for c in ('lstm', 'gru')]


def load(folder, name='compare'):
  return optuna.load_study(study_name=name, storage=f'sqlite:///{folder}/study.db')


def metrics(folder, run):
  with open(os.path.join(folder, run, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
  """2 cells x 1 runner x 3 seeds, 3 epochs, 2 runs at a time, a validation split."""
  folder = str(tmp_path_factory.mktemp('study') / 'cmp')
  result = run_cli(*TINY, *GRID, '--epochs=3', '--validation_examples=128', '--jobs=2',
                   f'--workdir={folder}')
  assert result.returncode == 0, result.stderr[-3000:]
  return folder, result


def test_every_run_is_a_trial_whose_results_are_the_runs_metrics(compared):
  folder, result = compared
  assert '6 runs in the grid, 0 done, 0 running elsewhere, 6 to train here, 2 at a time' \
      in result.stderr
  trials = load(folder).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
  assert sorted(t.user_attrs['run'] for t in trials) == sorted(RUNS)
  for t in trials:
    records = metrics(folder, t.user_attrs['run'])
    assert [r['epoch'] for r in records] == [1, 2, 3]
    assert t.value == records[-1]['test_accuracy'] == t.user_attrs['final_test_accuracy']
    assert t.user_attrs['test_accuracy_curve'] == [r['test_accuracy'] for r in records]
    assert t.user_attrs['check_every_epoch'] is True
    assert t.params['seed'] == int(t.user_attrs['run'][-1])
    # Each run is an ordinary run: its flags.txt (seed included) repeats it alone.
    saved = open(os.path.join(folder, t.user_attrs['run'], 'flags.txt')).read()
    assert f'--seed={t.params["seed"]}\n' in saved and f'--cell={t.params["cell"]}\n' in saved
    assert '--towers=1\n' in saved  # 2 jobs on 2 cores: one tower each


def test_the_validation_split_picks_the_epoch_and_test_accuracy_picks_nothing(compared):
  folder, _ = compared
  for run in RUNS:
    records = metrics(folder, run)
    validation = [r['validation_accuracy'] for r in records]
    best = validation.index(max(validation))  # the earliest of equals
    last = records[-1]
    assert last['best_validation_epoch'] == best + 1
    assert last['test_accuracy_at_best_validation'] == records[best]['test_accuracy']
    assert 'best_test_accuracy' not in last


def test_the_report_agrees_with_the_runs(compared):
  folder, result = compared
  report = open(os.path.join(folder, 'comparison.md')).read()
  assert report in result.stdout  # the table is what the command prints on stdout
  for cell in ('lstm', 'gru'):
    finals = [metrics(folder, f'{cell}_static_seed{s}')[-1]['test_accuracy'] for s in range(3)]
    s = statistics.summarize(finals)
    row = [l for l in report.splitlines() if l.startswith(f'| {cell} | static |')][0]
    assert f'| 3 | {100 * s.mean:.2f}% | {100 * s.sd:.3f} |' in row
    assert f'[{100 * s.ci_low:.2f}, {100 * s.ci_high:.2f}]' in row
  lstm = {s: metrics(folder, f'lstm_static_seed{s}')[-1]['test_accuracy'] for s in range(3)}
  gru = {s: metrics(folder, f'gru_static_seed{s}')[-1]['test_accuracy'] for s in range(3)}
  d = statistics.holm([statistics.paired_difference('GRU − LSTM (static)', lstm, gru)])[0]
  assert statistics.describe_difference(d) in report
  assert 'test acc at best-validation epoch' in report.splitlines()[0]
  with open(os.path.join(folder, 'comparison.csv')) as f:
    rows = list(csv.DictReader(f))
  assert sorted(f'{r["cell"]}_static_seed{r["seed"]}' for r in rows) == sorted(RUNS)
  for r in rows:
    run = f'{r["cell"]}_static_seed{r["seed"]}'
    assert float(r['final_test_accuracy']) == metrics(folder, run)[-1]['test_accuracy']
  with open(os.path.join(folder, 'comparison.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_rerunning_trains_nothing_and_the_database_alone_makes_the_report(compared, tmp_path):
  folder, first = compared
  again = run_cli(*TINY, *GRID, '--epochs=3', '--validation_examples=128', '--jobs=2',
                  f'--workdir={folder}')
  assert again.returncode == 0, again.stderr[-2000:]
  assert '6 runs in the grid, 6 done, 0 running elsewhere, 0 to train here' in again.stderr
  for run in RUNS:  # each run was trained by one trial, once
    log = open(os.path.join(folder, 'logs', run + '.log')).read()
    assert log.count('# trial ') == 1 and log.count('done: 3 epochs') == 1  # stdout, kept in the log
  # Another machine with only the database: the same report.
  shutil.copy(os.path.join(folder, 'study.db'), tmp_path / 'copy.db')
  elsewhere = run_cli(*TINY, *GRID, '--epochs=3', '--validation_examples=128', '--report',
                      f'--storage=sqlite:///{tmp_path}/copy.db', f'--workdir={tmp_path}/r')
  assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
  assert elsewhere.stdout == first.stdout
  assert not os.path.exists(tmp_path / 'r' / 'lstm_static_seed0')


def test_a_folder_of_another_grid_is_refused(compared):
  folder, _ = compared
  result = run_cli(*TINY, *GRID[:2], '--seeds=2', '--epochs=3', '--validation_examples=128',
                   f'--workdir={folder}')
  assert_one_line_error(result, "study 'compare' was made for another grid",
                        '--seeds: 3 there, 2 here', '--workdir')
  assert len(load(folder).trials) == 6


def test_each_run_has_its_seed_as_an_hparams_column(compared):
  from mnist_rnn import summaries  # pylint: disable=g-import-not-at-top  (TensorFlow)
  folder, _ = compared
  for run in ('lstm_static_seed0', 'gru_static_seed2'):
    hparams = summaries.read_hparams(os.path.join(folder, run))
    assert hparams['seed'] == run[-1] and hparams['cell'] == run.split('_')[0]


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _post(url, body):
  request = urllib.request.Request(url, json.dumps(body).encode(),
                                   {'Content-Type': 'application/json'})
  with urllib.request.urlopen(request, timeout=30) as response:
    return json.load(response)


def test_tensorboard_hparams_shows_every_run_with_every_metric(compared):
  """A real TensorBoard on the comparison folder, asked what its HParams dashboard
  draws: every run in every view (no metric missing), the seed as a label, and only
  the hyperparameters that differ between the runs."""
  folder, _ = compared
  port = _free_port()
  server = subprocess.Popen(
      [sys.executable, '-m', 'tensorboard.main', f'--logdir={folder}', f'--port={port}',
       '--host=127.0.0.1', '--load_fast=false'],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  base = f'http://127.0.0.1:{port}/data/plugin/hparams'
  try:
    deadline = time.time() + 120
    while True:
      try:
        experiment = _post(f'{base}/experiment', {'experimentName': ''})
        if experiment.get('metricInfos'):
          break
      except OSError:
        pass
      assert time.time() < deadline, 'TensorBoard did not answer'
      time.sleep(1)
    groups = _post(f'{base}/session_groups', {
        'experimentName': '', 'allowedStatuses': ['STATUS_UNKNOWN', 'STATUS_SUCCESS',
                                                  'STATUS_FAILURE', 'STATUS_RUNNING'],
        'colParams': [], 'startIndex': 0, 'sliceSize': 100})['sessionGroups']
  finally:
    server.terminate()
    server.wait(timeout=30)
  metrics = {m['name']['tag'] for m in experiment['metricInfos']}
  assert {'accuracy/test', 'accuracy/validation', 'check/state_h_equals_outputs_last'} <= metrics
  assert 'check/c_vs_h_max_abs_diff' not in metrics  # the GRU has no c
  assert sorted(g['name'] for g in groups) == sorted(RUNS)
  for g in groups:  # the parallel-coordinates view draws a group only with every metric
    assert len(g['metricValues']) == len(metrics), g['name']
    assert g['hparams']['seed'] == g['name'][-1]  # '1', not 1.0000
  shown = {h['name'] for h in experiment['hparamInfos']}
  assert shown == {'cell', 'seed', 'trainable_parameters'}  # the rest are the same in all


def test_the_hparams_experiment_is_written_without_tensorflow(compared, tmp_path):
  """A comparison's own process writes it without importing TensorFlow (seconds): a
  `tensorflow` first on the path notes any import of it, and the same experiment comes
  out (TensorBoard reads it: above). TensorBoard's own EventFileWriter would import it."""
  folder, _ = compared
  copy = tmp_path / 'cmp'
  shutil.copytree(folder, copy, ignore=shutil.ignore_patterns('ckpt*', 'hparams_experiment'))
  fake = tmp_path / 'no_tf' / 'tensorflow'
  fake.mkdir(parents=True)
  imported = tmp_path / 'imported'
  (fake / '__init__.py').write_text(f'open({str(imported)!r}, "w").close()\n'
                                    'raise ImportError("TensorFlow was imported")\n')
  code = ('import sys; from study import hparams_experiment as h;'
          f' print(h.write(sys.argv[1], {RUNS!r}))')
  result = subprocess.run([sys.executable, '-c', code, str(copy)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=f'{fake.parent}:{ROOT}'))
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == str(copy / 'hparams_experiment')
  assert not imported.exists()
  from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
  from study import hparams_experiment  # pylint: disable=g-import-not-at-top
  def events(path):
    (name,) = os.listdir(path)
    assert name.startswith('events.out.tfevents.')
    records = hparams_experiment._records(os.path.join(path, name))  # pylint: disable=protected-access
    return [event_pb2.Event.FromString(r) for r in records]
  ours = events(copy / 'hparams_experiment')
  theirs = events(os.path.join(folder, 'hparams_experiment'))
  assert ours[0].file_version == 'brain.Event:2'
  from tensorboard.plugins.hparams import plugin_data_pb2  # pylint: disable=g-import-not-at-top
  def experiment(event):  # its columns and metrics (their order is the protobuf map's)
    (value,) = event.summary.value
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    return ({h.name: sorted(v.string_value for v in h.domain_discrete.values)
             for h in data.experiment.hparam_infos},
            sorted(m.name.tag for m in data.experiment.metric_infos))
  assert experiment(ours[-1]) == experiment(theirs[-1])  # the same as the CLI wrote
  assert experiment(ours[-1])[0]['seed'] == ['0', '1', '2']


def test_the_default_grid_is_every_cell_and_runner_with_one_seed():
  from mnist_rnn import config as config_lib  # pylint: disable=g-import-not-at-top
  from models import config as model_config  # pylint: disable=g-import-not-at-top
  from study import grid  # pylint: disable=g-import-not-at-top
  g = grid.Grid(config_lib.TrainConfig())
  assert g.points() == [(c, r, 0) for c in model_config.CELLS for r in model_config.RUNNERS]
  assert g.folder_suffix() == '' and len(g.points()) == 12
  five = grid.Grid(config_lib.TrainConfig(), cells=('lstm', 'gru'), runners=('static',),
                   seeds=5)
  assert five.folder_suffix() == '_lstm-gru_static_seeds5'
  assert five.points()[:3] == [('lstm', 'static', 0), ('gru', 'static', 0),
                               ('lstm', 'static', 1)]  # seed by seed: whole pairs first


CLAIMER = '''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import optuna
from study import storage
study = optuna.load_study(study_name='race', storage=storage.open_storage(sys.argv[2], 30))
ran = []
def objective(trial):
  if 'k' not in trial.user_attrs:  # the queue emptied as it asked: a new trial, run nothing
    raise optuna.TrialPruned()
  ran.append(trial.user_attrs['k'])
  time.sleep(0.005)
  return 0.0
def stop_when_empty(study, trial):
  if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
    study.stop()
study.optimize(objective, n_jobs=2, callbacks=[stop_when_empty])
print(json.dumps(ran))
'''


def test_no_trial_is_taken_twice_by_workers_started_together(tmp_path):
  """Two processes of two threads each claim 60 waiting trials from one SQLite file.
  (Without BEGIN IMMEDIATE, seen here: 62 runs of 60 trials.)"""
  from study import storage  # pylint: disable=g-import-not-at-top
  url = f'sqlite:///{tmp_path}/race.db'
  study = optuna.create_study(storage=storage.open_storage(url, 30), study_name='race')
  for k in range(60):
    study.enqueue_trial({}, user_attrs={'k': k})
  workers = [subprocess.Popen([sys.executable, '-c', CLAIMER, ROOT, url],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
  ran = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
  assert all(w.returncode == 0 for w in workers)
  assert sorted(ran[0] + ran[1]) == list(range(60))
  assert ran[0] and ran[1]  # both took a share


def _start(*args):
  env = dict(os.environ)
  env.pop('TF_USE_LEGACY_KERAS', None)
  return subprocess.Popen([sys.executable, os.path.join(ROOT, 'train_mnist_rnn.py'), *args],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _wait_for(predicate, seconds=120):
  deadline = time.monotonic() + seconds
  while not predicate():
    assert time.monotonic() < deadline, 'timed out'
    time.sleep(0.05)


def _running_pid(run_dir):
  """The pid in a run folder's .lock (written once its trainer holds the folder)."""
  try:
    return int(open(os.path.join(run_dir, '.lock')).read().split()[1])
  except (OSError, IndexError, ValueError):
    return None


def test_a_killed_run_fails_its_trial_and_the_next_invocation_retries_it(tmp_path):
  folder = str(tmp_path / 'cmp')
  args = [*TINY, '--compare_cells=gru', '--compare_runners=static', '--seeds=2',
          '--epochs=1', '--jobs=1', f'--workdir={folder}']
  worker = _start(*args)
  run0 = os.path.join(folder, 'gru_static_seed0')
  _wait_for(lambda: _running_pid(run0) is not None)
  os.kill(_running_pid(run0), signal.SIGKILL)
  out, err = worker.communicate(timeout=300)
  assert worker.returncode == 1
  lines = [l for l in err.splitlines() if l.startswith('train_mnist_rnn.py: error:')]
  assert lines == ['train_mnist_rnn.py: error: 1 of 2 runs failed (gru_static_seed0: killed'
                   ' by SIGKILL); rerun the same command to retry them (logs in'
                   f' {folder}/logs)'], err[-2000:]
  assert 'Traceback' not in err and '| gru | static | 1 |' in out  # the other run went on
  failed = load(folder).get_trials(states=(optuna.trial.TrialState.FAIL,))
  assert [(t.user_attrs['run'], t.user_attrs['error']) for t in failed] == [
      ('gru_static_seed0', 'killed by SIGKILL')]
  again = run_cli(*args)
  assert again.returncode == 0, again.stderr[-2000:]
  assert '1 failed before, enqueued again' in again.stderr
  done = load(folder).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
  assert sorted(t.user_attrs['run'] for t in done) == ['gru_static_seed0', 'gru_static_seed1']
  assert [r['epoch'] for r in metrics(folder, 'gru_static_seed0')] == [1]


def _lstm_study(tmp_path, *flags):
  """(folder, args) of a --compare of the static LSTM alone with `flags`."""
  folder = str(tmp_path / 'cmp')
  return folder, [*TINY, '--compare_cells=lstm', '--compare_runners=static', *flags,
                  f'--workdir={folder}']


def test_a_killed_worker_is_resumed_with_each_run_trained_once(tmp_path):
  folder, args = _lstm_study(tmp_path, '--seeds=3', '--epochs=2', '--jobs=1',
                             '--heartbeat_seconds=1')
  worker = _start(*args)
  run1 = os.path.join(folder, 'lstm_static_seed1')
  _wait_for(lambda: _running_pid(run1) is not None)  # seed 0 done, seed 1 training
  trainer = _running_pid(run1)
  worker.send_signal(signal.SIGKILL)
  worker.communicate(timeout=60)
  # The run does not go on as an orphan: it gets SIGTERM when its worker dies.
  _wait_for(lambda: not os.path.exists(f'/proc/{trainer}'), seconds=60)
  again = run_cli(*args)
  assert again.returncode == 0, again.stderr[-2000:]
  trials = load(folder).get_trials()
  done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
  assert sorted(t.user_attrs['run'] for t in done) == [f'lstm_static_seed{s}' for s in range(3)]
  # The killed worker's trial: failed by its stopped heartbeat, retried once.
  stale = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
  assert [t.user_attrs['run'] for t in stale] == ['lstm_static_seed1']
  for s in range(3):
    assert [r['epoch'] for r in metrics(folder, f'lstm_static_seed{s}')] == [1, 2]
  log0 = open(os.path.join(folder, 'logs', 'lstm_static_seed0.log')).read()
  assert log0.count('# trial ') == 1  # finished before the kill: not run again


@pytest.mark.parametrize('args, fragments, code', [
    (['--seeds=0'], ['--seeds=0: 0 is not a positive integer'], 2),
    (['--compare_cells=lstm,nope'], ['--compare_cells takes distinct names of lstm, gru'], 2),
    (['--seed=3'], ['give --seeds=K, not --seed'], 2),
    (['--report', '--nocompare'], ['--report makes the report of a --compare study'], 2),
], ids=['seeds-0', 'unknown-cell', 'seed-not-seeds', 'report-without-compare'])
def test_bad_comparison_flags_are_one_line(tmp_path, args, fragments, code):
  result = run_cli(*TINY, *args, f'--workdir={tmp_path}/cmp')
  assert_one_line_error(result, *fragments)
  assert result.returncode == code
  assert not os.path.exists(tmp_path / 'cmp')


def test_a_study_file_that_is_not_a_study_is_one_line(tmp_path):
  (tmp_path / 'study.db').write_text('these are not the tables you are looking for\n')
  result = run_cli(*TINY, '--compare_cells=lstm', f'--workdir={tmp_path}')
  assert_one_line_error(result, f'study storage sqlite:///{tmp_path}/study.db is not an'
                        ' Optuna study database')
  assert result.returncode == 1 and os.listdir(tmp_path) == ['study.db']


def test_ctrl_c_saves_every_run_in_progress_and_the_same_command_resumes(tmp_path):
  folder, args = _lstm_study(tmp_path, '--seeds=1', '--epochs=3', '--train_examples=2048',
                             '--batch_size=8')
  worker = _start(*args)
  run = os.path.join(folder, 'lstm_static_seed0')
  _wait_for(lambda: os.path.exists(os.path.join(run, 'metrics.jsonl')))  # epoch 1 done
  worker.send_signal(signal.SIGINT)
  _, err = worker.communicate(timeout=120)
  assert worker.returncode == 130, err[-2000:]
  lines = [l for l in err.splitlines() if l.startswith('train_mnist_rnn.py: error:')]
  assert lines == ['train_mnist_rnn.py: error: interrupted by SIGINT: the runs in progress'
                   ' saved their checkpoints; rerun the same command to resume them']
  again = run_cli(*args)
  assert again.returncode == 0, again.stderr[-2000:]
  log = open(os.path.join(folder, 'logs', 'lstm_static_seed0.log')).read()
  assert 'interrupted by SIGTERM' in log and f'resuming {run} from step' in log
  assert ('lstm_static_seed0 failed after' in err and 'this worker got SIGINT and passed'
          ' it on to the run as SIGTERM; the run saved its checkpoint' in err), err[-2000:]
  assert [r['epoch'] for r in metrics(folder, 'lstm_static_seed0')] == [1, 2, 3]
