"""The tutorial's headline check: is the final state's h the same as outputs[-1]?

`compare` is pure numpy; `run_check` fetches the tensors from the real graph in one
`session.run` and compares them (the trainer fetches them batch by batch, both tensors
of a batch in one `session.run`, then calls `from_values`). Besides the headline it
reports, where they exist: c vs h (LSTM), and for a bidirectional run the backward
direction's final h against its output at step 0 (equal: that output has read every
row) and against the backward half of outputs[-1] (not equal: that half has read only
the last row).
"""

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class Comparison:
  equal: bool                        # max_abs_diff <= atol (and same shape)
  max_abs_diff: float
  differing_fraction: float = 0.0    # fraction of examples (rows) that differ


@dataclasses.dataclass(frozen=True)
class StateCheck:
  """Result of one check on one batch."""
  h_equals_output: Comparison                              # states.h vs outputs[-1]
  c_vs_h: Optional[Comparison] = None                      # LSTMs: c is not h
  backward_h_vs_first: Optional[Comparison] = None         # bidirectional
  backward_h_vs_last: Optional[Comparison] = None          # bidirectional

  def log_text(self) -> str:
    """e.g. 'states.h == outputs[-1]: True (max |diff| 0.0e+00) | c != h (max |c-h| 1.2e+00)'."""
    main = self.h_equals_output
    text = f'states.h == outputs[-1]: {main.equal} (max |diff| {main.max_abs_diff:.1e}'
    if not main.equal and np.isfinite(main.max_abs_diff):
      text += f', differs in {100 * main.differing_fraction:.0f}% of examples'
    text += ')'
    if self.c_vs_h is not None:
      rel = '==' if self.c_vs_h.equal else '!='
      text += f' | c {rel} h (max |c-h| {self.c_vs_h.max_abs_diff:.1e})'
    if self.backward_h_vs_first is not None:
      text += (f' | backward h == backward outputs[0]: {self.backward_h_vs_first.equal}'
               f', == backward half of outputs[-1]: {self.backward_h_vs_last.equal}'
               f' (max |diff| {self.backward_h_vs_last.max_abs_diff:.1e})')
    return text

  def metrics(self) -> dict:
    out = {'state_equals_output': self.h_equals_output.equal,
           'state_output_max_abs_diff': self.h_equals_output.max_abs_diff,
           'state_output_differing_fraction': self.h_equals_output.differing_fraction}
    if self.c_vs_h is not None:
      out['c_equals_h'] = self.c_vs_h.equal
      out['c_h_max_abs_diff'] = self.c_vs_h.max_abs_diff
    if self.backward_h_vs_first is not None:
      out['backward_state_equals_first_output'] = self.backward_h_vs_first.equal
      out['backward_state_first_output_max_abs_diff'] = self.backward_h_vs_first.max_abs_diff
      out['backward_state_equals_last_output'] = self.backward_h_vs_last.equal
      out['backward_state_last_output_max_abs_diff'] = self.backward_h_vs_last.max_abs_diff
    return out


def compare(a: np.ndarray, b: np.ndarray, atol: float = 0.0) -> Comparison:
  """Compares two fetched arrays elementwise.

  Args:
    a, b: arrays, normally [batch, units] float32.
    atol: largest |a - b| still called equal; 0 means bit-for-bit identical values.

  Returns:
    Comparison; arrays of different shapes are never equal (max_abs_diff = inf).
  """
  a, b = np.asarray(a), np.asarray(b)
  if a.shape != b.shape:
    return Comparison(False, float('inf'), 1.0)
  if a.size == 0:
    return Comparison(True, 0.0, 0.0)
  diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
  worst = float(np.max(diff))
  rows = diff.reshape(len(diff), -1) if diff.ndim > 1 else diff.reshape(-1, 1)
  differing = float(np.mean(~(rows <= atol).all(axis=1)))  # NaN counts as differing
  return Comparison(bool(worst <= atol), worst, differing)


def run_check(session, tensors, feed_dict, atol: float = 0.0) -> StateCheck:
  """Fetches `tensors` (models.classifier.CheckTensors) in one session.run and compares
  them.

  Args:
    session: a tf.compat.v1 Session holding the model's weights.
    tensors: what to compare (None entries are skipped).
    feed_dict: feeds a fixed batch of images.
  """
  return from_values(session.run(fetches(tensors), feed_dict), atol)


def fetches(tensors) -> dict:
  """The CheckTensors (models.classifier) that exist, as a dict for session.run."""
  return {k: v for k, v in tensors._asdict().items() if v is not None}


def from_values(values: dict, atol: float = 0.0) -> StateCheck:
  """The check on already fetched CheckTensors values (a dict without the None ones)."""
  c_vs_h = compare(values['c'], values['h'], atol) if 'c' in values else None
  first = last = None
  if 'backward_h' in values:
    first = compare(values['backward_h'], values['backward_first'], atol)
    last = compare(values['backward_h'], values['backward_last'], atol)
  return StateCheck(compare(values['h'], values['output'], atol), c_vs_h, first, last)
