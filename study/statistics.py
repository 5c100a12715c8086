"""The numbers a comparison reports: per-configuration summaries over seeds, paired
differences between configurations, Holm's correction, and the seeds a difference
would need. Distributions come from scipy.stats; no TensorFlow, no Optuna.

All accuracies here are fractions (0.9914); `describe_difference` writes percentage
points.
"""

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class Summary:
  """One configuration over its seeds. sd and the interval are NaN for n = 1."""
  n: int
  mean: float
  sd: float
  ci_low: float
  ci_high: float
  min: float
  max: float


def summarize(values: Sequence[float]) -> Summary:
  """n, mean, SD (n - 1), the 95% t-interval of the mean, min and max."""
  x = np.asarray(values, dtype=np.float64)
  n = len(x)
  if n == 0:
    raise ValueError('summarize needs at least one value')
  mean = float(x.mean())
  if n == 1:
    return Summary(1, mean, math.nan, math.nan, math.nan, mean, mean)
  sd = float(x.std(ddof=1))
  if sd == 0.0:
    low = high = mean
  else:
    low, high = stats.t.interval(CONFIDENCE, df=n - 1, loc=mean, scale=sd / math.sqrt(n))
  return Summary(n, mean, sd, float(low), float(high), float(x.min()), float(x.max()))


@dataclasses.dataclass(frozen=True)
class Difference:
  """`b - a` paired by seed: its mean, 95% t-interval, SD, the paired t-test's p and,
  once `holm` has run over a family, the adjusted p."""
  label: str            # e.g. 'GRU − LSTM (static)'
  n: int                # seeds both configurations have
  mean: float
  ci_low: float
  ci_high: float
  sd: float
  p: float              # two-sided paired t-test; NaN when it cannot be computed
  p_holm: float = math.nan

  @property
  def significant(self) -> bool:
    return not math.isnan(self.p_holm) and self.p_holm < ALPHA


def paired_difference(label: str, a: dict, b: dict) -> Optional[Difference]:
  """Compares `b` with `a` over the seeds both have ({seed: value} each).

  The same seed is the same initial weights' seed, data order and augmentation, so the
  pairs are matched and the test is scipy's paired t-test (ttest_rel).

  Returns:
    None when fewer than 2 seeds are shared (no test possible).
  """
  seeds = sorted(set(a) & set(b))
  if len(seeds) < 2:
    return None
  x = np.array([a[s] for s in seeds], dtype=np.float64)
  y = np.array([b[s] for s in seeds], dtype=np.float64)
  d = y - x
  mean, sd = float(d.mean()), float(d.std(ddof=1))
  if sd == 0.0:  # every pair differs by the same amount: t is undefined
    p = 1.0 if mean == 0.0 else math.nan
    return Difference(label, len(seeds), mean, mean, mean, 0.0, p)
  result = stats.ttest_rel(y, x)
  interval = result.confidence_interval(CONFIDENCE)
  return Difference(label, len(seeds), mean, float(interval.low), float(interval.high),
                    sd, float(result.pvalue))


def holm(differences: Sequence[Difference]) -> list:
  """Holm's step-down correction over the family `differences` (those with a p).

  scipy has no Holm (its false_discovery_control is Benjamini-Hochberg, a weaker
  guarantee), and the procedure is four lines: sort the m p-values, multiply the
  k-th smallest by (m - k + 1), keep the running maximum, cap at 1.

  Returns:
    The differences, in their order, with p_holm set (NaN where p is NaN).
  """
  tested = [i for i, d in enumerate(differences) if not math.isnan(d.p)]
  m = len(tested)
  adjusted = {}
  running = 0.0
  for k, i in enumerate(sorted(tested, key=lambda i: differences[i].p)):
    running = max(running, min(1.0, (m - k) * differences[i].p))
    adjusted[i] = running
  return [dataclasses.replace(d, p_holm=adjusted.get(i, math.nan))
          for i, d in enumerate(differences)]


def seeds_needed(mean: float, sd: float, power: float = 0.8, alpha: float = ALPHA,
                 limit: int = 100000) -> Optional[int]:
  """The fewest paired seeds for which a two-sided paired t-test at `alpha` detects a
  true mean difference `mean` (SD of the differences `sd`) with probability `power`:
  the smallest n with P(|T| > t_crit) >= power, T noncentral t (scipy.stats.nct) with
  n - 1 degrees of freedom and noncentrality mean / sd * sqrt(n).

  Returns:
    None when no n up to `limit` is enough (a difference of 0 never is).
  """
  if sd <= 0 or mean == 0:
    return None if mean == 0 else 2
  effect = abs(mean) / sd
  n = 2
  while n <= limit:
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    nc = effect * math.sqrt(n)
    achieved = stats.nct.sf(t_crit, df, nc) + stats.nct.cdf(-t_crit, df, nc)
    if achieved >= power:
      return n
    n = n + 1 if n < 200 else int(n * 1.05) + 1
  return None


def points(value: float) -> str:
  """A fraction as signed percentage points, with a real minus sign."""
  return f'{100 * value:+.2f}'.replace('-', '\u2212')


def describe_difference(d: Difference) -> str:
  """The verdict in words, e.g.
  'GRU − LSTM (static): +0.03 points [−0.04, +0.10], not significant (p = 0.38,
  Holm-adjusted 0.76, n = 5)'."""
  if math.isnan(d.p):
    return (f'{d.label}: {points(d.mean)} points in each of the {d.n} seeds alike, no'
            ' test possible (no spread)')
  verdict = 'significant' if d.significant else 'not significant'
  return (f'{d.label}: {points(d.mean)} points [{points(d.ci_low)},'
          f' {points(d.ci_high)}], {verdict} (p = {d.p:.2g}, Holm-adjusted'
          f' {d.p_holm:.2g}, n = {d.n})')
