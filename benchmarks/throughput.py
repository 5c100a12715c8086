"""Training throughput of the trainer's graphs against tf.keras and PyTorch, on the same data.

  python benchmarks/throughput.py                 # the full table (several minutes)
  python benchmarks/throughput.py --steps=20 --repeats=2 --sweep=   # a quick look
  python benchmarks/throughput.py --cells= --sweep= --pairs=5         # LSTM ratios, paired

Each measurement runs in its own subprocess (the trainer is TF1 graph code, tf.keras
needs eager mode, and each gets its own peak RSS). A measurement warms up, then times
`--repeats` runs of `--steps` training steps on real MNIST batches and reports the
median and spread of examples/sec. For the LSTM and the GRU it also times the default
graph's matrix multiplies alone ("matmuls only"): how fast the trainer could be if no
other op took any time. PyTorch is measured when `import torch` works
(optional: `pip install torch==2.13.0`).
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mnist_rnn  # noqa: E402,F401  (legacy Keras before TensorFlow)
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from models import config as model_config  # noqa: E402  (no TensorFlow)
from shared import PEER_LAYER, matmuls_alone, matmuls_alone_config  # noqa: E402,F401

_STEPS = flags.DEFINE_integer('steps', 100, 'Timed steps per repetition.', lower_bound=1)
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repetitions.', lower_bound=1)
_WARMUP = flags.DEFINE_integer('warmup', 20, 'Untimed steps first.', lower_bound=1)
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Batch size of the main table.',
                              lower_bound=1)
_UNITS = flags.DEFINE_integer('num_units', 128, 'Hidden units.', lower_bound=1)
_SWEEP = flags.DEFINE_list('sweep', ['32', '128', '512'], 'Batch sizes for the sweep of'
                           ' the default configuration (empty: no sweep).')
_CELLS = flags.DEFINE_list('cells', None, 'Cells of the main table (default: every cell;'
                           ' empty: no main table).')
_PAIRS = flags.DEFINE_integer(
    'pairs', 0, 'After the tables: this many rounds of PyTorch nn.LSTM and nn.GRU, the'
    ' default graphs, the fused cells with each runner and the trainer\'s own epochs'
    ' (PAIRED) at --batch_size, one repetition each in turn, and the median of the rounds\''
    ' ratios: a ratio that the machine\'s drift over a run of minutes moves less.',
    lower_bound=0)
_PAIRED = flags.DEFINE_list('paired', None, 'The subjects of --pairs, by name (default:'
                            ' all of PAIRED, e.g. "trainer fused_gru static").')
_ONE = flags.DEFINE_string('one', None, 'Internal: run one measurement (JSON) and print'
                           ' its result as JSON.')


def _batches(batch_size):
  from mnist_rnn import mnist_data
  train = mnist_data.load().train
  n = len(train) // batch_size * batch_size
  return train.images[:n].reshape(-1, batch_size, 28, 28), train.labels[:n].reshape(-1, batch_size)


def _time_steps(step, n_batches, warmup, steps, repeats, batch_size):
  for i in range(warmup):
    step(i % n_batches)
  rates, k = [], warmup
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      step(k % n_batches)
      k += 1
    rates.append(steps * batch_size / (time.perf_counter() - start))
  return rates


def _build_trainer_model(spec):
  """The trainer's model in the default graph, built as the trainer builds it: batch
  dimension fixed to the spec's batch size, unless the spec says any batch."""
  from mnist_rnn import config as config_lib
  from models import classifier
  return classifier.build(config_lib.ModelConfig(
      cell=spec['cell'], runner=spec['runner'], time_major=spec['time_major'],
      num_units=spec['num_units'], towers=spec.get('towers', 2)),
      batch_size=None if spec.get('any_batch') else spec['batch_size'])


