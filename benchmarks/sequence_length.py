"""Static or dynamic as the sequence grows: 28 to 784 steps (--pixels_per_step=28..1).

For each pixels-per-step N, each subject runs in a process of its own and is measured:
graph build seconds, its size (ops, GraphDef bytes), the first training step's seconds
(TensorFlow optimises the graph then), steady training examples/sec over the next
steps, and the process's peak RSS. A measurement that passes --limit seconds is killed
and reported as such instead of hanging. The subjects:

- the trainer's graph (models/classifier.py, as train.py builds it: fixed batch,
  --towers towers (two, the trainer's default; the 784-step presets run one), Adam) for
  each of --cells and --runners (`static`, `dynamic`, `dynamic_time_major`);
- with --matmuls, the MatMuls of each cell's static graph alone (benchmarks/shared.py's
  `matmuls_alone`): what a step would cost if every other op took no time;
- PyTorch's nn.LSTM / nn.GRU of the same size (input N pixels, 784 / N steps, batch-first,
  a linear head on the last step, Adam), when `import torch` works (optional:
  `pip install torch==2.13.0`, the CPU build) and --torch is on.

--rounds=R measures every subject of a length R times in turn (R processes each): the
tables give the median of the rounds and their range, and the goals' ratios (dynamic
against static, the fused static cells against PyTorch) are taken round by round, so
the machine's drift over minutes moves both sides of a ratio alike.

  python benchmarks/sequence_length.py                       # writes docs/sequence_length.md
  python benchmarks/sequence_length.py --pixels=28,7 --cells=gru --limit=60
  python benchmarks/sequence_length.py --pixels=1 --cells=fused_lstm,fused_gru \
      --runners=static,dynamic,dynamic_time_major --matmuls --rounds=3 --steps=10 \
      --out=docs/sequence_length_784                          # the speed goals at 784 steps

The table goes to <out>.md, the measured rows to <out>.json and, when matplotlib is
installed, a plot to <out>.png (`--replot` redraws it from the .json without measuring).
"""

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mnist_rnn  # noqa: E402,F401  (legacy Keras before TensorFlow)
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from mnist_rnn import machine  # noqa: E402  (no TensorFlow)
import shared  # noqa: E402  (no TensorFlow)
from shared import PEER_LAYER  # noqa: E402

_PIXELS = flags.DEFINE_list('pixels', ['28', '14', '7', '4', '2', '1'], 'Pixels per step.')
_CELLS = flags.DEFINE_list('cells', ['lstm', 'gru'], 'Cells of the trainer\'s graph.')
_RUNNERS = flags.DEFINE_list('runners', ['static', 'dynamic'], 'Runners: static, dynamic,'
                             ' dynamic_time_major.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Batch size.', lower_bound=1)
_UNITS = flags.DEFINE_integer('num_units', 128, 'Hidden units.', lower_bound=1)
_TOWERS = flags.DEFINE_integer('towers', 2, 'Towers of the trainer\'s graph (train.py\'s'
                               ' --towers: 2 by default, 1 in the 784-step presets).',
                               lower_bound=1)
_STEPS = flags.DEFINE_integer('steps', 5, 'Timed training steps after the first.',
                              lower_bound=1)
_LIMIT = flags.DEFINE_integer('limit', 240, 'Seconds one measurement may take.',
                              lower_bound=1)
_ROUNDS = flags.DEFINE_integer('rounds', 1, 'Measure every subject of a length this many'
                               ' times, in turn.', lower_bound=1)
_MATMULS = flags.DEFINE_boolean('matmuls', False, 'Also measure the MatMuls of each cell\'s'
                                ' static graph alone.')
_TORCH = flags.DEFINE_boolean('torch', True, 'Also measure PyTorch nn.LSTM / nn.GRU of the'
                              ' same size, when torch is installed.')
