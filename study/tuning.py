"""`--compare --tune`: tune each cell on validation accuracy, then compare the tuned cells.

For each cell of the grid, a study `<study>-tune-<cell>` searches the space of
configs/tune_space.json (or --tune_space) with Optuna's TPE sampler: `--tune_trials`
runs at a small budget (--tune_epochs, --tune_train_examples), each an ordinary
trainer process in <folder>/tune/, its value the final-epoch validation accuracy.
Optuna's median pruner may stop a run whose validation accuracy after an epoch is
below the median of the runs before it at that epoch. Then each cell's best
configuration is run with every seed at the full budget as the comparison study
`<study>`, whose report is the only place test accuracy appears (as in Greff et al.:
tune each variant, then compare). Like the comparison, every invocation on any machine
does a share, and the same command again does only what is missing.
"""

import dataclasses
import json
import os

from absl import logging
import optuna
from optuna.trial import TrialState

from mnist_rnn import config as config_lib
from mnist_rnn import errors
from mnist_rnn import workdir as workdir_lib
from study import comparison
from study import grid as grid_lib
from study import storage as storage_lib
from study import worker as worker_lib

_KINDS = ('float', 'int', 'categorical')
_NOTE = 'note'  # a user attribute of trials that ran nothing (they do not count)


PRUNERS = ('successive_halving', 'hyperband', 'median', 'none')


@dataclasses.dataclass(frozen=True)
class Options:
  trials: int = 20             # per cell
  epochs: int = 25             # of a search run: the comparison's own (the full budget)
  train_examples: int = 0      # of a search run; 0 = all
  space: str = ''              # a JSON file (configs/tune_space.json)
  pruner: str = 'successive_halving'
  reduction_factor: int = 3    # successive_halving and hyperband: keep the top 1/r
  given: tuple = ()            # flags the user gave: fixed, left out of the search
  sampler_seed: int = 0        # TPE's

  @property
  def prune(self) -> bool:
    return self.pruner != 'none'


def make_pruner(tune: Options):
  """Optuna's pruner for `tune.pruner`; its steps are epochs (the worker reports each
  epoch's validation accuracy)."""
  if tune.pruner == 'successive_halving':
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=1, reduction_factor=tune.reduction_factor, min_early_stopping_rate=0)
  if tune.pruner == 'hyperband':
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=tune.epochs,
                                          reduction_factor=tune.reduction_factor)
  if tune.pruner == 'median':
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
  return optuna.pruners.NopPruner()


def rungs(tune: Options) -> list:
  """The epochs at which successive halving judges a run: 1, r, r^2, ... < epochs."""
  if tune.pruner != 'successive_halving':
    return []
  out, epoch = [], 1
  while epoch < tune.epochs:
    out.append(epoch)
    epoch *= tune.reduction_factor
  return out


def without_given(space: dict, given: tuple) -> tuple:
  """(the space without the flags the user gave, the names left out)."""
  left_out = tuple(name for name in space if name in given)
  return {k: v for k, v in space.items() if k not in left_out}, left_out


def load_space(path: str) -> dict:
  """The search space of `path`: {flag: spec}, each spec checked.

  Raises:
    storage_lib.StudyError: the file is missing, not JSON, or names an unknown flag or
      kind (the message names the file and the entry).
  """
  try:
    with open(path, encoding='utf-8') as f:
      raw = json.load(f)
  except (OSError, ValueError) as e:
    raise storage_lib.StudyError(f'--tune_space={path}: {e}') from None
  flags = set(config_lib.flatten(config_lib.TrainConfig()))
  space = {}
  for name, spec in raw.items():
    if name.startswith('_'):
      continue  # a comment
    if name not in flags or name in ('cell', 'runner', 'seed', 'workdir', 'epochs'):
      raise storage_lib.StudyError(f'--tune_space={path}: {name!r} is not a flag it can tune')
    if not isinstance(spec, dict) or spec.get('type') not in _KINDS or (
        spec['type'] == 'categorical' and not spec.get('choices')) or (
            spec['type'] != 'categorical' and not spec.get('low', 0) < spec.get('high', 0)):
      raise storage_lib.StudyError(f'--tune_space={path}: {name!r} needs a type of'
                                   f' {", ".join(_KINDS)} with low < high or choices')
    space[name] = spec
  return space


def suggest(trial, space: dict, cell: str) -> dict:
  """One configuration from `space` for `cell` (entries with `cells` apply to those)."""
  values = {}
  for name, spec in space.items():
    if 'cells' in spec and cell not in spec['cells']:
      continue
    if spec['type'] == 'float':
      values[name] = trial.suggest_float(name, spec['low'], spec['high'],
                                         log=spec.get('log', False))
    elif spec['type'] == 'int':
      values[name] = trial.suggest_int(name, spec['low'], spec['high'],
                                       log=spec.get('log', False))
    else:
      values[name] = trial.suggest_categorical(name, spec['choices'])
  return values


