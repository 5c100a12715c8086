"""benchmarks/sequence_length.py: its subjects run and its tables say what was measured
(no speed is asserted: speeds are recorded in docs/, never tested)."""

import json
import os
import subprocess
import sys

from mnist_rnn import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARK = os.path.join(ROOT, 'benchmarks', 'sequence_length.py')


def table_rows(text: str, first: str) -> list:
  """The cells of each markdown row whose first cell is `first`."""
  return [[c.strip() for c in line.strip().strip('|').split('|')]
          for line in text.splitlines() if line.startswith(f'| {first} |')]


def test_rounds_give_a_median_a_range_and_the_goal_ratios_round_by_round(tmp_path):
  # The tables from rows of two rounds (made up here: this is the arithmetic, the
  # measuring is the next test's); one round's torch row failed.
  script = r'''
import json, sys
sys.path.insert(0, 'benchmarks')
import sequence_length as sl
def row(impl, cell, runner, rate, round_, pixels=1, **extra):
  r = dict(impl=impl, cell=cell, runner=runner, pixels_per_step=pixels, batch_size=128,
           num_units=128, steps=5, round=round_, build_seconds=1.0, first_step_seconds=2.0,
           examples_per_sec=rate, peak_rss_mb=1000.0, **extra)
  if impl != 'torch':
    r.update(ops=100, graphdef_mb=0.1)
  return r
rows = [row('trainer', 'fused_lstm', 'static', 200.0, 0),
        row('trainer', 'fused_lstm', 'dynamic', 150.0, 0),
        row('torch', 'lstm', '', 100.0, 0),
        row('trainer', 'fused_lstm', 'static', 300.0, 1),
        row('trainer', 'fused_lstm', 'dynamic', 150.0, 1),
        dict(impl='torch', cell='lstm', runner='', pixels_per_step=1, round=1,
             error='over the 9 s limit')]
two_lengths = rows + [row('trainer', 'fused_lstm', 'static', 900.0, 0, pixels=28)]
print(json.dumps({'table': sl.markdown(rows), 'ratios': sl.ratio_table(rows),
                  'plot_one': sl.plot(rows, sys.argv[1] + '/one.png'),
                  'plot_two': sl.plot(two_lengths, sys.argv[1] + '/two.png')}))
'''
  result = subprocess.run([sys.executable, '-c', script, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  lines = table_rows(out['table'], '784')
  assert [l[2] for l in lines] == ['fused_lstm static', 'fused_lstm dynamic', 'torch nn.LSTM']
  static, dynamic, torch = lines
  assert static[7] == '250' and static[8] == '200–300 (2)'
  assert dynamic[7] == '150' and dynamic[8] == '150–150 (2)'
  assert torch[7] == '100' and torch[8].startswith('100 (1); 1 failed: over the 9 s limit')
  assert torch[4] == 'n/a' and torch[5] == 'n/a'  # no graph to count for PyTorch
  ratios = {l[1]: l[2:] for l in table_rows(out['ratios'], '784')}
  assert ratios['fused_lstm dynamic / fused_lstm static'] == ['0.75x, 0.50x', '**0.62x**']
  # Only the round where both sides were measured counts.
  assert ratios['fused_lstm static / torch nn.LSTM'] == ['2.00x', '**2.00x**']
  # A plot needs two lengths at least.
  assert not out['plot_one'] and not (tmp_path / 'one.png').exists()
  assert out['plot_two'] and (tmp_path / 'two.png').stat().st_size > 0


def test_a_run_measures_the_trainer_graphs_and_their_matmuls_and_writes_the_tables(tmp_path):
  out = tmp_path / 'sl'
  result = subprocess.run(
      [sys.executable, BENCHMARK, '--pixels=28', '--cells=fused_lstm',
       '--runners=static,dynamic_time_major', '--matmuls', '--notorch', '--num_units=8',
       '--batch_size=16', '--steps=1', '--limit=200', '--towers=1', f'--out={out}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  text = (tmp_path / 'sl.md').read_text()
  assert text.startswith('Made by `python benchmarks/sequence_length.py --pixels=28')
  # The header names the kind of CPU, as each epoch's record does.
  described = machine.describe(onednn_opts=None)
  assert f"cores ({described['cpu']}" in text.split('\n')[0]
  if described['vector_instructions']:
    assert described['vector_instructions'] in text.split('\n')[0]
  lines = table_rows(text.split('The ratios')[0], '28')
  assert [l[2] for l in lines] == ['fused_lstm static', 'fused_lstm dynamic time-major',
                                   'matmuls only (fused_lstm static)']
  for line in lines:
    assert float(line[7].replace(',', '')) > 0, line  # a rate, not an error
  # The dynamic graph is small; the static one holds every step.
  ops = {l[2]: int(l[4].replace(',', '')) for l in lines}
  assert ops['fused_lstm dynamic time-major'] < ops['fused_lstm static']
  assert 'fused_lstm dynamic time-major / fused_lstm static' in text
  assert 'PyTorch: not measured' in text
  rows = json.loads((tmp_path / 'sl.json').read_text())['rows']
  assert [(r['impl'], r['runner'], r['round']) for r in rows] == [
      ('trainer', 'static', 0), ('trainer', 'dynamic_time_major', 0),
      ('matmuls', 'static', 0)]
  assert rows[0]['time_steps'] == 28
  # --towers=1 (the 784-step presets' graph): said in the header, kept in every row, and
  # the static graph is smaller than the trainer's default two towers, whose second
  # tower adds a forward and a backward op per step at least.
  assert "the trainer's graph (1 tower, Adam)" in text
  assert [r['towers'] for r in rows] == [1, 1, 1]
  two = subprocess.run([sys.executable, BENCHMARK, '--one=' + json.dumps(
      {**{k: rows[0][k] for k in ('cell', 'runner', 'pixels_per_step', 'batch_size',
                                  'num_units', 'steps')}, 'towers': 2})],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert two.returncode == 0, two.stderr[-2000:]
  two_ops = json.loads(two.stdout.strip().splitlines()[-1])['ops']
  assert two_ops - ops['fused_lstm static'] >= 2 * 28, (two_ops, ops)
  assert not (tmp_path / 'sl.png').exists()  # one length: a plot would show one point


def test_a_torch_row_measures_the_same_sequence(tmp_path):
  if subprocess.run([sys.executable, '-c', 'import torch'], capture_output=True).returncode:
    # PyTorch is optional (pip install torch==2.13.0); CI does not install it.
    import pytest  # pylint: disable=g-import-not-at-top
    pytest.skip('torch is not installed')
  spec = dict(impl='torch', cell='gru', runner='', pixels_per_step=4, batch_size=8,
              num_units=8, steps=1)
  result = subprocess.run([sys.executable, BENCHMARK, '--one=' + json.dumps(spec)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  r = json.loads(result.stdout.strip().splitlines()[-1])
  assert r['time_steps'] == 196 and r['examples_per_sec'] > 0 and r['torch_threads'] >= 1
  # Denormals flushed to zero, as TensorFlow flushes them; kept when asked.
  assert r['torch_flush_denormal'] is True and r['torch_denormals_flushed'] is True
  kept = subprocess.run(
      [sys.executable, BENCHMARK, '--one=' + json.dumps({**spec, 'torch_flush_denormal': False})],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert kept.returncode == 0, kept.stderr[-2000:]
  r = json.loads(kept.stdout.strip().splitlines()[-1])
  assert r['torch_flush_denormal'] is False and r['torch_denormals_flushed'] is False


def test_a_bad_cell_or_runner_is_refused_at_parse_time():
  for flag in ('--cells=lstm,bogus', '--runners=static,sideways', '--pixels=5', '--towers=0'):
    result = subprocess.run([sys.executable, BENCHMARK, flag], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert flag.split('=')[0].lstrip('-') in result.stderr, result.stderr
