"""How far hyperparameter importances move: fANOVA and PED-ANOVA over two (or more)
searches of one space, e.g. two `--tune` searches of one cell with different
`--tune_seed`, as a Markdown table (no TensorFlow).

  python -m study.importance_spread \
      --search sqlite:///runs/a/study.db compare-tune-lstm \
      --search sqlite:///runs/b/study.db compare-tune-lstm

fANOVA (the evaluator of `tuning.md`) fits a random forest to the complete trials'
values; its own randomness is shown by refitting it with `--evaluator_seeds` seeds on the
same trials. PED-ANOVA (optuna-dashboard's default) compares where the best 10% of the
trials lie against all of them. What moves between the searches beyond what moves
between the evaluator's seeds is the trials' own noise: how much 20 trials say.
"""

import argparse
import os
import statistics
import sys

import optuna
from optuna.trial import TrialState

from study import storage as storage_lib

def fanova(study, seeds: int) -> dict:
  """{parameter: [importance under evaluator seed 0, 1, ..., seeds-1]}."""
  per_seed = [optuna.importance.get_param_importances(
      study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=s))
              for s in range(seeds)]
  return {name: [imp[name] for imp in per_seed] for name in per_seed[0]}


def ped_anova(study) -> dict:
  return optuna.importance.get_param_importances(
      study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())


def _ranks(means: dict) -> dict:
  order = sorted(means, key=means.get, reverse=True)
  return {name: order.index(name) + 1 for name in means}


def spread_table(studies: list, labels: list, seeds: int = 5) -> str:
  """The table: per parameter, each search's fANOVA importance (mean over the
  evaluator's seeds, their min-max) and rank, and PED-ANOVA's; then in words the
  largest move between the searches against the largest between evaluator seeds."""
  fans = [fanova(s, seeds) for s in studies]
  peds = [ped_anova(s) for s in studies]
  names = sorted(set().union(*fans), key=lambda n: -statistics.fmean(fans[0].get(n, [0])))
  means = [{n: statistics.fmean(f.get(n, [0.0])) for n in names} for f in fans]
  ranks = [_ranks(m) for m in means]
  ped_ranks = [_ranks({n: p.get(n, 0.0) for n in names}) for p in peds]
  counts = [len(s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            for s in studies]
  head = ['parameter'] + [f'fANOVA, {lab} ({c} trials): mean (seeds min-max), rank'
                          for lab, c in zip(labels, counts)]
  head += [f'PED-ANOVA, {lab}: value, rank' for lab in labels]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for n in names:
    cells = [n]
    for f, m, r in zip(fans, means, ranks):
      values = f.get(n, [0.0])
      cells.append(f'{m[n]:.2f} ({min(values):.2f}-{max(values):.2f}), {r[n]}')
    cells += [f'{p.get(n, 0.0):.2f}, {r[n]}' for p, r in zip(peds, ped_ranks)]
    lines.append('| ' + ' | '.join(cells) + ' |')
  between = max(max(m[n] for m in means) - min(m[n] for m in means) for n in names)
  within = max(max(f[n]) - min(f[n]) for f in fans for n in f)
  tops = [max(m, key=m.get) for m in means]
  ped_tops = [max(p, key=p.get) for p in peds]
  lines += ['', f'Largest move of one parameter\'s fANOVA importance between the searches:'
            f' {between:.2f}; between {seeds} evaluator seeds on the same trials: {within:.2f}.'
            f' First by fANOVA: {", ".join(tops)}; by PED-ANOVA: {", ".join(ped_tops)}.']
  return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--search', nargs=2, action='append', required=True,
                      metavar=('STORAGE', 'STUDY'), help='a search: its storage URL and'
                      ' study name (twice or more)')
  parser.add_argument('--evaluator_seeds', type=int, default=5,
                      help='fANOVA refitted with seeds 0..N-1 on each search')
  args = parser.parse_args(argv)
  if len(args.search) < 2 or args.evaluator_seeds < 1:
    parser.error('give --search twice or more, and --evaluator_seeds >= 1')
  studies = []
  for storage, name in args.search:
    try:
      if storage.startswith('sqlite:///') and not os.path.exists(
          storage.removeprefix('sqlite:///')):
        raise storage_lib.StudyError(f'no such file: {storage.removeprefix("sqlite:///")}')
      studies.append(optuna.load_study(
          study_name=name, storage=storage_lib.open_storage(storage, heartbeat_seconds=30)))
    except storage_lib.StudyError as e:
      sys.stderr.write(f'importance_spread: error: {e}\n')
      return 1
    except KeyError:  # Optuna's word for a study the storage does not hold
      sys.stderr.write(f'importance_spread: error: no study {name!r} in'
                       f' {storage_lib.shown_url(storage)}\n')
      return 1
  for (storage, name), study in zip(args.search, studies):
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
      sys.stderr.write(f'importance_spread: error: {name} in {storage} has'
                       f' {len(complete)} complete trials; importances need 2 or more\n')
      return 1
  labels = [f'search {i + 1}' for i in range(len(studies))]
  print(spread_table(studies, labels, args.evaluator_seeds), end='')
  return 0


if __name__ == '__main__':
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  sys.exit(main())