_TORCH_FLUSH = flags.DEFINE_boolean(
    'torch_flush_denormal', True,
    'PyTorch flushes denormal floats to zero, as TensorFlow does in the threads that run'
    ' its ops. Off, PyTorch keeps them, its default: on an Intel Xeon nn.LSTM at 784 steps'
    ' then trains ~8x slower (docs/speed.md), a cost TensorFlow never pays.')
_OUT = flags.DEFINE_string('out', os.path.join(ROOT, 'docs', 'sequence_length'),
                           'Output path without extension (.md, .json, .png).')
_ONE = flags.DEFINE_string('one', None, 'Internal: measure one JSON spec, print JSON.')
_REPLOT = flags.DEFINE_boolean('replot', False, 'Measure nothing: redraw the plot from the'
                               ' rows of the last run (<out>.json).')

RUNNERS = ('static', 'dynamic', 'dynamic_time_major')
TORCH_NAME = {'lstm': 'nn.LSTM', 'gru': 'nn.GRU', 'rnn': 'nn.RNN'}
flags.register_validator('cells', lambda v: bool(v) and set(v) <= set(PEER_LAYER),
                         message=f'--cells takes names from {sorted(PEER_LAYER)}')
flags.register_validator('runners', lambda v: bool(v) and set(v) <= set(RUNNERS),
                         message=f'--runners takes names from {list(RUNNERS)}')
flags.register_validator(
    'pixels', lambda v: all(p.isdigit() and int(p) > 0 and 784 % int(p) == 0 for p in v),
    message='--pixels takes divisors of 784 (28, 14, 7, 4, 2, 1, ...)')


def _peak_rss_mb() -> float:
  status = open('/proc/self/status', encoding='utf-8').read()
  return int(status.split('VmHWM:')[1].split()[0]) / 1024


def _time(step, steps: int, batch: int):
  """(first step seconds, steady examples/sec over `steps` more steps)."""
  start = time.perf_counter()
  step(0)
  first = time.perf_counter() - start
  start = time.perf_counter()
  for k in range(1, steps + 1):
    step(k)
  return first, steps * batch / (time.perf_counter() - start)


def _model_config(spec: dict, runner: str):
  """The ModelConfig of spec's cell under `runner` (one of RUNNERS); a fused cell's
  kernels are loaded here (compiled on first use: not part of the graph build)."""
  from models import config as model_config  # pylint: disable=g-import-not-at-top
  if spec['cell'].startswith('fused_'):
    from models import fused_ops  # pylint: disable=g-import-not-at-top
    fused_ops.load(spec['cell'])
  return model_config.ModelConfig(
      cell=spec['cell'], runner='static' if runner == 'static' else 'dynamic',
      time_major=runner == 'dynamic_time_major', num_units=spec['num_units'],
      pixels_per_step=spec['pixels_per_step'], towers=spec.get('towers', 2))


def _graph_row(spec: dict, config, build: float, graph_def, first: float,
               steady: float) -> dict:
  """A measured row of a TensorFlow graph: spec, its length, build and size, speed."""
  from models import config as model_config  # pylint: disable=g-import-not-at-top
  return {**spec, 'time_steps': model_config.time_steps(config), 'build_seconds': build,
          'ops': len(graph_def.node), 'graphdef_mb': graph_def.ByteSize() / 2**20,
          'first_step_seconds': first, 'examples_per_sec': steady,
          'peak_rss_mb': _peak_rss_mb()}


def measure_trainer(spec: dict) -> dict:
  """The trainer's graph for spec's cell and runner: build, size, first and steady steps."""
  from mnist_rnn import mnist_data  # pylint: disable=g-import-not-at-top
  from mnist_rnn import train  # pylint: disable=g-import-not-at-top
  from models import classifier  # pylint: disable=g-import-not-at-top
  from models import tf_env  # pylint: disable=g-import-not-at-top
  tf = tf_env.tensorflow()
  tf1 = tf.compat.v1
  config = _model_config(spec, spec['runner'])
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
  return _graph_row(spec, config, build, graph_def, *_time(step, spec['steps'], batch))


