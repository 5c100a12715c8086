"""The comparison's picture: every run's final test accuracy as a dot with the mean and
its 95% interval per configuration, and the mean test-error curve per configuration
with its 95% band across seeds. matplotlib, drawn off screen."""

import math

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top
import matplotlib.ticker  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402


# Each configuration's line style and marker, beside its colour: configurations whose
# curves coincide (static and dynamic compute the same numbers) stay visible.
STYLES = (('-', 'o'), ('--', 's'), (':', '^'), ('-.', 'D'))


def figure(report):
  """The picture as a matplotlib Figure (left: the final accuracies; right: the curves).

  The curves are test error (100 - accuracy, %) on a log scale, so the first epochs and
  the last ones' tenths of a point are both readable; the y-limits hold every plotted
  point and band."""
  combos = report.combinations
  fig, (dots, curves) = plt.subplots(1, 2, figsize=(12, 4.8))
  rng = np.random.default_rng(0)  # the dots' sideways jitter only
  plotted = []
  for i, c in enumerate(combos):
    values = 100 * np.array(list(c.by_seed.values()))
    dots.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=18, alpha=0.6,
                 color=f'C{i}')
    f = c.final
    if not math.isnan(f.ci_low):  # drawn within 0-100%, where accuracies can be
      dots.errorbar(i + 0.3, 100 * f.mean, yerr=[[100 * (f.mean - max(f.ci_low, 0.0))],
                                                 [100 * (min(f.ci_high, 1.0) - f.mean)]],
                    fmt='o', color='black', capsize=4)
    else:
      dots.plot(i + 0.3, 100 * f.mean, 'o', color='black')
    error = 100 - 100 * np.array([k for k in c.curves if len(k) == len(c.curves[0])])
    epochs = np.arange(1, error.shape[1] + 1)
    mean = error.mean(axis=0)
    line, marker = STYLES[i % len(STYLES)]
    curves.plot(epochs, mean, color=f'C{i}', linestyle=line, marker=marker, markersize=5,
                markerfacecolor='none', label=f'{c.cell} {c.runner} (n={len(error)})')
    plotted.extend(mean)
    if len(error) > 1:
      half = stats.t.ppf(0.975, len(error) - 1) * error.std(axis=0, ddof=1) / math.sqrt(
          len(error))
      # A log axis has no 0, and no error exceeds 100%: a band wider than that is cut.
      low, high = np.maximum(mean - half, mean / 4), np.minimum(mean + half, 100.0)
      curves.fill_between(epochs, low, high, color=f'C{i}', alpha=0.15)
      plotted.extend(low)
      plotted.extend(high)
  dots.set_xticks(range(len(combos)), [f'{c.cell}\n{c.runner}' for c in combos])
  dots.set_ylabel('final test accuracy (%)')
  dots.set_title('each run (dots); mean and 95% CI (black)')
  dots.grid(axis='y', alpha=0.3)
  curves.set_xlabel('epoch')
  curves.xaxis.get_major_locator().set_params(integer=True)
  curves.set_yscale('log')
  positive = [v for v in plotted if v > 0]
  if positive:
    curves.set_ylim(min(positive) / 1.15, max(positive) * 1.15)
  for axis in (curves.yaxis.set_major_formatter, curves.yaxis.set_minor_formatter):
    axis(matplotlib.ticker.FormatStrFormatter('%g'))
  curves.set_ylabel('test error (%, log scale) = 100 - test accuracy')
  curves.set_title('mean test error per epoch, 95% band across seeds')
  curves.grid(which='both', alpha=0.3)
  curves.legend(loc='upper right', fontsize=8)
  fig.tight_layout()
  return fig


def comparison(report, path: str) -> None:
  fig = figure(report)
  fig.savefig(path, dpi=100)
  plt.close(fig)
