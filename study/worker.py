"""One worker of a study: takes waiting trials one by one, `jobs` at a time, and runs
each as an ordinary training process until no trial is waiting.

A trial is one run: `train_mnist_rnn.py` with the run's flags and its own folder
under the comparison's, output to <folder>/logs/<run>.log. The trial's value is the
run's final test accuracy and its user attributes are the run's results
(study.run_results), so a report needs only the study. A run that fails or is killed
fails its trial with the reason; the others go on, and the next invocation runs it
again (it resumes from its folder's checkpoint).
"""

import contextlib
import ctypes
import dataclasses
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

from absl import logging
import optuna
from optuna.trial import TrialState

from mnist_rnn import config as config_lib
from mnist_rnn import errors
from mnist_rnn import metrics_log
from study import grid as grid_lib
from study import run_results
from study import storage as storage_lib

TRAINER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'train_mnist_rnn.py')
_ERROR_PREFIX = 'train_mnist_rnn.py: error: '


class RunFailed(Exception):
  """A run's process ended without finishing the run (its trial fails)."""


@dataclasses.dataclass(frozen=True)
class Options:
  folder: str                 # this worker's comparison folder: runs, logs, report
  jobs: int = 2               # runs at once, each its own process
  heartbeat_seconds: int = 30  # a silent worker's trials fail after 3 of these
  shown_url: str = ''          # the storage, password hidden, for messages


def _die_with_parent():  # pragma: no cover  (runs in the child, between fork and exec)
  """The run gets SIGTERM (it saves a checkpoint and stops) if this worker dies, even by
  SIGKILL, so no orphan goes on training a trial that will be given to another worker."""
  ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _reason(returncode: int, log_path: str) -> str:
  """Why a run failed: its one-line error, or the signal that ended it."""
  if returncode < 0:
    return f'killed by {signal.Signals(-returncode).name}'
  try:
    with open(log_path, encoding='utf-8', errors='replace') as f:
      lines = [l.strip() for l in f if l.startswith(_ERROR_PREFIX)]
  except OSError:
    lines = []
  text = lines[-1].removeprefix(_ERROR_PREFIX) if lines else 'see the log'
  return f'exit {returncode}: {text}'