def measure_trainer(spec):
  import tensorflow as tf
  from mnist_rnn import train
  tf1 = tf.compat.v1
  images, labels = _batches(spec['batch_size'])
  if spec['cell'].startswith('fused_'):
    from models import fused_ops
    fused_ops.load(spec['cell'])  # compiled on first use: not part of the graph build
  graph = tf.Graph()
  start = time.perf_counter()
  with graph.as_default():
    model = _build_trainer_model(spec)
    init = tf1.global_variables_initializer()
  build = time.perf_counter() - start
  session = tf1.Session(graph=graph, config=train.session_config(
      spec.get('intra_op_threads', 1), spec.get('inter_op_threads', 0)))
  session.run(init)

  def step(i):
    session.run(model.train_op, {model.images: images[i], model.labels: labels[i],
                                 model.learning_rate: 1e-3})
  return build, _time_steps(step, len(images), spec['warmup'], spec['steps'],
                            spec['repeats'], spec['batch_size'])


def measure_loop(spec):
  """The trainer's own epochs (`train.Trainer.train_epoch`: batches made ahead on a
  second thread, loss fetched, progress kept) against the bare train op of the same
  graph and session, in turn: a first epoch of `steps` steps warms up, then each of
  `repeats` rounds times one epoch and then `steps` bare `session.run`s of the train
  op on batches made beforehand. Returns the epochs' rates; the bare rates and each
  round's ratio go to `extra` (alternating in one process: the machine's drift, and
  the difference between processes, move both alike)."""
  import tempfile
  from mnist_rnn import config as config_lib
  from mnist_rnn import mnist_data
  from mnist_rnn import train
  data = mnist_data.load()
  with tempfile.TemporaryDirectory() as workdir:
    config = config_lib.TrainConfig(
        model=config_lib.ModelConfig(cell=spec['cell'], runner=spec['runner'],
                                     time_major=spec['time_major'],
                                     num_units=spec['num_units']),
        workdir=workdir, epochs=spec['repeats'] + 1, batch_size=spec['batch_size'],
        train_examples=spec['steps'] * spec['batch_size'])
    trainer = train.Trainer(config, data)
    trainer.restore_or_init()
    m = trainer.model
    order = train.epoch_order(0, 1, len(trainer.train))
    total_steps = trainer.steps_per_epoch * config.epochs
    feeds = [trainer.batch_feed(1, order, b, total_steps)
             for b in range(trainer.steps_per_epoch)]
    trainer.train_epoch(1, 0, lambda: False)
    rates, bare = [], []
    for epoch in range(2, config.epochs + 1):
      examples, seconds, _ = trainer.train_epoch(epoch, 0, lambda: False)
      rates.append(examples / seconds)
      start = time.perf_counter()
      for feed in feeds:
        trainer.session.run(m.train_op, feed)
      bare.append(examples / (time.perf_counter() - start))
    trainer.close()
  extra = {'bare_rates': bare, 'ratios': [a / b for a, b in zip(rates, bare)]}
  return trainer.build_seconds, rates, extra


def measure_matmuls(spec):
  """The trainer's default graph reduced to its MatMuls (`matmuls_alone`): a bound.

  Its examples/sec is what the trainer would reach if every other op (the cells'
  elementwise math, concat, split, the optimizer) took no time and the MatMuls shared
  the cores perfectly. Its build seconds are the reduced graph's.
  """
  import tensorflow as tf
  source = tf.Graph()
  with source.as_default():
    _build_trainer_model(spec)
  start = time.perf_counter()
  graph, step_op, init = matmuls_alone(source)
  build = time.perf_counter() - start
  session = tf.compat.v1.Session(graph=graph, config=matmuls_alone_config(
      spec.get('intra_op_threads', 1), spec.get('inter_op_threads', 0)))
  session.run(init)
  return build, _time_steps(lambda i: session.run(step_op), 1, spec['warmup'],
                            spec['steps'], spec['repeats'], spec['batch_size'])


