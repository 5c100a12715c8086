"""`--inspect`: builds one configuration's graph, runs it once on a few real test
images with fresh weights, and explains what `outputs` and `states` are."""

import dataclasses

import numpy as np

from mnist_rnn import config as config_lib
from mnist_rnn import mnist_data
from mnist_rnn import state_check
from models import classifier
from models import config as model_config
from models import tf_env
from models import zoneout

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

_STATE_KIND = {
    'lstm': 'LSTMStateTuple(c, h): c is the cell\'s internal memory; h is the hidden'
            ' state, which is also the cell\'s output at the last step',
    'basic_lstm': 'LSTMStateTuple(c, h), as LSTMCell (BasicLSTMCell has no peepholes'
                  ' or projection options)',
    'fused_lstm': 'LSTMStateTuple(c, h), as LSTMCell (FusedLSTMCell is LSTMCell with its'
                  ' gate math in one compiled op)',
    'gru': 'h itself: a GRU\'s state is its output at the last step',
    'fused_gru': 'h itself, as GRUCell (FusedGRUCell is GRUCell with its elementwise'
                 ' math in compiled ops)',
    'rnn': 'h itself: a tanh RNN\'s state is its output at the last step',
}


def _shape(value) -> str:
  return '[' + ', '.join(str(d) for d in np.shape(value)) + ']'


def describe(value) -> str:
  """Renders a fetched structure with shapes: lists, (named) tuples, arrays."""
  if isinstance(value, list):
    return f'list of {len(value)} x {describe(value[0])}'
  if isinstance(value, tuple) and hasattr(value, '_fields'):
    inner = ', '.join(f'{k}={describe(v)}' for k, v in zip(value._fields, value))
    return f'{type(value).__name__}({inner})'
  if isinstance(value, tuple):
    return '(' + ', '.join(describe(v) for v in value) + ')'
  return _shape(value)


def _cmp(name: str, a, b) -> str:
  result = state_check.compare(a, b)
  text = f'  {name}: {result.equal} (max |diff| {result.max_abs_diff:.1e}'
  if not result.equal:
    text += f', differs in {100 * result.differing_fraction:.0f}% of examples'
  return text + ')'


def _steps_text(config) -> str:
  """'28 rows', or e.g. '784 steps' for other readings."""
  steps = model_config.time_steps(config)
  return f'{steps} rows' if model_config.reads_rows(config) else f'{steps} steps'


def _outputs_text(config, outputs, batch) -> list:
  step = ('image row' if model_config.reads_rows(config) else
          f'{config.pixels_per_step} pixel{"s" * (config.pixels_per_step > 1)}'
          + (' of the permuted image' if config.permute_pixels else ''))
  if config.runner == 'static':
    width = np.shape(outputs[0])[-1]
    what = 'forward and backward concatenated, ' if config.bidirectional else ''
    return [f'outputs: a Python list of {len(outputs)} tensors, one per time step'
            f' ({step}), each [batch, {what}units]:',
            f'  outputs[0] {_shape(outputs[0])} ... outputs[{len(outputs) - 1}]'
            f' {_shape(outputs[-1])}' + (f' ({width // 2} + {width // 2})'
                                         if config.bidirectional else '')]
  layout = '[time, batch, units]' if config.time_major else '[batch, time, units]'
  steps, px = model_config.time_steps(config), config.pixels_per_step
  note = (f' (time_major=True: the input was transposed to [time, batch, {px}] ='
          f' [{steps}, {batch}, {px}])' if config.time_major else
          ' (batch-major, the default)')
  if config.bidirectional:
    return [f'outputs: a pair (forward, backward) of tensors {layout} ='
            f' {describe(outputs)}{note}']
  return [f'outputs: one tensor {layout} = {_shape(outputs)}{note}']


def run_fresh(config: config_lib.ModelConfig, images: np.ndarray, fetches):
  """Builds `config`'s graph with fresh weights and runs it once on `images`.

  Args:
    config: the model configuration.
    images: [batch, 28, 28] float32.
    fetches: a function Model -> what to fetch (any session.run structure).

  Returns:
    (model, graph, the fetched values). The graph has one tower (towers=1).
  """
  # One tower: the graph exactly as the tutorial draws it, whole batch in one unroll.
  config = dataclasses.replace(config, towers=1)
  graph = tf.Graph()
  with graph.as_default():
    model = classifier.build(config)
    init = tf1.global_variables_initializer()
  with tf1.Session(graph=graph) as session:
    session.run(init)
    return model, graph, session.run(fetches(model), classifier.feed_dict(model, images))


