"""Unrolls a cell over the 28 image rows, statically or dynamically, one way or both.

What `outputs` is in each case:
  static:              a Python list of 28 tensors, each [batch, units];
  dynamic:             one tensor [batch, time, units] (batch-major);
  dynamic, time_major: one tensor [time, batch, units];
  bidirectional:       static: a list of 28 tensors [batch, 2 * units] (forward and
                       backward concatenated); dynamic: a pair (forward, backward) of
                       tensors shaped as above.
In every case `last_output` is outputs[-1] taken as the tutorial does: the last list
element, the last row of the time-major tensor, or the last row after transposing the
batch-major tensor to [time, batch, units] (forward and backward concatenated when
bidirectional).
"""

import collections

from models import config
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

Unrolled = collections.namedtuple('Unrolled', [
    'outputs',                # as the API returns them (see the module docstring)
    'state',                  # the final state, or (forward, backward) when bidirectional
    'last_output',            # outputs[-1]: [batch, units], or [batch, 2 * units]
    'forward_last_output',    # the forward direction's part of outputs[-1]: [batch, units]
    'forward_state',          # the forward direction's final state
    'backward_state',         # the backward direction's final state; None if one-way
    'backward_first_output',  # backward output at step 0 (it has read every row); or None
    'backward_last_output',   # backward half of outputs[-1] (it has read one row); or None
    'outputs_time_major',     # all steps as one [time, batch, units or 2 * units] tensor
])


def _one_way(outputs, state, last, time_major_outputs):
  return Unrolled(outputs, state, last, last, state, None, None, None, time_major_outputs)


def unroll(cell, images, runner: str, time_major: bool = False,
           sequence_length=None, backward_cell=None) -> Unrolled:
  """Runs `cell` over `images`, one image row per time step.

  Args:
    cell: a tf.compat.v1 RNN cell (the forward cell when bidirectional).
    images: [batch, time, features] float32 (batch-major, as read from MNIST).
    runner: 'static' (static_rnn) or 'dynamic' (dynamic_rnn).
    time_major: dynamic only: transpose the input to [time, batch, features] and
      run with time_major=True.
    sequence_length: optional [batch] int32 valid lengths; past its length an
      example's outputs are zeros and its state is carried unchanged.
    backward_cell: a second cell makes the run bidirectional
      (static_bidirectional_rnn / bidirectional_dynamic_rnn).

  Returns:
    Unrolled.
  """
  if runner not in config.RUNNERS:
    raise ValueError(f'unknown runner {runner!r}; expected one of {config.RUNNERS}')
  if runner == 'static' and time_major:
    raise ValueError('time_major applies to the dynamic runner only')
  if runner == 'static':
    steps = tf.unstack(images, axis=1)  # 28 tensors of [batch, features]
    if backward_cell is None:
      outputs, state = tf1.nn.static_rnn(
          cell, steps, sequence_length=sequence_length, dtype=tf.float32)
      return _one_way(outputs, state, outputs[-1], tf.stack(outputs))
    outputs, fw_state, bw_state = tf1.nn.static_bidirectional_rnn(
        cell, backward_cell, steps, sequence_length=sequence_length, dtype=tf.float32)
    units = cell.output_size
    return Unrolled(outputs, (fw_state, bw_state), outputs[-1], outputs[-1][:, :units],
                    fw_state, bw_state, outputs[0][:, units:], outputs[-1][:, units:],
                    tf.stack(outputs))

  inputs = tf.transpose(images, [1, 0, 2]) if time_major else images
  if backward_cell is None:
    outputs, state = tf1.nn.dynamic_rnn(
        cell, inputs, sequence_length=sequence_length, dtype=tf.float32,
        time_major=time_major)
    # Batch-major outputs[-1] would be the last *example*: put time first.
    by_time = outputs if time_major else tf.transpose(outputs, [1, 0, 2])
    return _one_way(outputs, state, by_time[-1], by_time)
  outputs, (fw_state, bw_state) = tf1.nn.bidirectional_dynamic_rnn(
      cell, backward_cell, inputs, sequence_length=sequence_length, dtype=tf.float32,
      time_major=time_major)
  fw, bw = (o if time_major else tf.transpose(o, [1, 0, 2]) for o in outputs)
  return Unrolled(outputs, (fw_state, bw_state), tf.concat([fw[-1], bw[-1]], 1), fw[-1],
                  fw_state, bw_state, bw[0], bw[-1], tf.concat([fw, bw], 2))