def measure_keras(spec):
  import tensorflow as tf
  tf.config.run_functions_eagerly(False)
  images, labels = _batches(spec['batch_size'])
  layer = {'lstm': tf.keras.layers.LSTM, 'gru': tf.keras.layers.GRU,
           'rnn': tf.keras.layers.SimpleRNN}[spec['cell']]
  start = time.perf_counter()
  model = tf.keras.Sequential([tf.keras.Input((28, 28)), layer(spec['num_units']),
                               tf.keras.layers.Dense(10)])
  model.compile(tf.keras.optimizers.Adam(1e-3),
                tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  build = time.perf_counter() - start
  x = images.reshape(-1, 28, 28)
  y = labels.reshape(-1)
  n = spec['batch_size'] * spec['steps']
  model.fit(x[:spec['batch_size'] * spec['warmup']], y[:spec['batch_size'] * spec['warmup']],
            batch_size=spec['batch_size'], epochs=1, verbose=0, shuffle=False)
  rates = []
  for _ in range(spec['repeats']):
    start = time.perf_counter()
    model.fit(x[:n], y[:n], batch_size=spec['batch_size'], epochs=1, verbose=0,
              shuffle=False)
    rates.append(n / (time.perf_counter() - start))
  return build, rates


def measure_torch(spec):
  import torch
  torch.manual_seed(0)
  images, labels = _batches(spec['batch_size'])
  start = time.perf_counter()
  rnn_class = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU, 'rnn': torch.nn.RNN}[spec['cell']]
  rnn = rnn_class(28, spec['num_units'], batch_first=True)
  head = torch.nn.Linear(spec['num_units'], 10)
  params = list(rnn.parameters()) + list(head.parameters())
  optimizer = torch.optim.Adam(params, 1e-3)
  build = time.perf_counter() - start
  x, y = torch.from_numpy(images), torch.from_numpy(labels)

  def step(i):
    optimizer.zero_grad()
    out, _ = rnn(x[i])
    loss = torch.nn.functional.cross_entropy(head(out[:, -1]), y[i])
    loss.backward()
    optimizer.step()
  return build, _time_steps(step, len(images), spec['warmup'], spec['steps'],
                            spec['repeats'], spec['batch_size'])


flags.register_validator('cells', lambda v: v is None or set(v) <= set(PEER_LAYER),
                         message=f'--cells takes names from {sorted(PEER_LAYER)}')

MEASURES = {'trainer': measure_trainer, 'trainer epochs': measure_loop,
            'matmuls only': measure_matmuls,
            'tf.keras': measure_keras, 'torch': measure_torch}


def run_one(spec):
  """Runs one measurement in a fresh subprocess; returns its result dict or an error."""
  env = dict(os.environ)
  if spec['impl'] == 'tf.keras':
    env['TF_USE_LEGACY_KERAS'] = '1'
  proc = subprocess.run([sys.executable, __file__, '--one=' + json.dumps(spec)],
                        capture_output=True, text=True, env=env)
  for line in reversed(proc.stdout.splitlines()):
    if line.startswith('{'):
      return json.loads(line)
  return {**spec, 'error': (proc.stderr.strip().splitlines() or ['failed'])[-1]}


def torch_available():
  return subprocess.run([sys.executable, '-c', 'import torch'],
                        capture_output=True).returncode == 0


def row(result, peers):
  if 'error' in result:
    return f"| {result['impl']} | {result['cell']} | {result.get('variant', '')} | error: {result['error']} |||||"
  ratios = [f"{result['median'] / peers[p]:.2f}x" if p in peers else 'n/a'
            for p in ('tf.keras', 'torch')]
  return (f"| {result['impl']} | {result['cell']} | {result['variant']} | {result['batch_size']} |"
          f" {result['median']:,.0f} | ±{result['spread']:,.0f} | {result['build_seconds']:.2f} |"
          f" {result['peak_rss_mb']:,.0f} | {ratios[0]} | {ratios[1]} |")


def _measure_peers(base, impls, peer_cell, batch_size):
  """Measures and prints each peer's row; returns {impl: median ex/s}."""
  peers = {}
  for impl in impls:
    r = run_one({**base, 'impl': impl, 'cell': peer_cell, 'runner': '',
                 'variant': 'fit' if impl == 'tf.keras' else 'nn', 'batch_size': batch_size})
    if 'error' not in r:
      peers[impl] = r['median']
    print(row(r, peers), flush=True)
  return peers


