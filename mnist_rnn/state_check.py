"""The tutorial's headline check: is the final state's h the same as outputs[-1]?

`compare` is pure numpy; `run_check` fetches both tensors from the real graph in one
`session.run` and compares them.
"""

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class Comparison:
  equal: bool           # max_abs_diff <= atol (and same shape)
  max_abs_diff: float


@dataclasses.dataclass(frozen=True)
class StateCheck:
  """Result of one check on one batch."""
  h_equals_output: Comparison           # states.h vs outputs[-1]
  c_vs_h: Optional[Comparison] = None   # LSTM only: c is the internal state, not h

  def log_text(self) -> str:
    """e.g. 'states.h == outputs[-1]: True (max |diff| 0.0e+00) | c != h (max |c-h| 1.2e+00)'."""
    text = (f'states.h == outputs[-1]: {self.h_equals_output.equal} '
            f'(max |diff| {self.h_equals_output.max_abs_diff:.1e})')
    if self.c_vs_h is not None:
      rel = '==' if self.c_vs_h.equal else '!='
      text += f' | c {rel} h (max |c-h| {self.c_vs_h.max_abs_diff:.1e})'
    return text

  def metrics(self) -> dict:
    out = {'state_equals_output': self.h_equals_output.equal,
           'state_output_max_abs_diff': self.h_equals_output.max_abs_diff}
    if self.c_vs_h is not None:
      out['c_equals_h'] = self.c_vs_h.equal
      out['c_h_max_abs_diff'] = self.c_vs_h.max_abs_diff
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
    return Comparison(False, float('inf'))
  if a.size == 0:
    return Comparison(True, 0.0)
  diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
  return Comparison(bool(diff <= atol), diff)  # NaN compares False


def run_check(session, output_tensor, h_tensor, c_tensor, feed_dict,
              atol: float = 0.0) -> StateCheck:
  """Fetches outputs[-1], h (and c) in one session.run and compares them.

  Args:
    session: a tf.compat.v1 Session holding the model's weights.
    output_tensor: outputs[-1], [batch, units].
    h_tensor: the final state's h, [batch, units].
    c_tensor: the LSTM's final c, or None.
    feed_dict: feeds a fixed batch of images.
  """
  fetches = {'out': output_tensor, 'h': h_tensor}
  if c_tensor is not None:
    fetches['c'] = c_tensor
  values = session.run(fetches, feed_dict)
  c_vs_h = compare(values['c'], values['h'], atol) if 'c' in values else None
  return StateCheck(compare(values['h'], values['out'], atol), c_vs_h)