def measure_matmuls(spec: dict) -> dict:
  """The MatMuls of the trainer's static graph for spec's cell, alone (a bound)."""
  from models import classifier  # pylint: disable=g-import-not-at-top
  from models import tf_env  # pylint: disable=g-import-not-at-top
  tf = tf_env.tensorflow()
  config = _model_config(spec, 'static')
  source = tf.Graph()
  with source.as_default():
    classifier.build(config, batch_size=spec['batch_size'])
  start = time.perf_counter()
  graph, step_op, init = shared.matmuls_alone(source)
  build = time.perf_counter() - start
  session = tf.compat.v1.Session(graph=graph,
                                 config=shared.matmuls_alone_config(1, 0))
  session.run(init)
  return _graph_row(spec, config, build, graph.as_graph_def(),
                    *_time(lambda k: session.run(step_op), spec['steps'], spec['batch_size']))


def measure_torch(spec: dict) -> dict:
  """PyTorch's nn.LSTM / nn.GRU over the same batches: [batch, 784 / N, N] inputs."""
  import torch  # pylint: disable=g-import-not-at-top
  from mnist_rnn import mnist_data  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  # TensorFlow computes with denormals flushed to zero; the same here, or the comparison
  # measures the CPU's denormal arithmetic (slow on Intel, at 784 steps of a decaying
  # state) rather than the layers.
  flush = spec.get('torch_flush_denormal', True)
  torch.set_flush_denormal(flush)
  batch, pixels = spec['batch_size'], spec['pixels_per_step']
  data = mnist_data.load().train.take(batch * (spec['steps'] + 1))
  x = torch.from_numpy(data.images.reshape(len(data.images), 784 // pixels, pixels))
  y = torch.from_numpy(data.labels.astype('int64'))
  start = time.perf_counter()
  layer = getattr(torch.nn, TORCH_NAME[spec['cell']].split('.')[1])  # 'nn.LSTM' -> nn.LSTM
  rnn = layer(pixels, spec['num_units'], batch_first=True)
  head = torch.nn.Linear(spec['num_units'], 10)
  optimizer = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), 1e-3)
  build = time.perf_counter() - start

  def step(k):
    optimizer.zero_grad()
    out, _ = rnn(x[k * batch:(k + 1) * batch])
    loss = torch.nn.functional.cross_entropy(head(out[:, -1]), y[k * batch:(k + 1) * batch])
    loss.backward()
    optimizer.step()
  first, steady = _time(step, spec['steps'], batch)
  return {**spec, 'time_steps': 784 // pixels, 'build_seconds': build,
          'first_step_seconds': first, 'examples_per_sec': steady,
          'torch_threads': torch.get_num_threads(),
          'torch_flush_denormal': flush,
          # What the CPU did: a product below float32's normal range, kept or flushed.
          'torch_denormals_flushed': (torch.tensor([1e-38]) * 1e-3).item() == 0.0,
          'peak_rss_mb': _peak_rss_mb()}


MEASURES = {'trainer': measure_trainer, 'matmuls': measure_matmuls, 'torch': measure_torch}


def measure_one(spec: dict) -> dict:
  """Runs in its own process: measures one subject (spec['impl'], 'trainer' if absent)."""
  return MEASURES[spec.get('impl', 'trainer')]({'impl': 'trainer', **spec})


def subject(r: dict) -> str:
  """A row's subject, as the tables name it."""
  if r.get('impl') == 'torch':
    return f'torch {TORCH_NAME[r["cell"]]}'
  if r.get('impl') == 'matmuls':
    return f'matmuls only ({r["cell"]} static)'
  return f'{r["cell"]} {r["runner"]}'.replace('dynamic_time_major', 'dynamic time-major')


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