# The paired rounds' subjects (impl, cell, runner, time_major) and the ratios reported
# (each a pair of subject names): the speed goals of docs/speed.md.
PAIRED = [('torch', 'lstm', '', False), ('trainer', 'lstm', 'static', False),
          ('trainer', 'fused_lstm', 'static', False), ('trainer', 'fused_lstm', 'dynamic', False),
          ('trainer', 'fused_lstm', 'dynamic', True), ('torch', 'gru', '', False),
          ('trainer', 'gru', 'static', False), ('trainer', 'fused_gru', 'static', False),
          ('trainer', 'fused_gru', 'dynamic', False), ('trainer', 'fused_gru', 'dynamic', True),
          ('trainer epochs', 'lstm', 'static', False),
          ('trainer epochs', 'fused_gru', 'static', False)]


def subject_name(impl, cell, runner, time_major):
  return ' '.join([impl, cell] + ([runner] if runner else [])
                  + (['time-major'] if time_major else []))


PAIRED_RATIOS = [
    ('trainer fused_lstm static', 'torch lstm'), ('trainer fused_lstm dynamic', 'torch lstm'),
    ('trainer fused_lstm dynamic time-major', 'torch lstm'),
    ('trainer fused_gru static', 'torch gru'), ('trainer fused_gru dynamic', 'torch gru'),
    ('trainer fused_gru dynamic time-major', 'torch gru'),
    ('trainer lstm static', 'torch lstm'), ('trainer gru static', 'torch gru')]


def _paired_rounds(base, with_torch, rounds, batch_size):
  """Runs every subject of PAIRED in turn, one repetition each, `rounds` times; prints
  each subject's examples/sec per round, then each ratio of PAIRED_RATIOS per round and
  its median over the rounds (a ratio that the machine's drift over minutes moves
  less than one of separate medians)."""
  subjects = [s for s in PAIRED if (with_torch or s[0] != 'torch')
              and (not _PAIRED.value or subject_name(*s) in _PAIRED.value)]
  names = [subject_name(*s) for s in subjects]
  ratios = [(a, b) for a, b in PAIRED_RATIOS if a in names and b in names]
  print(f'\n# {rounds} paired rounds at batch {batch_size}: {base["steps"]} steps each'
        f' after {base["warmup"]} warm-up, in turn\n')
  rates = {name: [] for name in names}
  # A 'trainer epochs' subject also times the bare train op in its own process, in
  # turn with its --repeats epochs: the median of those ratios, per round (measure_loop).
  in_process = {name: [] for (impl, *_), name in zip(subjects, names)
                if impl == 'trainer epochs'}
  for _ in range(rounds):
    for (impl, cell, runner, time_major), name in zip(subjects, names):
      r = run_one({**base, 'impl': impl, 'cell': cell, 'runner': runner,
                   'time_major': time_major, 'variant': runner, 'batch_size': batch_size,
                   'repeats': base['repeats'] if name in in_process else 1})
      rates[name].append(r.get('median'))
      if name in in_process:
        in_process[name].append(statistics.median(r['ratios']) if 'ratios' in r else None)
  print('| subject | ' + ' | '.join(f'round {k + 1}' for k in range(rounds))
        + ' | median ex/s |\n|---' + '|---' * (rounds + 1) + '|')
  for name in names:
    good = [v for v in rates[name] if v]
    print(f'| {name} | ' + ' | '.join(f'{v:,.0f}' if v else 'error' for v in rates[name])
          + (f' | {statistics.median(good):,.0f} |' if good else ' | n/a |'))
  print('\n| ratio | ' + ' | '.join(f'round {k + 1}' for k in range(rounds))
        + ' | median |\n|---' + '|---' * (rounds + 1) + '|')
  rows = [(f'{a} / {b}', [x / y if x and y else None for x, y in zip(rates[a], rates[b])])
          for a, b in ratios]
  rows += [(f'{name} / its bare train op (same process)', values)
           for name, values in in_process.items()]
  for label, values in rows:
    good = [v for v in values if v]
    print(f'| {label} | ' + ' | '.join(f'{v:.3f}x' if v else 'n/a' for v in values)
          + (f' | **{statistics.median(good):.3f}x** |' if good else ' | n/a |'), flush=True)


