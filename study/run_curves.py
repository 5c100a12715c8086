"""The learning curves of run folders as one picture: train, validation and test accuracy
per epoch, a panel per run, from each folder's metrics.jsonl (no TensorFlow).

  python -m study.run_curves docs/runs/sequential_mnist docs/runs/permuted_mnist \
      --out docs/sequential_mnist_curves.png --table

--at_epochs=1,10,20 also prints the validation (and train) accuracy of each run at those
epochs: runs of one schedule compared epoch by epoch, an unfinished one among them.
"""

import argparse
import os
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

from mnist_rnn import metrics_log  # noqa: E402

CURVES = (('train_accuracy', 'train', '-'), ('validation_accuracy', 'validation', '--'),
          ('test_accuracy', 'test', ':'))


def figure(folders: list, columns: int = 3, ymin: float = 0.0):
  """A Figure with one panel per run folder, in rows of at most `columns` panels (in the
  order given, row by row; the unused places of the last row left blank); each panel's
  title names the folder and its last epoch's test accuracy, or, for a run stopped early
  (--early_stopping_patience), its model's epoch (a vertical line) and test accuracy.
  The accuracy axis runs from `ymin` to 100% (points below it are cut off)."""
  cols = min(columns, len(folders))
  rows = -(-len(folders) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), squeeze=False)
  for ax in axes.flat[len(folders):]:
    ax.set_visible(False)
  for ax, folder in zip(axes.flat, folders):
    records = metrics_log.read(os.path.join(folder, metrics_log.FILE_NAME))
    epochs = [r['epoch'] for r in records]
    for key, label, style in CURVES:
      points = [(r['epoch'], 100 * r[key]) for r in records if r.get(key) is not None]
      if points:
        ax.plot(*zip(*points), linestyle=style, marker='.', label=label)
    name = os.path.basename(os.path.normpath(folder))
    last = (f'epoch {epochs[-1]}: test {100 * records[-1]["test_accuracy"]:.2f}%'
            if records else 'no epoch yet')
    if records and records[-1].get('stopped_early'):
      # Early stopping: the run's model is the best validation epoch's, not the last.
      best = records[-1]['best_validation_epoch']
      ax.axvline(best, color='grey', linewidth=0.8, label=f'its model (epoch {best})')
      last = (f'model: epoch {best} of {epochs[-1]}, test'
              f' {100 * records[-1]["test_accuracy_at_best_validation"]:.2f}%')
    ax.set_title(f'{name} ({last})')
    ax.set_xlabel('epoch')
    ax.set_ylabel('accuracy (%)')
    ax.set_ylim(ymin, 100)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(loc='best')
  fig.tight_layout()
  return fig


def summary_table(folders: list) -> str:
  """A Markdown row per run folder: its epochs, final accuracies, the epoch validation
  picked and the test accuracy there, the median epoch speed and the summed time of
  its epochs (training and evaluation; the graph builds and process starts aside)."""
  lines = ['| run | epochs | final train / validation / test acc | best validation (epoch):'
           ' test acc there | median ex/s | time of the epochs |',
           '|---|---|---|---|---|---|']
  for folder in folders:
    records = metrics_log.read(os.path.join(folder, metrics_log.FILE_NAME))
    last = records[-1]
    speeds = sorted(r['examples_per_sec'] for r in records)
    seconds = sum(r['epoch_seconds'] for r in records)
    best = (f'{100 * last["best_validation_accuracy"]:.2f}% ({last["best_validation_epoch"]}):'
            f' {100 * last["test_accuracy_at_best_validation"]:.2f}%'
            if 'best_validation_epoch' in last else 'no validation split')
    lines.append(
        f'| {os.path.basename(os.path.normpath(folder))} | {last["epoch"]} |'
        f' {100 * last["train_accuracy"]:.2f}% / {100 * last.get("validation_accuracy", float("nan")):.2f}%'
        f' / {100 * last["test_accuracy"]:.2f}% | {best} | {speeds[len(speeds) // 2]:,.0f} |'
        f' {seconds / 3600:.2f} h |')
  return '\n'.join(lines) + '\n'


def epochs_table(folders: list, epochs: list) -> str:
  """A Markdown row per run folder: validation / train accuracy at each of `epochs`
  ('—' where the run has not reached one)."""
  lines = ['| run | ' + ' | '.join(f'epoch {e}: validation / train' for e in epochs) + ' |',
           '|---|' + '---|' * len(epochs)]
  for folder in folders:
    by_epoch = {r['epoch']: r for r in metrics_log.read(
        os.path.join(folder, metrics_log.FILE_NAME))}
    cells = [f'{100 * by_epoch[e].get("validation_accuracy", float("nan")):.2f}% /'
             f' {100 * by_epoch[e]["train_accuracy"]:.2f}%' if e in by_epoch else '—'
             for e in epochs]
    lines.append(f'| {os.path.basename(os.path.normpath(folder))} | ' + ' | '.join(cells)
                 + ' |')
  return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('folders', nargs='+', help='run folders (each with metrics.jsonl)')
  parser.add_argument('--out', required=True, help='the PNG to write')
  parser.add_argument('--table', action='store_true',
                      help='also print a Markdown summary row per run on stdout')
  parser.add_argument('--at_epochs', default='',
                      help='comma-separated epochs: also print each run\'s validation'
                      ' and train accuracy at them (a Markdown table)')
  parser.add_argument('--ymin', type=float, default=0.0,
                      help='the accuracy axis starts here (%%), e.g. 96 to tell the last'
                      ' epochs of runs near 99%% apart')
  args = parser.parse_args(argv)
  if not 0.0 <= args.ymin < 100.0:
    sys.stderr.write(f'run_curves: error: --ymin={args.ymin:g}: give a percentage in'
                     ' [0, 100)\n')
    return 1
  missing = [f for f in args.folders
             if not os.path.exists(os.path.join(f, metrics_log.FILE_NAME))]
  if missing:
    sys.stderr.write(f'run_curves: error: no {metrics_log.FILE_NAME} in'
                     f' {", ".join(missing)}\n')
    return 1
  fig = figure(args.folders, ymin=args.ymin)
  fig.savefig(args.out, dpi=100)
  plt.close(fig)
  print(args.out)
  if args.table:
    print(summary_table(args.folders), end='')
  if args.at_epochs:
    try:
      epochs = [int(e) for e in args.at_epochs.split(',')]
    except ValueError:
      sys.stderr.write(f'run_curves: error: --at_epochs={args.at_epochs}: give epochs as'
                       ' whole numbers, e.g. 1,10,20\n')
      return 1
    print(epochs_table(args.folders, epochs), end='')
  return 0


if __name__ == '__main__':
  sys.exit(main())