def _by_subject(rows: list) -> dict:
  """{(pixels per step, subject): [its rows, one per round]}, in the order measured."""
  groups = {}
  for r in rows:
    groups.setdefault((r['pixels_per_step'], subject(r)), []).append(r)
  return groups


def markdown(rows: list) -> str:
  """One line per length and subject: the first round's build, size, first step and
  memory; the median examples/sec of the rounds and their range."""
  lines = ['| steps | pixels/step | subject | build s | ops | GraphDef MB | first step s |'
           ' ex/s (median) | ex/s (rounds) | peak RSS MB |', '|' + '---|' * 10]
  for (pixels, name), group in _by_subject(rows).items():
    head = f'| {784 // pixels} | {pixels} | {name} |'
    done = [r for r in group if 'error' not in r]
    if not done:
      lines.append(f'{head} {group[0]["error"]} | | | | | | |')
      continue
    r = done[0]
    rates = [g['examples_per_sec'] for g in done]
    spread = (f'{min(rates):,.0f}–{max(rates):,.0f} ({len(rates)})' if len(rates) > 1
              else f'{rates[0]:,.0f} (1)')
    if len(done) < len(group):
      spread += f'; {len(group) - len(done)} failed: {group[-1].get("error", "")}'
    ops = f'{r["ops"]:,}' if 'ops' in r else 'n/a'
    size = f'{r["graphdef_mb"]:.1f}' if 'graphdef_mb' in r else 'n/a'
    lines.append(f'{head} {r["build_seconds"]:.2f} | {ops} | {size} |'
                 f' {r["first_step_seconds"]:.2f} | {statistics.median(rates):,.0f} |'
                 f' {spread} | {r["peak_rss_mb"]:,.0f} |')
  return '\n'.join(lines) + '\n'


def goal_pairs(rows: list) -> list:
  """(pixels, numerator subject, denominator subject) for every ratio the goals read:
  each dynamic runner against the static one of its cell, and each static cell against
  PyTorch's layer of its kind."""
  names = _by_subject(rows)
  pairs = []
  for pixels in sorted({p for p, _ in names}, reverse=True):
    for cell in PEER_LAYER:
      static = f'{cell} static'
      if (pixels, static) not in names:
        continue
      for runner in ('dynamic', 'dynamic time-major'):
        if (pixels, f'{cell} {runner}') in names:
          pairs.append((pixels, f'{cell} {runner}', static))
      peer = f'torch {TORCH_NAME[PEER_LAYER[cell]]}'
      if (pixels, peer) in names:
        pairs.append((pixels, static, peer))
  return pairs


def ratios(rows: list, pixels: int, top: str, bottom: str) -> list:
  """top / bottom examples/sec, round by round (rounds where both were measured)."""
  rate = {(r['pixels_per_step'], subject(r), r.get('round', 0)): r['examples_per_sec']
          for r in rows if 'error' not in r}
  rounds = sorted({r.get('round', 0) for r in rows})
  return [rate[(pixels, top, k)] / rate[(pixels, bottom, k)] for k in rounds
          if (pixels, top, k) in rate and (pixels, bottom, k) in rate]


def ratio_table(rows: list) -> str:
  """The goals' ratios: each round's, and their median."""
  pairs = goal_pairs(rows)
  if not pairs:
    return ''
  lines = ['| steps | ratio of examples/sec | rounds | median |', '|---|---|---|---|']
  for pixels, top, bottom in pairs:
    values = ratios(rows, pixels, top, bottom)
    if not values:
      lines.append(f'| {784 // pixels} | {top} / {bottom} | not measured | |')
      continue
    lines.append(f'| {784 // pixels} | {top} / {bottom} |'
                 f' {", ".join(f"{v:.2f}x" for v in values)} |'
                 f' **{statistics.median(values):.2f}x** |')
  return '\n'.join(lines) + '\n'


