"""The benchmark's measurements run and report what its table prints (no speeds asserted:
speeds are recorded in the README, never tested)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARK = os.path.join(ROOT, 'benchmarks', 'throughput.py')


def measure(**spec):
  spec = {'num_units': 16, 'batch_size': 32, 'warmup': 1, 'steps': 2, 'repeats': 2,
          'runner': 'static', 'time_major': False, **spec}
  result = subprocess.run([sys.executable, BENCHMARK, '--one=' + json.dumps(spec)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('spec', [
    {'impl': 'trainer', 'cell': 'lstm', 'towers': 2},
    {'impl': 'trainer', 'cell': 'fused_gru'},
    {'impl': 'trainer', 'cell': 'rnn', 'runner': 'dynamic', 'time_major': True,
     'any_batch': True},
    {'impl': 'tf.keras', 'cell': 'gru'},
    {'impl': 'matmuls only', 'cell': 'gru'},
], ids=['trainer-lstm-static', 'trainer-fused_gru-static', 'trainer-rnn-time-major', 'tf.keras-gru', 'matmuls-only-gru'])
def test_one_measurement_reports_rates_build_and_memory(spec):
  r = measure(**spec)
  assert len(r['rates']) == 2 and all(rate > 0 for rate in r['rates'])
  assert min(r['rates']) <= r['median'] <= max(r['rates'])
  assert r['spread'] == pytest.approx((max(r['rates']) - min(r['rates'])) / 2)
  assert r['build_seconds'] > 0
  assert r['peak_rss_mb'] > 100  # TensorFlow alone is several hundred MB


def test_matmuls_alone_holds_and_runs_every_matmul_of_the_trainer_graph():
  # In a fresh process: the benchmark defines absl flags that the trainer's would clash with.
  script = r'''
import json, sys
sys.path.insert(0, 'benchmarks')
import throughput
import tensorflow as tf
from mnist_rnn import config as config_lib
from mnist_rnn import train
from models import classifier
tf1 = tf.compat.v1
source = tf.Graph()
with source.as_default():
  classifier.build(config_lib.ModelConfig(cell='lstm', runner='static', num_units=8,
                                          towers=2), batch_size=6)
def matmuls(graph):
  return sorted((str(op.inputs[0].shape), str(op.inputs[1].shape), op.get_attr('transpose_a'),
                 op.get_attr('transpose_b')) for op in graph.get_operations() if op.type == 'MatMul')
graph, step_op, init = throughput.matmuls_alone(source)
def run_and_count(config):
  session = tf1.Session(graph=graph, config=config)
  session.run(init)
  metadata = tf1.RunMetadata()
  session.run(step_op, options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE),
              run_metadata=metadata)
  return len({node.node_name for device in metadata.step_stats.dev_stats
              for node in device.node_stats
              if node.timeline_label.split('(')[0].endswith('MatMul')})
print(json.dumps({
    'same': matmuls(source) == matmuls(graph), 'count': len(matmuls(source)),
    'other_types': sorted({op.type for op in graph.get_operations()} - {'MatMul'}),
    'run': run_and_count(throughput.matmuls_alone_config(1, 0)),
    'run_default_grappler': run_and_count(train.session_config(1, 0))}))
'''
  result = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  r = json.loads(result.stdout.strip().splitlines()[-1])
  assert r['same']
  # 2 towers x 28 steps x (forward, input gradient, weight gradient) + the head's 3.
  assert r['count'] == 2 * 28 * 3 + 3
  assert not set(r['other_types']) - {'VarHandleOp', 'ReadVariableOp', 'AssignVariableOp',
                                      'Const', 'NoOp', 'VarIsInitializedOp'}, r['other_types']
  assert r['run'] == r['count']
  # Why the config matters: with grappler's defaults the MatMuls would never run.
  assert r['run_default_grappler'] == 0


def test_paired_rounds_print_each_subjects_rates_and_the_median_ratios():
  # One round of two subjects (the same code runs every round and subject): the bare
  # train op, and the trainer's own epochs against the bare train op of the same graph.
  result = subprocess.run(
      [sys.executable, BENCHMARK, '--cells=', '--sweep=', '--pairs=1', '--num_units=16',
       '--batch_size=32', '--warmup=1', '--steps=2',
       '--paired=trainer lstm static,trainer epochs lstm static'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  table = [l for l in result.stdout.splitlines() if l.startswith('| ')]
  subjects = [l for l in table if not l.startswith(('| subject', '| ratio'))]
  rates, ratios = subjects[:2], subjects[2:]
  assert [r.split(' | ')[0] for r in rates] == [
      '| trainer lstm static', '| trainer epochs lstm static']
  assert [r.split(' | ')[0] for r in ratios] == [
      '| trainer epochs lstm static / its bare train op (same process)']
  for r in rates + ratios:  # measured: no 'error' or 'n/a'; one round and the median
    cells = [c.strip() for c in r.strip('|').split('|')]
    assert len(cells) == 3 and 'error' not in r and 'n/a' not in r, r
  for r in rates:
    assert float(r.split('|')[-2].replace(',', '')) > 0
  ratio = ratios[0].split('|')[-2].strip().strip('*')
  assert ratio.endswith('x') and float(ratio[:-1]) > 0


def test_matmul_forms_times_every_form_and_writes_its_table(tmp_path):
  out = tmp_path / 'forms'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'benchmarks', 'matmul_forms.py'), '--batch=4',
       '--units=8', '--width=32', '--products=3', '--runs=1', '--rounds=2',
       f'--out={out}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  table = (tmp_path / 'forms.md').read_text()
  assert table == result.stdout
  assert table.startswith('Made by `python benchmarks/matmul_forms.py --batch=4')
  rows = [line for line in table.splitlines() if line.startswith('| ') and '(2) |' in line]
  assert [row.split(' | ')[0] for row in rows] == [
      '| forward: h @ kernel_h', "| dh, tf.matmul's: dy @ kernel_h, transpose_b",
      "| dh, the fused cells': dy @ kernel_h^T (transposed beforehand)",
      "| dkernel_h, tf.matmul's: h @ dy, transpose_a",
      '| baseline: the sums that collect the products, no product']
  for row in rows:
    median, spread = row.split(' | ')[1:3]
    low, high = spread.split(' ')[0].split('–')
    assert 0 < float(low) <= float(median) <= float(high)
