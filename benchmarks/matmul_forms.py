"""What one step's products cost in each form TensorFlow can run them (docs/speed.md).

A step of the fused LSTM at 784 steps is its MatMuls (docs/speed.md): forward
h [batch, units] @ kernel_h [units, width], and in the gradient dh = dy @ kernel_h^T and
dkernel_h = h^T @ dy. tf.matmul's gradient runs dh as a MatMul with transpose_b; the
fused cells run it on rows transposed beforehand (models/fused_ops.times_h_rows). This
times each form alone: --products independent products of one form in one graph (on
fed values, so that Grappler folds nothing), one intra-op thread as the trainer runs,
--rounds rounds of every form in turn; it prints milliseconds per product, the median
of the rounds and their range.

  python benchmarks/matmul_forms.py                     # batch 64, 128 units, width 512
  python benchmarks/matmul_forms.py --batch=128 --width=256 --out=/tmp/forms
"""

import statistics
import sys
import time

from absl import app
from absl import flags

_BATCH = flags.DEFINE_integer('batch', 64, 'Rows of h and dy.', lower_bound=1)
_UNITS = flags.DEFINE_integer('units', 128, 'Columns of h (rows of the kernel).',
                              lower_bound=1)
_WIDTH = flags.DEFINE_integer('width', 512, 'Columns of the kernel (4 x units for an '
                              'LSTM).', lower_bound=1)
_PRODUCTS = flags.DEFINE_integer('products', 300, 'Products of one form per run.',
                                 lower_bound=1)
_RUNS = flags.DEFINE_integer('runs', 5, 'Timed runs per round (after one untimed).',
                             lower_bound=1)
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Rounds of every form in turn.', lower_bound=1)
_OUT = flags.DEFINE_string('out', '', 'Also write the table to <out>.md.')

# (name, shapes of the two fed operands, tf.matmul's transpose flags)
FORMS = [
    ('forward: h @ kernel_h', ('batch', 'units'), ('units', 'width'), False, False),
    ('dh, tf.matmul\'s: dy @ kernel_h, transpose_b', ('batch', 'width'),
     ('units', 'width'), False, True),
    ('dh, the fused cells\': dy @ kernel_h^T (transposed beforehand)', ('batch', 'width'),
     ('width', 'units'), False, False),
    ('dkernel_h, tf.matmul\'s: h @ dy, transpose_a', ('batch', 'units'),
     ('batch', 'width'), True, False),
    ('baseline: the sums that collect the products, no product', ('batch', 'width'),
     None, False, False),
]


def measure(batch: int, units: int, width: int, products: int, runs: int,
            rounds: int) -> list:
  """[(form name, [ms per product, one per round])]: each form timed alone."""
  sys.path.insert(0, __file__.rsplit('/', 2)[0])
  import numpy as np  # pylint: disable=g-import-not-at-top
  from mnist_rnn import train  # pylint: disable=g-import-not-at-top
  from models import tf_env  # pylint: disable=g-import-not-at-top
  tf = tf_env.tensorflow()
  tf1 = tf.compat.v1
  size = {'batch': batch, 'units': units, 'width': width}
  rng = np.random.default_rng(0)
  graph = tf.Graph()
  fetches, feeds = [], []
  with graph.as_default():
    for _, a_shape, b_shape, transpose_a, transpose_b in FORMS:
      a = tf1.placeholder(tf.float32, [size[d] for d in a_shape])
      feed = {a: rng.standard_normal(a.shape.as_list()).astype(np.float32)}
      if b_shape is None:
        outs = [a + float(i) for i in range(products)]
      else:
        b = tf1.placeholder(tf.float32, [size[d] for d in b_shape])
        feed[b] = rng.standard_normal(b.shape.as_list()).astype(np.float32)
        # a + i: a distinct product each, which Grappler cannot merge.
        outs = [tf.matmul(a + float(i), b, transpose_a=transpose_a,
                          transpose_b=transpose_b) for i in range(products)]
      fetches.append(tf.add_n([tf.reduce_sum(o) for o in outs]))
      feeds.append(feed)
  session = tf1.Session(graph=graph, config=train.session_config())
  times = [[] for _ in FORMS]
  for _ in range(rounds):
    for k, (fetch, feed) in enumerate(zip(fetches, feeds)):
      session.run(fetch, feed)
      start = time.perf_counter()
      for _ in range(runs):
        session.run(fetch, feed)
      times[k].append((time.perf_counter() - start) / runs / products * 1e3)
  return [(form[0], t) for form, t in zip(FORMS, times)]


def markdown(results: list) -> str:
  lines = ['| form | ms per product: median | rounds |', '|---|---|---|']
  for name, t in results:
    lines.append(f'| {name} | {statistics.median(t):.4f} | '
                 f'{min(t):.4f}–{max(t):.4f} ({len(t)}) |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  results = measure(_BATCH.value, _UNITS.value, _WIDTH.value, _PRODUCTS.value,
                    _RUNS.value, _ROUNDS.value)
  cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
              if l.startswith('model name')), 'unknown CPU')
  text = (f'Made by `python benchmarks/matmul_forms.py {" ".join(sys.argv[1:])}'.rstrip()
          + f'` on {time.strftime("%Y-%m-%d")} ({cpu}): batch {_BATCH.value}, '
          f'{_UNITS.value} units, width {_WIDTH.value}, {_PRODUCTS.value} products a run, '
          f'one intra-op thread.\n\n' + markdown(results))
  print(text, end='')
  if _OUT.value:
    with open(_OUT.value + '.md', 'w', encoding='utf-8') as f:
      f.write(text)


if __name__ == '__main__':
  app.run(main)