class Worker:
  """Runs the waiting trials of one study; `stop()` (a signal) ends it cleanly."""

  def __init__(self, study, grid: grid_lib.Grid, options: Options):
    self.study, self.grid, self.options = study, grid, options
    self._children = set()
    self._lock = threading.Lock()
    self.stopping = None  # the signal's name once asked to stop
    self._stopped = threading.Event()

  def stop(self, signal_name: str) -> None:
    """Asks every running run to save and stop (SIGTERM), and takes no new trial."""
    self.stopping = signal_name
    self._stopped.set()
    with self._lock:
      for child in self._children:
        if child.poll() is None:
          child.send_signal(signal.SIGTERM)

  @contextlib.contextmanager
  def stopped_by_signals(self):
    """While inside, SIGINT and SIGTERM call `stop` (the runs save and end) instead of
    killing this process; the previous handlers come back after."""
    previous = {sig: signal.signal(sig, lambda s, f: self.stop(signal.Signals(s).name))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
      yield
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)

  def pause(self) -> None:
    """Waits a moment for other workers' runs (returns at once on `stop`)."""
    self._stopped.wait(min(2, self.options.heartbeat_seconds))

  def _waiting(self) -> bool:
    return bool(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

  def _reachable(self) -> bool:
    try:
      self._waiting()
      return True
    except Exception:  # pylint: disable=broad-except  (whatever the driver raises)
      return False

  def _running_elsewhere(self) -> bool:
    return bool(self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

  def _quiet_heartbeat_failures(self) -> None:
    """Optuna's heartbeat thread dies with a traceback when the database goes away; say
    it in one line instead (the run goes on, and the trial's end reports the loss)."""
    previous = threading.excepthook

    def hook(args):
      frames = traceback.extract_tb(args.exc_traceback)
      if any(f.name == '_record_heartbeat' for f in frames):
        logging.warning('the study\'s database %s cannot be reached (%s); the runs in'
                        ' progress go on in their folders', self.options.shown_url,
                        type(args.exc_value).__name__)
        return
      previous(args)
    threading.excepthook = hook

  def run(self, objective=None, more=None) -> None:
    """Takes trials for `objective` (the grid's runs: `self.objective`) while `more()`
    (default: a trial is waiting) says there are some to take, or until `stop`.

    Then, while other workers still run trials, it waits, checking their heartbeats:
    a trial whose worker died is failed and enqueued again by Optuna
    (fail_stale_trials with RetryHeartbeatStaleTrialCallback), and this worker runs it.
    """
    objective, more = objective or self.objective, more or self._waiting

    def after_trial(study, trial):
      del trial
      if self.stopping or not more():
        study.stop()

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # this module logs each trial
    self._quiet_heartbeat_failures()
    waited_for = None
    while not self.stopping:
      self._take_over_stale_trials()
      if more():
        try:
          self.study.optimize(objective, n_jobs=self.options.jobs,
                              catch=(RunFailed,), callbacks=[after_trial])
        except Exception as e:  # pylint: disable=broad-except  (the storage's, Optuna's)
          if not self._reachable():
            raise storage_lib.StudyError(
                f'the study\'s database {self.options.shown_url} went away; the runs in'
                ' progress finished (or saved a checkpoint) in their folders, and are'
                ' reported once it is back: rerun the same command then') from None
          raise storage_lib.StudyError(
              f'study {self.study.study_name!r} failed: {type(e).__name__}:'
              f' {str(e).splitlines()[0][:300] if str(e) else ""}; finished runs are kept'
              ' in their folders, rerun the same command to go on') from None
      elif self._running_elsewhere():
        waited_for = self._say_what_it_waits_for(waited_for)
        self.pause()
      else:
        return

  def _others(self) -> list:
    """(number, run, host, heartbeat age or None) of the trials running elsewhere."""
    ages = storage_lib.heartbeat_ages(self.study)
    return [(t.number, t.user_attrs.get('run', f'trial {t.number}'),
             t.user_attrs.get('host', 'an unknown host'), ages.get(t.number))
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]

  def _say_what_it_waits_for(self, said) -> tuple:
    """Logs, when the set of runs changes, which runs of other workers this one waits
    for (host, heartbeat age) and when it takes one over. Returns what it said."""
    others = self._others()
    now = tuple(sorted(number for number, *_ in others))
    if now != said:
      grace = 3 * self.options.heartbeat_seconds
      runs = '; '.join(
          f'{run} (trial {number} on {host}, heartbeat '
          + (f'{age:.0f} s ago)' if age is not None else 'not yet seen)')
          for number, run, host, age in sorted(others))
      logging.info('nothing left to start: waiting for %d run%s of other workers: %s. A'
                   ' run whose heartbeat is older than %d s (3 x --heartbeat_seconds) is'
                   ' taken over here, from its checkpoint', len(others),
                   '' if len(others) == 1 else 's', runs, grace)
    return now

  def _take_over_stale_trials(self) -> None:
    """Optuna's fail_stale_trials (failed, and queued again by the retry callback),
    saying which runs and why: their worker's heartbeat stopped."""
    stale = storage_lib.stale_trial_numbers(self.study)
    if not stale:  # the usual case, each pass of the loop: no more to ask or to say
      optuna.storages.fail_stale_trials(self.study)
      return
    ages = storage_lib.heartbeat_ages(self.study)
    grace = 3 * self.options.heartbeat_seconds
    before = {t.number: t for t in self.study.get_trials(deepcopy=False,
                                                         states=(TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(self.study)
    failed = {t.number for t in self.study.get_trials(deepcopy=False,
                                                      states=(TrialState.FAIL,))}
    for number in sorted(set(before) & failed & stale):
      attrs = before[number].user_attrs
      age = ages.get(number)
      logging.warning('trial %d: %s on %s has sent no heartbeat for %s (more than %d s):'
                      ' its worker is gone; the run is queued again and the next free'
                      ' worker resumes it from its checkpoint', number,
                      attrs.get('run', 'its run'), attrs.get('host', 'an unknown host'),
                      f'{age:.0f} s' if age is not None else 'too long', grace)

  def objective(self, trial) -> float:
    if self.stopping:
      raise optuna.TrialPruned()  # taken as the loop stopped: enqueued again next time
    if storage_lib.point_of(trial) is None:
      # The queue emptied between looking and taking (another worker took the last).
      trial.set_user_attr('note', 'no grid run was waiting; nothing was run')
      raise optuna.TrialPruned()
    cell = trial.suggest_categorical('cell', list(self.grid.cells))
    runner = trial.suggest_categorical('runner', list(self.grid.runners))
    seed = trial.suggest_int('seed', 0, self.grid.seeds - 1)
    point = (cell, runner, seed)
    done = storage_lib.completed(self.study).get(point)
    if done is not None:
      trial.set_user_attr('note', f'already done by trial {done.number}; nothing was run')
      raise optuna.TrialPruned()
    config = self.grid.run_config(self.options.folder, cell, runner, seed)
    result = self.train(trial, config)
    logging.info('trial %d: %s done: final test accuracy %.4f', trial.number,
                 os.path.basename(config.workdir), result['final_test_accuracy'])
    return result['final_test_accuracy']

  def _watch(self, child, trial, config, prune: bool) -> tuple:
    """Waits for `child`, reporting each new epoch to the trial as an intermediate value
    (what optuna-dashboard draws as the trial's curve): its validation accuracy with
    `prune`, and then the run is stopped (SIGTERM: it saves) when Optuna's pruner says
    so; else its test accuracy (a comparison's trial: nothing prunes on it).

    Returns:
      (the exit code or None when the run was pruned, the last epoch reported).
    """
    key = 'validation_accuracy' if prune else 'test_accuracy'
    path = os.path.join(config.workdir, 'metrics.jsonl')
    reported = 0
    while True:
      try:
        returncode = child.wait(timeout=0.5)
      except subprocess.TimeoutExpired:
        returncode = None
      everything = metrics_log.read(path)
      # A run that has all its epochs (it ended, or was finished before: a retried trial
      # whose result never reached the study) is kept whole: pruning it saves nothing.
      ended = returncode is not None or bool(everything and (
          everything[-1]['epoch'] >= config.epochs or everything[-1].get('stopped_early')))
      for record in (r for r in everything if r.get('epoch', 0) > reported):
        reported = record['epoch']
        trial.report(record[key], reported)
        if prune and not ended and trial.should_prune():
          child.send_signal(signal.SIGTERM)
          child.wait()
          return None, reported
      if returncode is not None:
        return returncode, reported

  def train(self, trial, config: config_lib.TrainConfig, prune: bool = False,
            keep_test: bool = True) -> dict:
    """Runs `config` as a trainer process for `trial`; its results become the trial's
    user attributes (without those of the test set unless `keep_test`: a search must
    not see them).

    Returns:
      run_results.summarize of the finished run.

    Raises:
      RunFailed: the process failed or was killed (the reason is the trial's 'error').
      optuna.TrialPruned: `prune` and the pruner stopped it.
    """
    name = os.path.basename(config.workdir)
    logs = os.path.join(self.options.folder, 'logs')
    os.makedirs(logs, exist_ok=True)
    log_path = os.path.join(logs, name + '.log')
    command = [sys.executable, TRAINER] + config_lib.flag_lines(config)
    if trial.user_attrs.get('error'):  # a retry starts with its failed trial's attributes
      trial.set_user_attr('retried_after', trial.user_attrs['error'])
      trial.set_user_attr('error', None)
    trial.set_user_attr('folder', os.path.abspath(config.workdir))
    trial.set_user_attr('host', socket.gethostname())
    trial.set_user_attr('command', shlex.join(['python', 'train_mnist_rnn.py',
                                               f'--flagfile={config.workdir}/flags.txt']))
    # What RetryHeartbeatStaleTrialCallback.retried_trial_number reads (experimental,
    # with a warning each call): the first failed trial this one retries.
    retried = self.study._storage.get_trial(  # pylint: disable=protected-access
        trial._trial_id).system_attrs.get('failed_trial')  # pylint: disable=protected-access
    taking_over = (f', taking over trial {retried}, whose worker stopped sending'
                   ' heartbeats; it resumes from the run\'s checkpoint'
                   if retried is not None else '')
    logging.info('trial %d: %s started (log %s)%s', trial.number, name, log_path,
                 taking_over)
    start = time.monotonic()
    with open(log_path, 'a', encoding='utf-8') as log:
      log.write(f'# trial {trial.number} of study {self.study.study_name}: '
                f'{shlex.join(command)}\n')
      log.flush()
      with self._lock:
        if self.stopping:
          raise optuna.TrialPruned()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_die_with_parent)
        self._children.add(child)
      try:
        returncode, reported = self._watch(child, trial, config, prune)
      finally:
        with self._lock:
          self._children.discard(child)
    seconds = time.monotonic() - start
    trial.set_user_attr('wall_seconds', seconds)
    if returncode is None:
      trial.set_user_attr('pruned_after_epoch', reported)
      logging.info('trial %d: %s pruned after epoch %d (%.0fs)', trial.number, name,
                   reported, seconds)
      raise optuna.TrialPruned()
    if returncode != 0:
      reason = _reason(returncode, log_path)
      if returncode == errors.EXIT_INTERRUPTED and self.stopping:
        # The run's own log says SIGTERM: the worker passes every stop on as SIGTERM.
        reason = (f'this worker got {self.stopping} and passed it on to the run as'
                  ' SIGTERM; the run saved its checkpoint and resumes on the next run')
      trial.set_user_attr('error', reason)
      logging.warning('trial %d: %s failed after %.0fs: %s', trial.number, name, seconds,
                      reason)
      raise RunFailed(f'{name}: {reason}')
    try:
      result = run_results.summarize(config.workdir, config.epochs,
                                     bool(config.early_stopping_patience))
    except (OSError, run_results.IncompleteRun) as e:
      trial.set_user_attr('error', str(e))
      raise RunFailed(str(e)) from None
    for key, value in result.items():
      if keep_test or 'test' not in key:
        trial.set_user_attr(key, value)
    logging.info('trial %d: %s finished in %.0fs', trial.number, name, seconds)
    return result