def plot(rows: list, path: str) -> bool:
  """Build seconds and steps/sec against sequence length, log-log; False without
  matplotlib, or with one length only (the tables say all a plot of one point would)."""
  if len({r['pixels_per_step'] for r in rows}) < 2:
    return False
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  lines = {}
  for (pixels, name), group in _by_subject(rows).items():
    done = [r for r in group if 'error' not in r]
    if done and not name.startswith('matmuls'):
      lines.setdefault(name, []).append((784 // pixels, done))
  for name, points in sorted(lines.items()):
    points.sort(key=lambda point: point[0])
    style = '-o' if name.endswith('static') else ':^' if name.startswith('torch') else '--s'
    steps = [k for k, _ in points]
    left.plot(steps, [group[0]['build_seconds'] for _, group in points], style, label=name)
    right.plot(steps, [statistics.median(r['examples_per_sec'] for r in group)
                       / group[0]['batch_size'] for _, group in points], style, label=name)
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
  with_torch = _TORCH.value and subprocess.run(
      [sys.executable, '-c', 'import torch'], capture_output=True).returncode == 0
  rows = []
  for pixels in map(int, _PIXELS.value):
    base = dict(pixels_per_step=pixels, batch_size=_BATCH.value, num_units=_UNITS.value,
                steps=_STEPS.value, towers=_TOWERS.value)
    specs = [dict(impl='trainer', cell=cell, runner=runner, **base)
             for cell in _CELLS.value for runner in _RUNNERS.value]
    if _MATMULS.value:
      specs += [dict(impl='matmuls', cell=cell, runner='static', **base)
                for cell in _CELLS.value]
    if with_torch:
      layers = dict.fromkeys(PEER_LAYER[cell] for cell in _CELLS.value)
      specs += [dict(impl='torch', cell=layer, runner='', torch_flush_denormal=_TORCH_FLUSH.value,
                     **base) for layer in layers]
    for round_ in range(_ROUNDS.value):
      for spec in specs:
        rows.append(run({**spec, 'round': round_}, _LIMIT.value))
        print(f'round {round_ + 1}: ' + markdown(rows[-1:]).splitlines()[-1], flush=True)
  table = markdown(rows)
  goals = ratio_table(rows)
  if goals:
    table += ('\nThe ratios, round by round (a round measures every subject once, in'
              ' turn):\n\n' + goals)
  if not with_torch:
    table += '\nPyTorch: not measured (not installed, or --notorch).\n'
  elif not _TORCH_FLUSH.value:
    table += ('\nPyTorch kept denormal floats (--notorch_flush_denormal); TensorFlow flushes'
              ' them to zero.\n')
  # The kind of CPU, as each epoch's record names it: a ratio of one kind need not hold
  # on another (docs/speed.md).
  cpu = machine.cpu_kind(machine.describe(onednn_opts=None))
  with open(_OUT.value + '.md', 'w', encoding='utf-8') as f:
    f.write(f'Made by `python benchmarks/{os.path.basename(__file__)}'
            f' {" ".join(sys.argv[1:])}'.rstrip()
            + f'` on {time.strftime("%Y-%m-%d")}: {os.cpu_count()} cores ({cpu}), batch'
            f' {_BATCH.value}, {_UNITS.value} units, the trainer\'s graph'
            f' ({_TOWERS.value} tower{"s" * (_TOWERS.value > 1)}, Adam),'
            f' {_STEPS.value} timed steps after the first, {_ROUNDS.value} round(s),'
            f' limit {_LIMIT.value} s per measurement.\n\n' + table)
  with open(_OUT.value + '.json', 'w', encoding='utf-8') as f:
    json.dump({'command': sys.argv[1:], 'rows': rows}, f, indent=1)
  print(table, end='')
  if plot(rows, _OUT.value + '.png'):
    print(f'plot: {_OUT.value}.png')


if __name__ == '__main__':
  app.run(main)
