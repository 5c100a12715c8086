"""--compare on a real PostgreSQL server with workers in separate processes, as on
separate machines: each run done once, a killed worker's run taken over, the report
from the database alone, an unreachable database."""

import os
import re
import signal
import socket

import optuna
import pytest

from tests import postgres
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_study import TINY, _running_pid, _start, _wait_for, metrics

GRID = ['--compare_cells=lstm,gru', '--compare_runners=static', '--seeds=2', '--epochs=1',
        '--jobs=1']
RUNS = sorted(f'{c}_static_seed{s}' for c in ('lstm', 'gru') for s in range(2))


@pytest.fixture(scope='module')
def database():
  with postgres.server() as url:
    yield url


def trials(url, name, state=optuna.trial.TrialState.COMPLETE):
  return optuna.load_study(study_name=name, storage=url).get_trials(states=(state,))


def test_two_workers_share_the_grid_and_the_database_alone_makes_the_report(database,
                                                                            tmp_path):
  args = [*TINY, *GRID, f'--storage={database}', '--study=two']
  # Two "machines": each its own folder; started at the same moment.
  workers = [_start(*args, f'--workdir={tmp_path}/machine{k}') for k in (1, 2)]
  outputs = [w.communicate(timeout=300) for w in workers]
  for w, (_, err) in zip(workers, outputs):
    assert w.returncode == 0, err[-3000:]
  done = trials(database, 'two')
  assert sorted(t.user_attrs['run'] for t in done) == RUNS  # each run once
  assert not trials(database, 'two', optuna.trial.TrialState.FAIL)
  hosts = {t.user_attrs['folder'].split('/')[-2] for t in done}
  assert hosts == {'machine1', 'machine2'}  # both took a share
  for t in done:  # the study holds what each run's own folder says
    assert t.value == metrics(os.path.dirname(t.user_attrs['folder']),
                              t.user_attrs['run'])[-1]['test_accuracy']
  # A third machine with neither folder: the report from the database.
  report = run_cli(*TINY, *GRID, f'--storage={database}', '--study=two', '--report',
                   f'--workdir={tmp_path}/laptop')
  assert report.returncode == 0, report.stderr[-2000:]
  assert '| lstm | static | 2 |' in report.stdout and '| gru | static | 2 |' in report.stdout
  assert 'GRU − LSTM (static):' in report.stdout
  assert sorted(os.listdir(tmp_path / 'laptop')) == ['comparison.csv', 'comparison.md',
                                                     'comparison.png']


def test_a_worker_killed_mid_run_is_taken_over_by_the_other(database, tmp_path):
  shared = f'{tmp_path}/shared'  # a file system both "machines" reach
  args = [*TINY, *GRID[:2], '--seeds=1', '--epochs=2', '--jobs=1', '--heartbeat_seconds=1',
          f'--storage={database}', '--study=kill', f'--workdir={shared}']
  first = _start(*args)
  _wait_for(lambda: _running_pid(f'{shared}/lstm_static_seed0') is not None)
  second = _start(*args)  # takes gru; then waits for the first's lstm run
  first.send_signal(signal.SIGKILL)
  first.communicate(timeout=60)
  out, err = second.communicate(timeout=300)
  assert second.returncode == 0, err[-3000:]
  done = trials(database, 'kill')
  assert sorted(t.user_attrs['run'] for t in done) == ['gru_static_seed0', 'lstm_static_seed0']
  stale = trials(database, 'kill', optuna.trial.TrialState.FAIL)
  assert [t.user_attrs['run'] for t in stale] == ['lstm_static_seed0']  # its heartbeat
  for run in ('lstm_static_seed0', 'gru_static_seed0'):
    assert [r['epoch'] for r in metrics(shared, run)] == [1, 2]  # every epoch once
  assert '| lstm | static | 1 |' in out
  # What the second worker waited for, and why it took the run over, in its log.
  assert re.search(r'trial \d+: lstm_static_seed0 on \S+ has sent no heartbeat for \d+ s'
                   r' \(more than 3 s\): its worker is gone', err), err[-3000:]
  assert re.search(r'lstm_static_seed0 started \(log [^)]*\), taking over trial \d+, whose'
                   r' worker stopped sending heartbeats', err), err[-3000:]


