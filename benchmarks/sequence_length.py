"""Static or dynamic as the sequence grows: 28 to 784 steps (--pixels_per_step=28..1).

For each pixels-per-step N, cell and runner, one process of its own builds the
trainer's graph (models/classifier.py, as train.py builds it: fixed batch, two
towers, Adam) and measures: graph build seconds, its size (ops, GraphDef bytes), the
first training step's seconds (TensorFlow optimises the graph then), steady training
examples/sec over the next steps, and the process's peak RSS. A measurement that
passes --limit seconds is killed and reported as such instead of hanging.

  python benchmarks/sequence_length.py                       # writes docs/sequence_length.md
  python benchmarks/sequence_length.py --pixels=28,7 --cells=gru --limit=60

The table goes to docs/sequence_length.md, the measured rows to
docs/sequence_length.json and, when matplotlib is installed (an optional dependency of
this script only: pip install matplotlib), a plot to docs/sequence_length.png
(`--replot` redraws it from the .json without measuring).
"""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mnist_rnn  # noqa: E402,F401  (legacy Keras before TensorFlow)
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

_PIXELS = flags.DEFINE_list('pixels', ['28', '14', '7', '4', '2', '1'], 'Pixels per step.')
_CELLS = flags.DEFINE_list('cells', ['lstm', 'gru'], 'Cells.')
_RUNNERS = flags.DEFINE_list('runners', ['static', 'dynamic'], 'Runners.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Batch size.')
_UNITS = flags.DEFINE_integer('num_units', 128, 'Hidden units.')
_STEPS = flags.DEFINE_integer('steps', 5, 'Timed training steps after the first.')
_LIMIT = flags.DEFINE_integer('limit', 240, 'Seconds one measurement may take.')
_OUT = flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'sequence_length'),
                           'Output path without extension (.md, .png).')
_ONE = flags.DEFINE_string('one', None, 'Internal: measure one JSON spec, print JSON.')
_REPLOT = flags.DEFINE_boolean('replot', False, 'Measure nothing: redraw the plot from the'
                               ' rows of the last run (<out>.json).')


def measure_one(spec: dict) -> dict:
  """Runs in its own process: builds, steps and measures one configuration."""
  from mnist_rnn import mnist_data  # pylint: disable=g-import-not-at-top
  from mnist_rnn import train  # pylint: disable=g-import-not-at-top
  from models import classifier  # pylint: disable=g-import-not-at-top
  from models import config as model_config  # pylint: disable=g-import-not-at-top
  from models import tf_env  # pylint: disable=g-import-not-at-top
  tf = tf_env.tensorflow()
  tf1 = tf.compat.v1
  config = model_config.ModelConfig(cell=spec['cell'], runner=spec['runner'],
                                    num_units=spec['num_units'],
                                    pixels_per_step=spec['pixels_per_step'])
  batch = spec['batch_size']
  data = mnist_data.load().train.take(batch * (spec['steps'] + 1))
  graph = tf.Graph()
  with graph.as_default():
    start = time.perf_counter()
    model = classifier.build(config, batch_size=batch)
    init = tf1.global_variables_initializer()
    build = time.perf_counter() - start
  graph_def = graph.as_graph_def()
  session = tf1.Session(graph=graph, config=train.session_config())
  session.run(init)

  def step(k):
    feed = classifier.feed_dict(model, data.images[k * batch:(k + 1) * batch],
                                data.labels[k * batch:(k + 1) * batch],
                                {model.learning_rate: 1e-3})
    session.run(model.train_op, feed)
  start = time.perf_counter()
  step(0)
  first = time.perf_counter() - start
  start = time.perf_counter()
  for k in range(1, spec['steps'] + 1):
    step(k)
  steady = spec['steps'] * batch / (time.perf_counter() - start)
  status = open('/proc/self/status').read()
  return {**spec, 'time_steps': model_config.time_steps(config), 'build_seconds': build,
          'ops': len(graph_def.node), 'graphdef_mb': graph_def.ByteSize() / 2**20,
          'first_step_seconds': first, 'examples_per_sec': steady,
          'peak_rss_mb': int(status.split('VmHWM:')[1].split()[0]) / 1024}