def _counted(study, but=None) -> int:
  """Trials that count towards --tune_trials: finished or running, not notes."""
  return sum(1 for t in study.get_trials(deepcopy=False)
             if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
             and _NOTE not in t.user_attrs and t.number != but)


class _Search:
  """One cell's search: the objective of its trials, and whether more are to be taken."""

  def __init__(self, study, grid, cell, options, tune, space, worker):
    self.study, self.grid, self.cell = study, grid, cell
    self.options, self.tune, self.space, self.worker = options, tune, space, worker

  def objective(self, trial) -> float:
    if self.worker.stopping:
      raise optuna.TrialPruned()
    if _counted(self.study, but=trial.number) >= self.tune.trials:
      trial.set_user_attr(_NOTE, 'the search had its trials already; nothing was run')
      raise optuna.TrialPruned()
    params = suggest(trial, self.space, self.cell)
    config = grid_lib.with_flags(
        self.grid.base, params, cell=self.cell, runner=self.grid.runners[0],
        time_major=False, seed=0, towers=self.grid.towers, epochs=self.tune.epochs,
        train_examples=self.tune.train_examples,
        workdir=os.path.join(self.options.folder, 'tune',
                             f'{self.cell}_trial{trial.number:03d}'))
    result = self.worker.train(trial, config, prune=self.tune.prune, keep_test=False)
    # The validation accuracy of the run's model: its last epoch's, or with early
    # stopping its best epoch's.
    value = (result['best_validation_accuracy'] if config.early_stopping_patience
             else result['validation_accuracy_curve'][-1])
    logging.info('tune %s trial %d: validation accuracy %.4f with %s', self.cell,
                 trial.number, value, params)
    return value

  def more(self) -> bool:
    """Trials to take: some waiting (retries), or fewer than --tune_trials counted."""
    return bool(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                or _counted(self.study) < self.tune.trials)


def _join(storage, name, settings, pruner, sampler_seed=0):
  try:
    study = optuna.create_study(storage=storage, study_name=name, direction='maximize',
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed),
                                pruner=pruner)
    study.set_metric_names(['final_validation_accuracy'])
    study.set_user_attr('tune', settings)
    return study
  except optuna.exceptions.DuplicatedStudyError:
    study = optuna.load_study(study_name=name, storage=storage, pruner=pruner,
                              sampler=optuna.samplers.TPESampler(seed=sampler_seed))
  saved = study.user_attrs.get('tune', {})
  differ = [f'{k}: {saved.get(k)} there, {v} here' for k, v in settings.items()
            if saved.get(k) != v]
  if differ:
    raise storage_lib.StudyError(f'study {name!r} was made for another search'
                                 f' ({"; ".join(differ)}); give another --workdir (or'
                                 ' --study) for this one')
  return study


def run(grid: grid_lib.Grid, options: comparison.Options, tune: Options,
        flag_lines=None) -> comparison.Outcome:
  """Tunes each cell, then runs and reports the comparison of the tuned cells."""
  space, left_out = without_given(load_space(tune.space), tune.given)
  base = config_lib.flatten(grid.base)
  for name in left_out:
    logging.info('tune: --%s=%s was given, so it is left out of the search: every run'
                 ' uses it', name, base[name])
  if not space:
    raise storage_lib.StudyError(f'--tune: every flag of --tune_space={tune.space} was'
                                 ' given on the command line; nothing is left to search')
  url = options.storage or storage_lib.default_url(options.folder)
  shown = storage_lib.shown_url(url)
  pruner = make_pruner(tune)
  settings = {**grid.settings(), 'space': space, 'tune_trials': tune.trials,
              'tune_epochs': tune.epochs, 'tune_train_examples': tune.train_examples,
              'pruner': tune.pruner, 'reduction_factor': tune.reduction_factor,
              'sampler_seed': tune.sampler_seed}
  with workdir_lib.created(options.folder):
    storage = storage_lib.open_storage(url, options.heartbeat_seconds)
    searches = {cell: _join(storage, f'{options.study}-tune-{cell}', settings, pruner,
                            tune.sampler_seed)
                for cell in grid.cells}
  best = {}
  for cell, study in searches.items():
    logging.info('tune %s in %s: %d of %d trials done or running', cell, shown,
                 _counted(study), tune.trials)
    if not options.report_only:
      worker = worker_lib.Worker(study, grid, worker_lib.Options(
          folder=options.folder, jobs=options.jobs,
          heartbeat_seconds=options.heartbeat_seconds, shown_url=shown))
      search = _Search(study, grid, cell, options, tune, space, worker)
      with worker.stopped_by_signals():
        worker.run(search.objective, search.more)
      if worker.stopping:
        return comparison.Outcome(error=f'interrupted by {worker.stopping} while tuning'
                                  f' {cell}; rerun the same command to go on',
                                  exit_code=errors.EXIT_INTERRUPTED)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
      return comparison.Outcome(error=f'tuning {cell}: no trial finished; see'
                                f' {options.folder}/logs', exit_code=errors.EXIT_ERROR)
    best[cell] = study.best_trial
  tuned = dataclasses.replace(grid, overrides=tuple(
      (cell, tuple(sorted(best[cell].params.items()))) for cell in grid.cells))
  text = tuning_markdown(searches, best, tune, {k: base[k] for k in left_out})
  with open(os.path.join(options.folder, 'tuning.md'), 'w', encoding='utf-8') as f:
    f.write(text)
  _importance_picture(searches, os.path.join(options.folder, 'tuning.png'))
  outcome = comparison.run(tuned, options, flag_lines)
  return dataclasses.replace(outcome, markdown=text + '\n' + outcome.markdown)