def test_an_unreachable_database_is_one_line_with_the_password_hidden(tmp_path):
  with socket.socket() as s:  # a port nothing listens on
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  url = f'postgresql://mnist:secret@127.0.0.1:{port}/studies'
  result = run_cli(*TINY, *GRID, f'--storage={url}', f'--workdir={tmp_path}/cmp')
  assert_one_line_error(result, f'study storage postgresql://mnist:***@127.0.0.1:{port}'
                        '/studies cannot be opened')
  assert 'secret' not in result.stderr and result.returncode == 1
  assert not os.path.exists(tmp_path / 'cmp')


def test_a_database_that_goes_away_loses_no_result(tmp_path):
  with postgres.own_server() as pg:
    folder = f'{tmp_path}/cmp'
    args = [*TINY, '--compare_cells=lstm', '--compare_runners=static', '--seeds=1',
            '--epochs=3', '--train_examples=2048', '--jobs=1', '--heartbeat_seconds=1',
            f'--storage={pg.url}', f'--workdir={folder}']
    worker = _start(*args)
    _wait_for(lambda: _running_pid(f'{folder}/lstm_static_seed0') is not None)
    pg.stop()
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 1 and 'Traceback' not in err, err[-3000:]
    lines = [l for l in err.splitlines() if l.startswith('train_mnist_rnn.py: error:')]
    assert lines == [f'train_mnist_rnn.py: error: the study\'s database {pg.url} went away;'
                     ' the runs in progress finished (or saved a checkpoint) in their'
                     ' folders, and are reported once it is back: rerun the same command'
                     ' then'], err[-2000:]
    finished = metrics(folder, 'lstm_static_seed0')  # the run went on to its end
    assert [r['epoch'] for r in finished] == [1, 2, 3]
    pg.start()
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    done = trials(pg.url, 'compare')
    assert [t.value for t in done] == [finished[-1]['test_accuracy']]
    assert 'already holds 3 of 3 epochs' in open(f'{folder}/logs/lstm_static_seed0.log').read()


@pytest.mark.filterwarnings('ignore:Heartbeat of storage is supposed to be used')
def test_a_waiting_worker_names_the_runs_it_waits_for(tmp_path, caplog):
  """A real SQLite study with one trial running elsewhere (its heartbeat recorded)."""
  from study import grid as grid_lib  # pylint: disable=g-import-not-at-top
  from study import storage as storage_lib  # pylint: disable=g-import-not-at-top
  from study import worker as worker_lib  # pylint: disable=g-import-not-at-top
  storage = storage_lib.open_storage(f'sqlite:///{tmp_path}/study.db', 1)
  study = optuna.create_study(storage=storage, study_name='wait')
  other = study.ask()
  other.set_user_attr('run', 'gru_static_seed1')
  other.set_user_attr('host', 'machine2')
  storage.record_heartbeat(other._trial_id)  # pylint: disable=protected-access
  worker = worker_lib.Worker(study, grid_lib.Grid(base=None), worker_lib.Options(
      folder=str(tmp_path), heartbeat_seconds=30))
  with caplog.at_level('INFO'):
    said = worker._say_what_it_waits_for(None)  # pylint: disable=protected-access
    assert worker._say_what_it_waits_for(said) == said  # said once, not every pause
  (line,) = [r.getMessage() for r in caplog.records if 'waiting for' in r.getMessage()]
  assert re.fullmatch(r'nothing left to start: waiting for 1 run of other workers:'
                      r' gru_static_seed1 \(trial 0 on machine2, heartbeat \d s ago\)\. A run'
                      r' whose heartbeat is older than 90 s \(3 x --heartbeat_seconds\) is'
                      r' taken over here, from its checkpoint', line), line