def check_tensors(model) -> dict:
  """The model's CheckTensors that exist, as a fetchable dict."""
  return state_check.fetches(model.check)


def inspect(config: config_lib.ModelConfig, images: np.ndarray) -> str:
  """Returns the explanation for `config`, evaluated on `images` [batch, 28, 28]."""
  model, _, (fetched, check) = run_fresh(config, images, lambda m: [
      {'outputs': m.unrolled.outputs, 'state': m.unrolled.state, 'last': m.last_output,
       'head': m.head_input, **({'lengths': m.lengths} if m.lengths is not None else {})},
      check_tensors(m)])
  lengths = fetched.get('lengths')
  batch, units = len(images), config.num_units
  mode = config.runner + (' (time_major=True)' if config.time_major else '')
  extras = [f'{config.num_layers} layers' if config.num_layers > 1 else '',
            'bidirectional' if config.bidirectional else '',
            'trimmed lengths ' + str(lengths.tolist())
            if model.lengths is not None else '']
  zoned = zoneout.rates(config.cell, config.zoneout_c, config.zoneout_h)
  if zoned:
    extras.append('zoneout ' + ' '.join(f'{name}={rate}' for name, rate in zoned)
                  + f' (each step\'s input also carries {zoneout.mask_features(zoned, units)}'
                  ' mask features: here, evaluating, their expectation)')
  if not model_config.reads_rows(config):
    px = config.pixels_per_step
    extras.insert(0, f'{model_config.time_steps(config)} steps of {px} pixel'
                  + 's' * (px > 1) + (' (permuted)' if config.permute_pixels else ''))
  lines = [f'{config.cell.upper()} cell, {mode} runner, {units} units'
           + ''.join(', ' + e for e in extras if e)
           + f', {batch} real test images, fresh weights (seed {config.seed})', '']
  lines += _outputs_text(config, fetched['outputs'], batch)
  lines.append(f'states: {describe(fetched["state"])}')
  if config.bidirectional:
    lines.append('  a pair (forward final state, backward final state)')
  if config.num_layers > 1:
    lines.append(f'  a tuple with one entry per layer ({config.num_layers}); the top'
                 ' (last) layer produced outputs')
  lines.append(f'  each {config.cell} state is {_STATE_KIND[config.cell]}')

  how = {'static': 'the last element of the list',
         'dynamic': 'tf.transpose(outputs, [1, 0, 2])[-1]: time first, then the last step'}
  taken = 'outputs[-1] (time is the first axis)' if config.time_major else how[config.runner]
  lines += ['', f'head input ({config.head_input}): {_shape(fetched["head"])}']
  if config.head_input == 'outputs_last':
    lines.append(f'  outputs[-1], taken as {taken}: the only step that has read all'
                 f' {_steps_text(config)}' + (' (forward; the backward half has read only the last row)'
                            if config.bidirectional else ''))
    if model.lengths is not None:
      lines.append('  but with trimmed lengths it is zeros for every example shorter than'
                   f' {_steps_text(config)}: use --head_input=last_relevant or state_h')
  elif config.head_input == 'last_relevant':
    lines.append('  each example\'s output at its own last valid step (sequence_length - 1)')
  else:
    lines.append('  the final state\'s h' + (' (forward and backward)' if config.bidirectional
                                             else ''))
  lines += ['', 'evaluated:',
            _cmp('states.h == outputs[-1]' + (' (forward)' if config.bidirectional else ''),
                 check['h'], check['output'])]
  if check.get('c') is not None:
    lines.append(_cmp('states.c == states.h', check['c'], check['h']))
  if config.bidirectional:
    lines += [_cmp('backward states.h == backward outputs[0]', check['backward_h'],
                   check['backward_first']),
              _cmp('backward states.h == backward half of outputs[-1]', check['backward_h'],
                   check['backward_last'])]
  if model.lengths is not None and not config.bidirectional:
    zero = np.mean(~np.any(check['output'] != 0, axis=1))
    lines.append(f'  outputs[-1] is all zeros for {100 * zero:.0f}% of examples (those'
                 f' shorter than {_steps_text(config)}): their state kept the last valid'
                 ' output')
  if (config.runner == 'dynamic' and not config.time_major and not config.bidirectional
      and model.lengths is None):
    wrong = fetched['outputs'][-1]
    lines += [f'  outputs[-1] without the transpose: shape {_shape(wrong)} = [time, units]:'
              f' the last EXAMPLE\'s {model_config.time_steps(config)} steps, not the last'
              ' step of every example',
              _cmp('  its last row == states.h of the last example', wrong[-1],
                   check['h'][-1])]
  return '\n'.join(lines) + '\n'

