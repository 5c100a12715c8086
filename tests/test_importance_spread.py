"""study.importance_spread on real Optuna studies of a known objective (no training):
the parameter that drives the value ranks first under both evaluators, in both searches,
and bad input is one line."""

import optuna
import pytest

from study import importance_spread


def _objective(trial):
  # The value is driven by `lr` alone; `noise` moves it by at most 0.001.
  lr = trial.suggest_float('lr', 1e-4, 1e-2, log=True)
  return -(100 * lr - 0.5) ** 2 + 1e-3 * trial.suggest_float('noise', 0.0, 1.0)


@pytest.fixture(scope='module')
def two_searches(tmp_path_factory):
  url = f'sqlite:///{tmp_path_factory.mktemp("spread") / "searches.db"}'
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  for seed in (0, 1):
    study = optuna.create_study(storage=url, study_name=f'search{seed}', direction='maximize',
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(_objective, n_trials=20)
  return url


def test_the_driving_parameter_ranks_first_in_both_searches(two_searches):
  studies = [optuna.load_study(study_name=f'search{s}', storage=two_searches)
             for s in (0, 1)]
  table = importance_spread.spread_table(studies, ['A', 'B'], seeds=3)
  rows = {line.split(' | ')[0].strip('| '): line for line in table.splitlines()
          if line.startswith('| lr') or line.startswith('| noise')}
  assert set(rows) == {'lr', 'noise'}
  cells = [c.strip() for c in rows['lr'].strip('|').split('|')]
  # fANOVA A, fANOVA B, PED-ANOVA A, PED-ANOVA B: each ranks lr first.
  assert [c.rsplit(', ', 1)[1] for c in cells[1:]] == ['1', '1', '1', '1']
  fanova_a = float(cells[1].split(' ')[0])
  assert fanova_a > 0.5, table
  assert 'fANOVA, A (20 trials)' in table
  assert 'First by fANOVA: lr, lr; by PED-ANOVA: lr, lr.' in table
  # The evaluator's seeds give a spread, read off the same trials.
  spread = importance_spread.fanova(studies[0], seeds=3)
  assert len(spread['lr']) == 3 and all(0 <= v <= 1 for v in spread['lr'])


def _one_line(capsys, fragment):
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith('importance_spread: error:'), err
  assert fragment in err[0], err[0]


def test_the_command_prints_the_table_and_bad_input_is_one_line(two_searches, tmp_path,
                                                                capsys):
  assert importance_spread.main(['--search', two_searches, 'search0', '--search',
                                 two_searches, 'search1', '--evaluator_seeds=2']) == 0
  out = capsys.readouterr().out
  assert out.startswith('| parameter | fANOVA, search 1 (20 trials)')
  assert 'Largest move of one parameter' in out
  assert importance_spread.main(['--search', two_searches, 'search0', '--search',
                                 two_searches, 'nope']) == 1
  _one_line(capsys, "no study 'nope'")
  nofile = tmp_path / 'none.db'
  assert importance_spread.main(['--search', f'sqlite:///{nofile}', 'search0', '--search',
                                 two_searches, 'search1']) == 1
  _one_line(capsys, 'no such file')
  assert not nofile.exists()
  with pytest.raises(SystemExit) as one_search:  # argparse: exit 2 and its usage line
    importance_spread.main(['--search', two_searches, 'search0'])
  assert one_search.value.code == 2
