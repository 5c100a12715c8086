"""The comparison's picture: every run's final test accuracy as a dot with the mean and
its 95% interval per configuration, and the mean test-accuracy curve per
configuration with its 95% band across seeds. matplotlib, drawn off screen."""

import math

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402


def comparison(report, path: str) -> None:
  combos = report.combinations
  fig, (dots, curves) = plt.subplots(1, 2, figsize=(12, 4.8))
  rng = np.random.default_rng(0)  # the dots' sideways jitter only
  for i, c in enumerate(combos):
    values = 100 * np.array(list(c.by_seed.values()))
    dots.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=18, alpha=0.6,
                 color=f'C{i}')
    f = c.final
    if not math.isnan(f.ci_low):
      dots.errorbar(i + 0.3, 100 * f.mean, yerr=[[100 * (f.mean - f.ci_low)],
                                                 [100 * (f.ci_high - f.mean)]],
                    fmt='o', color='black', capsize=4)
    else:
      dots.plot(i + 0.3, 100 * f.mean, 'o', color='black')
    curve = 100 * np.array([k for k in c.curves if len(k) == len(c.curves[0])])
    epochs = np.arange(1, curve.shape[1] + 1)
    mean = curve.mean(axis=0)
    curves.plot(epochs, mean, color=f'C{i}', marker='.', label=f'{c.cell} {c.runner} (n={len(curve)})')
    if len(curve) > 1:
      half = stats.t.ppf(0.975, len(curve) - 1) * curve.std(axis=0, ddof=1) / math.sqrt(
          len(curve))
      curves.fill_between(epochs, mean - half, mean + half, color=f'C{i}', alpha=0.2)
  dots.set_xticks(range(len(combos)), [f'{c.cell}\n{c.runner}' for c in combos])
  dots.set_ylabel('final test accuracy (%)')
  dots.set_title('each run (dots); mean and 95% CI (black)')
  dots.grid(axis='y', alpha=0.3)
  curves.set_xlabel('epoch')
  curves.xaxis.get_major_locator().set_params(integer=True)
  curves.set_ylabel('test accuracy (%)')
  curves.set_title('mean test accuracy per epoch, 95% band across seeds')
  curves.grid(alpha=0.3)
  last = [100 * c.final.min for c in combos]
  if last:  # the interesting part: from a little below the worst final run
    curves.set_ylim(min(last) - 1.0, max(100 * c.final.max for c in combos) + 0.2)
  curves.legend(loc='lower right', fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
