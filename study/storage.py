"""Where a study lives and how an invocation joins it: the storage (SQLite in the
comparison's folder by default, or any SQLAlchemy URL Optuna accepts), the study
created once with its grid enqueued, and the grid points that still need a run.

Coordination is Optuna's: a trial is claimed by setting it from WAITING to RUNNING
in one transaction of the database (so no two workers run the same trial), a worker's
heartbeat marks its running trials alive, and a trial whose heartbeat stops is failed
and re-enqueued by RetryHeartbeatStaleTrialCallback. Nothing here locks anything itself.
"""

import os
import re
import time
from urllib.parse import urlsplit
import warnings

import optuna
from optuna.trial import TrialState
import sqlalchemy

from mnist_rnn import errors
from study import grid as grid_lib

STUDY_FILE = 'study.db'
DEFAULT_STUDY = 'compare'
_GRID_ATTR = 'grid'            # the grid's settings (study user attribute)
_ENQUEUED_ATTR = 'grid_enqueued'
# A run whose worker stopped beating is enqueued again at most this often.
MAX_RETRIES = 3


class StudyError(errors.ReportedError):
  """The study cannot be used; the message says why in one line."""


def default_url(folder: str) -> str:
  return 'sqlite:///' + os.path.abspath(os.path.join(folder, STUDY_FILE))


def shown_url(url: str) -> str:
  """`url` with its password replaced by ***."""
  parts = urlsplit(url)
  if parts.password is None:
    return url
  netloc = parts.netloc.replace(':' + parts.password + '@', ':***@', 1)
  return parts._replace(netloc=netloc).geturl()


# What the loser of two workers creating Optuna's tables at once is told (PostgreSQL,
# SQLite): the tables, or Alembic's version row, exist already.
_CREATION_RACE = re.compile(r'already exists|duplicate key|unique constraint', re.I)


def _first_line(error: BaseException) -> str:
  text = str(getattr(error, 'orig', None) or error).strip().splitlines()
  return re.sub(r'\s+', ' ', text[0]) if text else type(error).__name__


def open_storage(url: str, heartbeat_seconds: int) -> optuna.storages.RDBStorage:
  """Opens (and, for a new SQLite file, creates) the study database.

  Raises:
    StudyError: the database cannot be reached or is not an Optuna storage; the
      message names the URL with its password hidden.
  """
  # Optuna's own log lines ('A new study created ...') and its notes that heartbeats
  # are experimental: this package logs what a user needs.
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  warnings.filterwarnings('ignore', category=optuna.exceptions.ExperimentalWarning)
  engine_kwargs = {'pool_pre_ping': True}
  sqlite = url.startswith('sqlite')
  if sqlite:
    # Python's sqlite3 starts a transaction only at its first write, so two workers
    # can both read a trial as WAITING and both claim it. With the driver's own
    # transaction handling off and every transaction begun IMMEDIATE (SQLAlchemy's
    # recipe for serializable SQLite, below), a claim is one locked read-and-write;
    # another worker waits up to `timeout` seconds for the lock.
    engine_kwargs['connect_args'] = {'timeout': 60, 'isolation_level': None}
  for attempt in range(5):
    try:
      storage = optuna.storages.RDBStorage(
          url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_seconds,
          grace_period=3 * heartbeat_seconds,
          heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
              MAX_RETRIES))
      break
    except Exception as e:  # pylint: disable=broad-except  (SQLAlchemy, drivers, Alembic)
      # Workers started together on a new database race to create Optuna's tables;
      # the loser finds them made a moment later.
      if _CREATION_RACE.search(_first_line(e)) and attempt < 4:
        time.sleep(1 + attempt)
        continue
      what = ('is not an Optuna study database' if sqlite
              and os.path.exists(url.removeprefix('sqlite:///')) else 'cannot be opened')
      raise StudyError(f'study storage {shown_url(url)} {what}: {_first_line(e)}') from None
  if sqlite:
    sqlalchemy.event.listen(storage.engine, 'begin',
                            lambda connection: connection.exec_driver_sql('BEGIN IMMEDIATE'))
  return storage


POINT_ATTR = 'grid_point'  # [cell, runner, seed]: a user attribute of every grid trial


def point_of(trial) -> tuple:
  """The (cell, runner, seed) of a trial of the grid, or None for a trial that is not
  one (a worker that found the queue empty). Enqueued with the trial as a user
  attribute, which RetryHeartbeatStaleTrialCallback copies to the retry."""
  point = trial.user_attrs.get(POINT_ATTR)
  return None if point is None else (point[0], point[1], int(point[2]))


def enqueue(study, cell: str, runner: str, seed: int) -> None:
  study.enqueue_trial({'cell': cell, 'runner': runner, 'seed': seed},
                      user_attrs={'run': grid_lib.run_name(cell, runner, seed),
                                  POINT_ATTR: [cell, runner, seed]})