# Fewer complete trials than this and fANOVA's ranking is not printed: its random
# forest over a handful of points ranks noise (tuning.md of 6 trials and the dashboard
# disagreed on which parameter came first; docs/comparisons.md).
MIN_IMPORTANCE_TRIALS = 20
EVALUATOR = 'fANOVA (Optuna\'s FanovaImportanceEvaluator, seed 0, complete trials only)'


def importances(study, minimum: int = MIN_IMPORTANCE_TRIALS) -> dict:
  """fANOVA importances of the parameters over the completed trials ({} with fewer
  than `minimum`, or when all trials share one value)."""
  complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
  if len(complete) < max(2, minimum):
    return {}
  try:
    return optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
  except (ValueError, RuntimeError):
    return {}


def epochs_trained(trials) -> int:
  """Epochs the search runs trained in all: each run's last reported epoch (a pruned
  run stops at its rung; a run resumed in a retry counts the epochs it holds)."""
  total = 0
  for t in trials:
    if _NOTE in t.user_attrs or t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
      continue
    total += max(t.intermediate_values, default=0) or len(
        t.user_attrs.get('validation_accuracy_curve', ()))
  return total


def _pruning_words(tune: Options) -> str:
  if tune.pruner == 'successive_halving':
    at = ', '.join(map(str, rungs(tune))) or 'none'
    return (f', successive halving (r = {tune.reduction_factor}, rungs at epoch'
            f' {at})')
  if tune.pruner == 'hyperband':
    return f', Hyperband (r = {tune.reduction_factor}, epochs 1-{tune.epochs})'
  return ', median pruning' if tune.pruner == 'median' else ''


def tuning_markdown(searches: dict, best: dict, tune: Options, fixed: dict = None) -> str:
  """The search in words: each cell's best configuration, its trials and the epochs
  they trained, its importances (named, and only with enough trials to mean anything)."""
  epochs = f'{tune.epochs} epoch' + ('s' if tune.epochs != 1 else '')
  examples = f'{tune.train_examples:,}' if tune.train_examples else 'all'
  lines = [f'Tuned on validation accuracy ({tune.trials} trials per cell, {epochs}'
           f' on {examples} training examples, TPE{_pruning_words(tune)}):', '']
  if fixed:
    lines += ['Given on the command line, so not searched: '
              + ', '.join(f'--{k}={v}' for k, v in sorted(fixed.items())) + '.', '']
  lines += ['| cell | best validation acc | best configuration | trials: complete, pruned,'
            ' failed | epochs trained | time of the runs | importance |',
            '|---|---|---|---|---|---|---|']
  for cell, study in searches.items():
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s and _NOTE not in t.user_attrs for t in trials)
             for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    seconds = sum(t.user_attrs.get('wall_seconds', 0) for t in trials)
    params = ', '.join(f'{k}={_short(v)}' for k, v in sorted(best[cell].params.items()))
    weights = ', '.join(f'{k} {v:.2f}' for k, v in importances(study).items()) or (
        f'not ranked: {count[TrialState.COMPLETE]} complete trials, fewer than'
        f' {MIN_IMPORTANCE_TRIALS}')
    lines.append(f'| {cell} | {100 * best[cell].value:.2f}% | {params} |'
                 f' {count[TrialState.COMPLETE]}, {count[TrialState.PRUNED]},'
                 f' {count[TrialState.FAIL]} | {epochs_trained(trials):,} |'
                 f' {seconds / 60:.1f} min | {weights} |')
  lines += ['', f'Importance: {EVALUATOR}; optuna-dashboard shows PED-ANOVA instead, its'
            ' default, which can rank the same trials differently (docs/comparisons.md).']
  return '\n'.join(lines) + '\n'


def _short(value) -> str:
  return f'{value:.3g}' if isinstance(value, float) else str(value)


def _importance_picture(searches: dict, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(searches), figsize=(5 * len(searches), 3.2), squeeze=False)
  for ax, (cell, study) in zip(axes[0], searches.items()):
    values = importances(study)
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color='C0')
    ax.set_xlim(0, 1)
    ax.set_title(f'{cell}: fANOVA importance of each parameter')
    if not values:
      ax.text(0.5, 0.5, f'not ranked: fewer than {MIN_IMPORTANCE_TRIALS} complete trials',
              ha='center', transform=ax.transAxes)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
