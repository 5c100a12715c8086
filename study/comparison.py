"""`--compare`: join (or create) the study, train what is missing, report.

The entry point calls `run` with the grid and where the study lives; this module
prints nothing (the report's markdown is returned for the entry point to print on
stdout) and logs progress with absl.
"""

import dataclasses
import os
from typing import Optional

from absl import logging
from optuna.trial import TrialState

from mnist_rnn import errors
from mnist_rnn import workdir as workdir_lib
from study import grid as grid_lib
from study import hparams_experiment
from study import report as report_lib
from study import storage as storage_lib
from study import worker as worker_lib
from study.grid import Grid  # noqa: F401  (re-exported for the entry point)


@dataclasses.dataclass(frozen=True)
class Options:
  folder: str                  # this worker's comparison folder
  storage: str = ''            # '' = sqlite in `folder`
  study: str = storage_lib.DEFAULT_STUDY
  jobs: int = 2
  heartbeat_seconds: int = 30
  report_only: bool = False


@dataclasses.dataclass(frozen=True)
class Outcome:
  markdown: str = ''           # the report, for stdout ('' if no run is done)
  error: str = ''              # one line, when the command should fail
  exit_code: int = 0
  paths: tuple = ()


def _hide_storage_password(lines: list) -> list:
  return [('--storage=' + storage_lib.shown_url(l.removeprefix('--storage=')))
          if l.startswith('--storage=') else l for l in lines]


def run(grid: Grid, options: Options, flag_lines: Optional[list] = None) -> Outcome:
  """Runs this worker's share of the study, then makes the report.

  Raises:
    storage_lib.StudyError: the storage cannot be opened or holds another grid.
  """
  url = options.storage or storage_lib.default_url(options.folder)
  shown = storage_lib.shown_url(url)
  if options.report_only and not options.storage and not os.path.exists(
      os.path.join(options.folder, storage_lib.STUDY_FILE)):
    raise storage_lib.StudyError(f'--workdir={options.folder}: no study to report on'
                                 f' (no {storage_lib.STUDY_FILE})')
  # A study that cannot be opened leaves no folder behind.
  with workdir_lib.created(options.folder):
    storage = storage_lib.open_storage(url, options.heartbeat_seconds)
    study, created = storage_lib.join(storage, options.study, grid)
  if flag_lines and not options.report_only:
    workdir_lib.write_flags(options.folder, _hide_storage_password(flag_lines))
  requeued = [] if created or options.report_only else storage_lib.requeue_missing(
      study, grid)
  states = storage_lib.progress(study)
  total = len(grid.points())
  done = sum(states.get(p) == TrialState.COMPLETE for p in grid.points())
  running = sum(states.get(p) == TrialState.RUNNING for p in grid.points())
  if options.report_only:
    logging.info('study %r in %s: %d of %d runs done; report only', options.study, shown,
                 done, total)
  else:
    logging.info('study %r in %s (%s): %d runs in the grid, %d done, %d running'
                 ' elsewhere, %d to train here, %d at a time (%d tower%s each)%s',
                 options.study, shown, 'new' if created else 'joined', total, done,
                 running, total - done - running, options.jobs, grid.towers,
                 's' if grid.towers > 1 else '',
                 f'; {len(requeued)} failed before, enqueued again' if requeued else '')
    worker = worker_lib.Worker(study, grid, worker_lib.Options(
        folder=options.folder, jobs=options.jobs,
        heartbeat_seconds=options.heartbeat_seconds, shown_url=shown))
    with worker.stopped_by_signals():
      worker.run()
    if worker.stopping:
      return _finish(grid, study, options, error=(
          f'interrupted by {worker.stopping}: the runs in progress saved their'
          ' checkpoints; rerun the same command to resume them'),
          exit_code=errors.EXIT_INTERRUPTED)
  return _finish(grid, study, options)


def _finish(grid, study, options, error='', exit_code=0) -> Outcome:
  report = report_lib.build(grid, storage_lib.completed(study))
  paths = ()
  if report.combinations:
    paths = tuple(report_lib.write(report, options.folder))
    logging.info('report: %s', ', '.join(paths))
    _save_note(study, report)
    here = [grid_lib.run_name(*p) for p in grid.points()
            if os.path.isdir(os.path.join(options.folder, grid_lib.run_name(*p)))]
    hparams_experiment.write(options.folder, here)
  if not error:
    states = storage_lib.progress(study)
    failed = [p for p in grid.points()
              if states.get(p) in (TrialState.FAIL, TrialState.PRUNED, None)]
    running = [p for p in grid.points() if states.get(p) == TrialState.RUNNING]
    if failed and not options.report_only:
      reasons = _last_errors(study)
      shown = '; '.join(f'{grid_lib.run_name(*p)}: {reasons.get(p, "not run")}'
                       for p in failed[:3])
      error = (f'{len(failed)} of {len(grid.points())} runs failed ({shown}'
               f'{"; ..." if len(failed) > 3 else ""}); rerun the same command to retry'
               f' them (logs in {os.path.join(options.folder, "logs")})')
      exit_code = errors.EXIT_ERROR
    elif running:
      logging.info('%d runs are still running in other workers; the report covers the'
                   ' %d done (--report remakes it later)', len(running),
                   len(report.runs))
  return Outcome(report_lib.markdown(report) if report.combinations else '', error,
                 exit_code, paths)


NOTE_HEADING = '## The comparison, over seeds (remade with each report)'


def _save_note(study, report) -> None:
  """The report as the study's note in optuna-dashboard (its Note panel, Markdown): the
  dashboard's own plots show one seed per point and its Best Trial a lucky seed; the
  note says how sure the comparison is. Rewritten each time the report is made."""
  from optuna_dashboard import save_note  # pylint: disable=g-import-not-at-top
  body = '\n\n'.join([
      NOTE_HEADING, report_lib.markdown(report).strip(),
      'Each point of the Contour, Rank and Slice plots is one run (one seed), and "Best'
      ' Trial" is the luckiest seed: read the means, intervals and paired tests above.'
      ' Each trial\'s intermediate values are its test accuracy per epoch (nothing is'
      ' pruned on them).'])
  try:
    save_note(study, body)
  except Exception as e:  # pylint: disable=broad-except  (the storage's, a lost database)
    logging.warning('the report could not be saved as the study\'s note (%s); it is in'
                    ' comparison.md', type(e).__name__)


def _last_errors(study) -> dict:
  out = {}
  for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
    point = storage_lib.point_of(trial)
    if point is not None and 'error' in trial.user_attrs:
      out[point] = trial.user_attrs['error']
  return out
