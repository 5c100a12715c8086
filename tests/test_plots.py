"""comparison.png: the curve panel holds every epoch of every configuration, and
configurations whose curves coincide stay apart by line style and marker."""

import types

import numpy as np

from study import plots
from study import statistics


def _combination(cell, runner, curves):
  finals = [k[-1] for k in curves]
  return types.SimpleNamespace(cell=cell, runner=runner, final=statistics.summarize(finals),
                               by_seed=dict(enumerate(finals)), curves=curves)


def test_the_curves_panel_shows_every_point_and_coinciding_lines_apart():
  rng = np.random.default_rng(0)
  # Epoch 1 far below the finals (as in every real run), static = dynamic exactly.
  curves = [[0.93 + rng.uniform(0, 0.01), 0.975, 0.985, 0.9915 + rng.uniform(0, 0.001)]
            for _ in range(3)]
  report = types.SimpleNamespace(combinations=[
      _combination('lstm', 'static', curves), _combination('lstm', 'dynamic', curves),
      _combination('gru', 'static', [[0.92, 0.97, 0.98, 0.990]] * 3)])
  fig = plots.figure(report)
  try:
    curves_axis = fig.axes[1]
    low, high = curves_axis.get_ylim()
    lines = curves_axis.get_lines()
    assert len(lines) == 3
    for line in lines:
      y = line.get_ydata()
      assert len(y) == 4 and low < min(y) and max(y) < high  # epoch 1 included
    for band in curves_axis.collections:
      for path in band.get_paths():
        ys = path.vertices[:, 1]
        assert low <= ys.min() and ys.max() <= high
    styles = {(l.get_linestyle(), l.get_marker()) for l in lines}
    assert len(styles) == 3  # the two identical curves differ in style and marker
    assert curves_axis.get_yscale() == 'log'
  finally:
    plots.plt.close(fig)



def test_run_curves_draw_each_epoch_of_train_validation_and_test(tmp_path, capsys):
  import json  # pylint: disable=g-import-not-at-top
  from study import run_curves  # pylint: disable=g-import-not-at-top
  run = tmp_path / 'run'
  run.mkdir()
  with open(run / 'metrics.jsonl', 'w') as f:
    for epoch, (tr, va, te) in enumerate([(0.2, 0.23, 0.24), (0.5, 0.55, 0.54)], start=1):
      f.write(json.dumps({'epoch': epoch, 'train_accuracy': tr, 'validation_accuracy': va,
                          'test_accuracy': te, 'examples_per_sec': 300.0 + epoch,
                          'epoch_seconds': 1800.0, 'best_validation_accuracy': va,
                          'best_validation_epoch': epoch,
                          'test_accuracy_at_best_validation': te}) + '\n')
  fig = run_curves.figure([str(run)])
  try:
    (axis,) = fig.axes
    drawn = {l.get_label(): [round(float(y), 6) for y in l.get_ydata()]
             for l in axis.get_lines()}
    assert drawn == {'train': [20.0, 50.0], 'validation': [23.0, 55.0],
                     'test': [24.0, 54.0]}
    assert axis.get_title() == 'run (epoch 2: test 54.00%)'
  finally:
    plots.plt.close(fig)
  # Four runs: rows of three panels, in the order given; the last row's empty places hidden.
  fig = run_curves.figure([str(run)] * 4)
  try:
    shown = [a for a in fig.axes if a.get_visible()]
    assert len(fig.axes) == 6 and len(shown) == 4
    boxes = [a.get_position() for a in shown]
    assert boxes[0].y0 == boxes[1].y0 == boxes[2].y0 > boxes[3].y0
    assert boxes[0].x0 == boxes[3].x0 < boxes[1].x0 < boxes[2].x0
    assert all(a.get_title() == 'run (epoch 2: test 54.00%)' for a in shown)
  finally:
    plots.plt.close(fig)
  # A run stopped early: its model is the best validation epoch's, named and marked.
  stopped = tmp_path / 'stopped'
  stopped.mkdir()
  with open(stopped / 'metrics.jsonl', 'w') as f:
    for epoch, (va, te) in enumerate([(0.6, 0.61), (0.7, 0.68), (0.65, 0.71)], start=1):
      f.write(json.dumps({'epoch': epoch, 'train_accuracy': 0.5, 'validation_accuracy': va,
                          'test_accuracy': te, 'best_validation_accuracy': 0.7,
                          'best_validation_epoch': 2, 'test_accuracy_at_best_validation': 0.68,
                          **({'stopped_early': True} if epoch == 3 else {})}) + '\n')
  fig = run_curves.figure([str(stopped), str(run)])
  try:
    stopped_axis, plain_axis = fig.axes
    assert stopped_axis.get_title() == 'stopped (model: epoch 2 of 3, test 68.00%)'
    (marker,) = [l for l in stopped_axis.get_lines() if l.get_label() == 'its model (epoch 2)']
    assert list(marker.get_xdata()) == [2, 2]
    assert 'its model' not in ' '.join(l.get_label() for l in plain_axis.get_lines())
  finally:
    plots.plt.close(fig)
  assert run_curves.main([str(run), '--out', str(tmp_path / 'c.png')]) == 0
  assert (tmp_path / 'c.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  assert capsys.readouterr().out == str(tmp_path / 'c.png') + '\n'
  # --ymin: the axis starts there, so runs near 99% can be told apart.
  fig = run_curves.figure([str(run)], ymin=96.0)
  try:
    assert fig.axes[0].get_ylim() == (96.0, 100.0)
  finally:
    plots.plt.close(fig)
  assert run_curves.main([str(run), '--out', str(tmp_path / 'd.png'), '--ymin=100']) == 1
  assert capsys.readouterr().err == ('run_curves: error: --ymin=100: give a percentage in'
                                     ' [0, 100)\n')
  assert not (tmp_path / 'd.png').exists()
  assert run_curves.summary_table([str(run)]).splitlines()[2] == (
      '| run | 2 | 50.00% / 55.00% / 54.00% | 55.00% (2): 54.00% | 302 | 1.00 h |')
  assert run_curves.main([str(tmp_path / 'nope'), '--out', str(tmp_path / 'd.png')]) == 1
  assert 'no metrics.jsonl in' in capsys.readouterr().err
  # Epoch by epoch: validation / train at the epochs asked, '—' past the run's last.
  assert run_curves.epochs_table([str(run)], [1, 2, 5]).splitlines() == [
      '| run | epoch 1: validation / train | epoch 2: validation / train |'
      ' epoch 5: validation / train |', '|---|---|---|---|',
      '| run | 23.00% / 20.00% | 55.00% / 50.00% | — |']
  assert run_curves.main([str(run), '--out', str(tmp_path / 'e.png'),
                          '--at_epochs=1,x']) == 1
  assert '--at_epochs=1,x' in capsys.readouterr().err
