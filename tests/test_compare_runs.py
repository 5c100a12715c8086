"""study.compare_runs: two recipes' run folders compared seed by seed, on figures read
from the real files a run writes, checked against scipy directly; and its refusals."""

import json
import os

import numpy as np
import pytest
from scipy import stats

from study import compare_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(root, name, seed, finals, extra_flags=(), early_stopping=0, epochs=3):
  """A run folder as the trainer leaves it: flags.txt and one record per epoch, the last
  with `finals` = (validation, test)."""
  folder = root / name
  folder.mkdir()
  lines = ['# Resolved flags of this run', '--cell=fused_lstm', '--pixels_per_step=1',
           f'--seed={seed}', f'--workdir=/somewhere/{name}', '--intra_op_threads=1',
           f'--early_stopping_patience={early_stopping}', *extra_flags]
  (folder / 'flags.txt').write_text('\n'.join(lines) + '\n')
  with open(folder / 'metrics.jsonl', 'w') as f:
    for epoch in range(1, epochs + 1):
      validation, test = finals if epoch == epochs else (0.5, 0.5)
      f.write(json.dumps({'epoch': epoch, 'validation_accuracy': validation,
                          'test_accuracy': test, 'best_validation_epoch': 2,
                          'best_validation_accuracy': 0.97,
                          'test_accuracy_at_best_validation': 0.96}) + '\n')
  return str(folder)


def test_each_recipe_and_the_paired_difference_are_scipys(tmp_path, capsys):
  a_val, a_test = [0.980, 0.975, 0.983], [0.979, 0.970, 0.981]
  b_val, b_test = [0.986, 0.984, 0.985], [0.987, 0.986, 0.983]
  a = [_run(tmp_path, f'a{s}', s, (a_val[s], a_test[s]), ['--shift_pixels=1'])
       for s in range(3)]
  b = [_run(tmp_path, f'b{s}', s, (b_val[s], b_test[s]),
            ['--shift_pixels=2', '--rotate_degrees=10.0']) for s in range(3)]
  assert compare_runs.main([f'--a={",".join(a)}', f'--b={",".join(b)}',
                            '--a_label=plain', '--b_label=turned']) == 0
  out = capsys.readouterr().out
  # What differs between the recipes, a flag added since counted at its old value;
  # seed, workdir and threads are not the recipe.
  assert 'differ in: --rotate_degrees: 0.0 \u2192 10.0; --shift_pixels: 1 \u2192 2.' in out
  assert '| turned | b1 | 1 | 3 | 3 | 98.40% | 98.60% |' in out
  for name, x, y in (('validation', a_val, b_val), ('test', a_test, b_test)):
    row = next(l for l in out.splitlines() if l.startswith(f'| final {name} accuracy'))
    low, high = stats.t.interval(0.95, df=2, loc=np.mean(x), scale=stats.sem(x))
    assert f'{100 * np.mean(x):.2f}% [{100 * low:.2f}, {100 * high:.2f}] (n = 3)' in row
    paired = stats.ttest_rel(y, x)
    interval = paired.confidence_interval(0.95)
    mean = 100 * (np.mean(y) - np.mean(x))
    assert (f'+{mean:.2f} points [{100 * interval.low:+.2f}, {100 * interval.high:+.2f}],'
            f' p = {paired.pvalue:.2g} (n = 3)').replace('-', '\u2212') in row


def test_an_early_stopped_run_counts_as_its_best_validation_epochs_model(tmp_path):
  run = compare_runs.read_run(_run(tmp_path, 'es', 0, (0.95, 0.94), early_stopping=5))
  assert (run.epochs, run.model_epoch, run.validation, run.test) == (3, 2, 0.97, 0.96)
  run = compare_runs.read_run(_run(tmp_path, 'plain', 0, (0.95, 0.94)))
  assert (run.epochs, run.model_epoch, run.validation, run.test) == (3, 3, 0.95, 0.94)


def test_one_seed_a_recipe_is_reported_without_a_test(tmp_path, capsys):
  a = [_run(tmp_path, f'a{s}', s, (0.98, 0.97)) for s in range(2)]
  b = _run(tmp_path, 'b0', 0, (0.99, 0.98), ['--rotate_degrees=10.0'])
  assert compare_runs.main([f'--a={",".join(a)}', f'--b={b}']) == 0
  out = capsys.readouterr().out
  assert '99.00% (one seed)' in out
  assert 'no test: the recipes share fewer than 2 seeds' in out


@pytest.mark.parametrize('case, message', [
    ('missing', 'no flags.txt: give run folders written by train_mnist_rnn.py'),
    ('same seed', 'A: seed 0 is in more than one folder'),
    ('two recipes', '--shift_pixels=2 but'),
    ('no validation', 'the run has no validation split'),
    ('empty', 'B: no run folder given'),
])
def test_what_cannot_be_compared_is_one_line_and_exit_1(tmp_path, capsys, case, message):
  a = [_run(tmp_path, 'a0', 0, (0.98, 0.97)), _run(tmp_path, 'a1', 1, (0.98, 0.97))]
  b = _run(tmp_path, 'b0', 0, (0.99, 0.98))
  if case == 'missing':
    a.append(str(tmp_path / 'nowhere'))
  elif case == 'same seed':
    a.append(_run(tmp_path, 'a0_again', 0, (0.98, 0.97)))
  elif case == 'two recipes':
    a.append(_run(tmp_path, 'a2', 2, (0.98, 0.97), ['--shift_pixels=2']))
  elif case == 'no validation':
    (tmp_path / 'a1' / 'metrics.jsonl').write_text(json.dumps({'epoch': 1,
                                                               'test_accuracy': 0.9}) + '\n')
  elif case == 'empty':
    b = ''
  assert compare_runs.main([f'--a={",".join(a)}', f'--b={b}']) == 1
  err = capsys.readouterr().err
  assert err.startswith('compare_runs: error: ') and message in err
  assert err.count('\n') == 1


def test_the_permuted_presets_three_seeds_give_the_interval_results_md_prints(capsys):
  runs = ','.join(os.path.join(REPO, 'docs', 'runs', name) for name in
                  ('permuted_mnist', 'permuted_mnist_seed1', 'permuted_mnist_seed2'))
  assert compare_runs.main([f'--a={runs}', f'--b={runs}']) == 0
  out = capsys.readouterr().out
  assert '| final test accuracy | 92.02% [91.56, 92.49] (n = 3) |' in out
  with open(os.path.join(REPO, 'docs', 'results.md'), encoding='utf-8') as f:
    assert 'mean 92.02%, SD 0.19 points, 95% CI [91.56, 92.49]' in ' '.join(f.read().split())
