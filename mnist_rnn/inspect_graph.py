"""`--inspect`: builds one configuration's graph, runs it once on a few real test
images with fresh weights, and explains what `outputs` and `states` are."""

import numpy as np
import tensorflow as tf

from mnist_rnn import config as config_lib
from mnist_rnn import mnist_data
from mnist_rnn import state_check
from models import classifier

tf1 = tf.compat.v1


def _shape(value) -> str:
  return '[' + ', '.join(str(d) for d in np.shape(value)) + ']'


def _cmp(name: str, a, b) -> str:
  result = state_check.compare(a, b)
  return f'  {name}: {result.equal} (max |diff| {result.max_abs_diff:.1e})'


def inspect(config: config_lib.ModelConfig, images: np.ndarray) -> str:
  """Returns the explanation for `config`, evaluated on `images` [batch, 28, 28]."""
  graph = tf.Graph()
  with graph.as_default():
    model = classifier.build(config)
    init = tf1.global_variables_initializer()
  with tf1.Session(graph=graph) as session:
    session.run(init)
    u = model.unrolled
    fetched = session.run({'outputs': u.outputs, 'state': u.state, 'last': model.last_output,
                           'h': model.final_h, 'c': model.final_c if model.final_c is not None
                           else tf.constant(0)}, {model.images: images})
  batch, units = len(images), config.num_units
  mode = config.runner + (' (time_major=True)' if config.time_major else '')
  lines = [f'{config.cell.upper()} cell, {mode} runner, {units} units, {batch} real test'
           f' images, fresh weights (seed {config.seed})', '']
  outputs = fetched['outputs']
  if config.runner == 'static':
    lines += [f'outputs: a Python list of {len(outputs)} tensors, one per time step'
              f' (image row), each [batch, units]:',
              f'  outputs[0] {_shape(outputs[0])} ... outputs[{len(outputs) - 1}]'
              f' {_shape(outputs[-1])}']
  elif config.time_major:
    lines += [f'outputs: one tensor [time, batch, units] = {_shape(outputs)}'
              ' (time_major=True: the input was transposed to [time, batch, 28] = '
              f'[28, {batch}, 28])']
  else:
    lines += [f'outputs: one tensor [batch, time, units] = {_shape(outputs)}'
              ' (batch-major, the default)']
  if config.cell == 'lstm':
    lines += [f'states: LSTMStateTuple(c={_shape(fetched["state"].c)},'
              f' h={_shape(fetched["state"].h)})',
              '  c is the cell\'s internal memory; h is the hidden state, which is also'
              ' the cell\'s output at the last step']
  else:
    lines += [f'states: one tensor [batch, units] = {_shape(fetched["state"])}: a GRU\'s'
              ' state is just h, its output at the last step']
  how = {'static': 'the last element of the list',
         'dynamic': 'tf.transpose(outputs, [1, 0, 2])[-1]: time first, then the last step'}
  lines += ['', f'head input: outputs[-1] {_shape(fetched["last"])}, taken as'
            f' {"outputs[-1] (time is the first axis)" if config.time_major else how[config.runner]}.',
            '  It is the only step that has read all 28 rows, so the dense softmax layer'
            ' classifies from it.', '', 'evaluated:',
            _cmp('states.h == outputs[-1]', fetched['h'], fetched['last'])]
  if config.cell == 'lstm':
    lines.append(_cmp('states.c == states.h', fetched['c'], fetched['h']))
  if config.runner == 'dynamic' and not config.time_major:
    wrong = outputs[-1]
    lines += [f'  outputs[-1] without the transpose: shape {_shape(wrong)} = [time, units]:'
              f' the last EXAMPLE\'s 28 steps, not the last step of every example',
              _cmp('  its last row == states.h of the last example', wrong[-1],
                   fetched['h'][-1])]
  return '\n'.join(lines) + '\n'


def inspect_with_data(config: config_lib.ModelConfig, data_dir: str, batch: int = 4) -> str:
  test = mnist_data.load(data_dir).test.take(batch)
  return inspect(config, test.images)
