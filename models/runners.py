"""Unrolls a cell over the 28 image rows, statically or dynamically.

The three ways, and what `outputs` is in each:
  static:              a Python list of 28 tensors, each [batch, units];
  dynamic:             one tensor [batch, time, units] (batch-major);
  dynamic, time_major: one tensor [time, batch, units].
In every case `last_output` is outputs[-1] taken as the tutorial does: the last list
element, the last row of the time-major tensor, or the last row after transposing the
batch-major tensor to [time, batch, units].
"""

import collections

import tensorflow as tf

tf1 = tf.compat.v1

RUNNERS = ('static', 'dynamic')

Unrolled = collections.namedtuple('Unrolled', ['outputs', 'state', 'last_output'])
Unrolled.__doc__ = """outputs: as in the module docstring; state: the cell's final
state (LSTMStateTuple(c, h) or h); last_output: outputs[-1], [batch, units]."""


def unroll(cell, images, runner: str, time_major: bool = False,
           sequence_length=None) -> Unrolled:
  """Runs `cell` over `images`, one image row per time step.

  Args:
    cell: a tf.compat.v1 RNN cell.
    images: [batch, time, features] float32 (batch-major, as read from MNIST).
    runner: 'static' (tf.compat.v1.nn.static_rnn) or 'dynamic' (dynamic_rnn).
    time_major: dynamic only: transpose the input to [time, batch, features] and
      run dynamic_rnn with time_major=True.
    sequence_length: optional [batch] int32 valid lengths.

  Returns:
    Unrolled(outputs, state, last_output).
  """
  if runner == 'static':
    if time_major:
      raise ValueError('time_major applies to the dynamic runner only')
    steps = tf.unstack(images, axis=1)  # 28 tensors of [batch, features]
    outputs, state = tf1.nn.static_rnn(
        cell, steps, sequence_length=sequence_length, dtype=tf.float32)
    return Unrolled(outputs, state, outputs[-1])
  if runner == 'dynamic':
    if time_major:
      inputs = tf.transpose(images, [1, 0, 2])  # [time, batch, features]
      outputs, state = tf1.nn.dynamic_rnn(
          cell, inputs, sequence_length=sequence_length, dtype=tf.float32,
          time_major=True)
      return Unrolled(outputs, state, outputs[-1])
    outputs, state = tf1.nn.dynamic_rnn(
        cell, images, sequence_length=sequence_length, dtype=tf.float32)
    # outputs[-1] here would be the last *example*; the last step needs time first.
    last = tf.transpose(outputs, [1, 0, 2])[-1]
    return Unrolled(outputs, state, last)
  raise ValueError(f'unknown runner {runner!r}; expected one of {RUNNERS}')