def main(argv):
  del argv
  if _ONE.value:
    spec = json.loads(_ONE.value)
    build, rates, *extra = MEASURES[spec['impl']](spec)
    print(json.dumps({**spec, **(extra[0] if extra else {}), 'build_seconds': build,
                      'median': statistics.median(rates),
                      'spread': (max(rates) - min(rates)) / 2, 'rates': rates,
                      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return
  base = dict(num_units=_UNITS.value, warmup=_WARMUP.value, steps=_STEPS.value,
              repeats=_REPEATS.value, time_major=False)
  impls = ['tf.keras'] + (['torch'] if torch_available() else [])
  print(f'# {os.cpu_count()} CPUs; torch {"found" if "torch" in impls else "not installed"};'
        f' {base["repeats"]} x {base["steps"]} steps after {base["warmup"]} warm-up')
  header = ('| impl | cell | variant | batch | ex/s (median) | spread | build s | peak RSS MB |'
            ' vs tf.keras | vs torch |\n|---|---|---|---|---|---|---|---|---|---|')
  table_cells = model_config.CELLS if _CELLS.value is None else _CELLS.value
  if table_cells:
    print(header)
  for cell in table_cells:
    # Each cell's peers are measured just before its rows (the LSTM peers again for
    # basic_lstm and fused_lstm): the machine's speed drifts over a run of minutes.
    peers = _measure_peers(base, impls, PEER_LAYER[cell], _BATCH.value)
    # The defaults (fixed batch dimension, 2 towers, 1 intra-op thread) for each runner;
    # for the mission's two cells also the same static graph without each speed
    # setting in turn (the before/after).
    variants = [('static', False, False, 2, (1, 0)), ('dynamic', False, False, 2, (1, 0)),
                ('dynamic', True, False, 2, (1, 0))]
    if cell in ('lstm', 'gru'):
      variants += [('static', False, True, 2, (1, 0)), ('static', False, True, 1, (1, 0)),
                   ('static', False, True, 1, (0, 0))]
    for runner, time_major, any_batch, towers, threads in variants:
      variant = runner + (' time-major' if time_major else '')
      if any_batch:
        variant += ', any batch size'
      if towers == 1:
        variant += ', 1 tower'
      if threads == (0, 0):
        variant += ', TF default threads'
      r = run_one({**base, 'impl': 'trainer', 'cell': cell, 'runner': runner,
                   'time_major': time_major, 'variant': variant, 'batch_size': _BATCH.value,
                   'any_batch': any_batch, 'towers': towers,
                   'intra_op_threads': threads[0], 'inter_op_threads': threads[1]})
      print(row(r, peers), flush=True)
    if cell in ('lstm', 'gru'):
      # A bound on the default graph: its MatMuls alone, as if no other op took time.
      r = run_one({**base, 'impl': 'matmuls only', 'cell': cell, 'runner': 'static',
                   'variant': "static: the default graph's MatMuls alone",
                   'batch_size': _BATCH.value})
      print(row(r, peers), flush=True)
  if _SWEEP.value:
    print('\n# batch-size sweep, default configuration (trainer: lstm static; and'
          ' fused_lstm static)\n')
    print(header)
    for batch_size in (int(b) for b in _SWEEP.value):
      peers = _measure_peers(base, impls, 'lstm', batch_size)
      for cell in ('lstm', 'fused_lstm'):
        print(row(run_one({**base, 'impl': 'trainer', 'cell': cell, 'runner': 'static',
                           'variant': 'static', 'batch_size': batch_size}), peers),
              flush=True)
  if _PAIRS.value:
    _paired_rounds(base, 'torch' in impls, _PAIRS.value, _BATCH.value)


if __name__ == '__main__':
  app.run(main)