def join(storage, name: str, grid: grid_lib.Grid, wait_seconds: float = 60) -> tuple:
  """Creates the study `name` with the grid enqueued, or loads it and checks that it
  was made for this grid.

  Creating is the claim: the database's unique study name lets exactly one of several
  workers started at once create it (and enqueue the grid); the others load it and
  wait for the grid to be enqueued.

  Returns:
    (study, created).

  Raises:
    StudyError: the study holds another grid (each differing setting named).
  """
  settings = grid.settings()
  try:
    study = optuna.create_study(storage=storage, study_name=name, direction='maximize')
  except optuna.exceptions.DuplicatedStudyError:
    study = optuna.load_study(study_name=name, storage=storage)
  else:
    study.set_metric_names(['final_test_accuracy'])  # the value's name in the dashboard
    study.set_user_attr(_GRID_ATTR, settings)
    for cell, runner, seed in grid.points():
      enqueue(study, cell, runner, seed)
    study.set_user_attr(_ENQUEUED_ATTR, True)
    return study, True
  # Another worker created it a moment ago: wait for its grid. One that died while
  # enqueueing leaves points that requeue_missing enqueues.
  deadline = time.monotonic() + wait_seconds
  while _ENQUEUED_ATTR not in study.user_attrs and time.monotonic() < deadline:
    time.sleep(0.5)
  if _GRID_ATTR not in study.user_attrs:
    raise StudyError(f'study {name!r} has no grid: it was not made by --compare')
  saved = study.user_attrs[_GRID_ATTR]
  differ = grid_lib.differences(saved, settings)
  if differ:
    raise StudyError(f'study {name!r} was made for another grid ({"; ".join(differ)});'
                     ' give another --workdir (or --study) for this one')
  return study, False


def progress(study) -> dict:
  """{point: the state that counts for it}: COMPLETE if any trial of it completed,
  else RUNNING or WAITING if one is, else FAIL (or absent: never enqueued)."""
  rank = {TrialState.COMPLETE: 3, TrialState.RUNNING: 2, TrialState.WAITING: 1,
          TrialState.FAIL: 0, TrialState.PRUNED: 0}
  best = {}
  for trial in study.get_trials(deepcopy=False):
    point = point_of(trial)
    if point is not None and rank[trial.state] >= rank.get(best.get(point), -1):
      best[point] = trial.state
  return best


def requeue_missing(study, grid: grid_lib.Grid) -> list:
  """Enqueues again each grid point with no completed, running or waiting trial (a
  run that failed before, or one its creator did not get to enqueue).

  Returns:
    The points enqueued.
  """
  states = progress(study)
  missing = [p for p in grid.points()
             if states.get(p) not in (TrialState.COMPLETE, TrialState.RUNNING,
                                      TrialState.WAITING)]
  for cell, runner, seed in missing:
    enqueue(study, cell, runner, seed)
  return missing


def completed(study) -> dict:
  """{point: the FrozenTrial that completed it} (the first, if a point completed twice)."""
  done = {}
  for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
    point = point_of(trial)
    if point is not None:
      done.setdefault(point, trial)
  return done


def _rdb(study):
  """The study's RDBStorage (a loaded study's storage is a cache in front of it)."""
  return getattr(study._storage, '_backend', study._storage)  # pylint: disable=protected-access


def heartbeat_ages(study) -> dict:
  """trial number -> seconds since the last heartbeat of each running trial of `study`
  that has one, by the database's clock (what Optuna's stale-trial check compares).

  Optuna keeps heartbeats in its own table and has no public reader; this reads it the
  way `RDBStorage._get_stale_trial_ids` does. {} if the storage keeps none."""
  storage = _rdb(study)
  try:
    from optuna.storages._rdb import models  # pylint: disable=g-import-not-at-top
    with storage.scoped_session() as session:
      now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
      rows = (session.query(models.TrialModel.number, models.TrialHeartbeatModel.heartbeat)
              .join(models.TrialHeartbeatModel,
                    models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
              .filter(models.TrialModel.study_id == study._study_id)  # pylint: disable=protected-access
              .filter(models.TrialModel.state == optuna.trial.TrialState.RUNNING).all())
    return {number: max(0.0, (now - beat.replace(tzinfo=None)).total_seconds())
            for number, beat in rows}
  except Exception:  # pylint: disable=broad-except  (an older schema, a lost database)
    return {}


def stale_trial_numbers(study) -> set:
  """The numbers of the running trials whose heartbeat is older than the grace period:
  those Optuna's fail_stale_trials fails next (the same private query it makes)."""
  storage = _rdb(study)
  try:
    ids = set(storage._get_stale_trial_ids(study._study_id))  # pylint: disable=protected-access
  except Exception:  # pylint: disable=broad-except  (no heartbeats kept, a lost database)
    return set()
  return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
          if t._trial_id in ids}  # pylint: disable=protected-access