def run(spec: dict, limit: int) -> dict:
  """Measures `spec` in a subprocess; a measurement over `limit` seconds is killed."""
  try:
    result = subprocess.run([sys.executable, os.path.abspath(__file__),
                             '--one=' + json.dumps(spec)], capture_output=True, text=True,
                            timeout=limit, cwd=ROOT)
  except subprocess.TimeoutExpired:
    return {**spec, 'error': f'over the {limit} s limit'}
  if result.returncode != 0:
    return {**spec, 'error': (result.stderr.strip().splitlines() or ['failed'])[-1][:120]}
  return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(rows: list) -> str:
  lines = ['| steps | pixels/step | cell | runner | build s | ops | GraphDef MB |'
           ' first step s | ex/s | peak RSS MB |', '|' + '---|' * 10]
  for r in rows:
    steps = 784 // r['pixels_per_step']
    if 'error' in r:
      lines.append(f'| {steps} | {r["pixels_per_step"]} | {r["cell"]} | {r["runner"]} |'
                   f' {r["error"]} | | | | | |')
      continue
    lines.append(f'| {steps} | {r["pixels_per_step"]} | {r["cell"]} | {r["runner"]} |'
                 f' {r["build_seconds"]:.2f} | {r["ops"]:,} | {r["graphdef_mb"]:.1f} |'
                 f' {r["first_step_seconds"]:.2f} | {r["examples_per_sec"]:,.0f} |'
                 f' {r["peak_rss_mb"]:,.0f} |')
  return '\n'.join(lines) + '\n'


def plot(rows: list, path: str) -> bool:
  """Build seconds and steps/sec against sequence length, log-log; False without
  matplotlib."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for cell in sorted({r['cell'] for r in rows}):
    for runner, style in (('static', '-o'), ('dynamic', '--s')):
      done = sorted((784 // r['pixels_per_step'], r) for r in rows
                    if r['cell'] == cell and r['runner'] == runner and 'error' not in r)
      if not done:
        continue
      steps = [s for s, _ in done]
      left.plot(steps, [r['build_seconds'] for _, r in done], style, label=f'{cell} {runner}')
      right.plot(steps, [r['examples_per_sec'] / r['batch_size'] for _, r in done], style,
                 label=f'{cell} {runner}')
  for axis, title in ((left, 'graph build seconds'), (right, 'training steps per second')):
    axis.set_xscale('log')
    axis.set_yscale('log')
    axis.set_xlabel('time steps per image (784 / pixels per step)')
    axis.set_title(title)
    axis.set_xticks([28, 56, 112, 196, 392, 784])
    axis.set_xticklabels(['28', '56', '112', '196', '392', '784'])
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.grid(True, which='both', alpha=0.3)
    axis.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  return True


def main(argv):
  del argv
  if _ONE.value:
    print(json.dumps(measure_one(json.loads(_ONE.value))))
    return
  if _REPLOT.value:
    with open(_OUT.value + '.json', encoding='utf-8') as f:
      rows = json.load(f)['rows']
    if plot(rows, _OUT.value + '.png'):
      print(f'plot: {_OUT.value}.png')
    return
  rows = []
  for pixels in map(int, _PIXELS.value):
    for cell in _CELLS.value:
      for runner in _RUNNERS.value:
        spec = dict(cell=cell, runner=runner, pixels_per_step=pixels,
                    batch_size=_BATCH.value, num_units=_UNITS.value, steps=_STEPS.value)
        rows.append(run(spec, _LIMIT.value))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
  table = markdown(rows)
  cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
              if l.startswith('model name')), 'unknown CPU')
  with open(_OUT.value + '.md', 'w', encoding='utf-8') as f:
    f.write(f'Made by `python benchmarks/{os.path.basename(__file__)}'
            f' {" ".join(a for a in sys.argv[1:] if not a.startswith("--out"))}'.rstrip()
            + f'` on {time.strftime("%Y-%m-%d")}: {os.cpu_count()} cores ({cpu}), batch'
            f' {_BATCH.value}, {_UNITS.value} units, the trainer\'s graph (2 towers, Adam),'
            f' {_STEPS.value} timed steps after the first, limit {_LIMIT.value} s per'
            ' measurement.\n\n' + table)
  with open(_OUT.value + '.json', 'w', encoding='utf-8') as f:
    json.dump({'command': sys.argv[1:], 'rows': rows}, f, indent=1)
  print(table, end='')
  if plot(rows, _OUT.value + '.png'):
    print(f'plot: {_OUT.value}.png')


if __name__ == '__main__':
  app.run(main)
