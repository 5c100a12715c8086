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
    {'impl': 'trainer', 'cell': 'rnn', 'runner': 'dynamic', 'time_major': True,
     'any_batch': True},
    {'impl': 'tf.keras', 'cell': 'gru'},
], ids=['trainer-lstm-static', 'trainer-rnn-time-major', 'tf.keras-gru'])
def test_one_measurement_reports_rates_build_and_memory(spec):
  r = measure(**spec)
  assert len(r['rates']) == 2 and all(rate > 0 for rate in r['rates'])
  assert min(r['rates']) <= r['median'] <= max(r['rates'])
  assert r['spread'] == pytest.approx((max(r['rates']) - min(r['rates'])) / 2)
  assert r['build_seconds'] > 0
  assert r['peak_rss_mb'] > 100  # TensorFlow alone is several hundred MB
