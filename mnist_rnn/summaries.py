"""TensorBoard output of a run: per-epoch scalars, its flags for HParams, the graph.

Written with tf.compat.v1.summary.FileWriter into the run's workdir, so
`tensorboard --logdir runs` shows every run. Each run records its flags as an HParams
session, and the HParams dashboard takes each scalar's last value as that run's
metric: final test accuracy (`accuracy/test`), with a validation split the
validation accuracy and the test accuracy at the epoch it picked, examples/sec, build
seconds and the check, so `--compare`'s runs can be sorted and
filtered there.
"""

import glob
import os

from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1
# pylint: disable=g-import-not-at-top  (after tf_env: TensorFlow loads once, quietly)
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402
from tensorboard.plugins.hparams import summary_v2 as hparams_summary  # noqa: E402

# metrics.jsonl key -> TensorBoard tag.
SCALARS = {
    'train_loss': 'loss/train',
    'validation_loss': 'loss/validation',
    'test_loss': 'loss/test',
    'train_accuracy': 'accuracy/train',
    'test_accuracy': 'accuracy/test',
    'validation_accuracy': 'accuracy/validation',
    'test_accuracy_at_best_validation': 'accuracy/test_at_best_validation',
    'examples_per_sec': 'speed/train_examples_per_sec',
    'steady_examples_per_sec': 'speed/steady_train_examples_per_sec',
    'epoch_seconds': 'speed/epoch_seconds',
    'build_seconds': 'speed/build_seconds',
    'state_equals_output': 'check/state_h_equals_outputs_last',
    'state_output_max_abs_diff': 'check/state_h_vs_outputs_last_max_abs_diff',
    'c_h_max_abs_diff': 'check/c_vs_h_max_abs_diff',
    'learning_rate': 'optimizer/learning_rate',
}


class Writer:
  """One run's event file."""

  def __init__(self, logdir: str, graph=None):
    self._writer = tf1.summary.FileWriter(logdir, graph=graph)

  def hyperparameters(self, params: dict, trial_id: str) -> None:
    """Records the run's settings as an HParams session (once, when a run starts).

    Args:
      params: name -> bool, int, float or str.
      trial_id: the session's name in the dashboard (the run folder's name).
    """
    summary = hparams_summary.hparams_pb(params, trial_id=trial_id)
    self._writer.add_summary(summary.SerializeToString(), 0)
    self._writer.flush()

  def epoch(self, record: dict) -> None:
    """Logs one metrics.jsonl record's scalars at step = its epoch."""
    values = [tf1.Summary.Value(tag=tag, simple_value=float(record[key]))
              for key, tag in SCALARS.items() if record.get(key) is not None]
    self._writer.add_summary(tf1.Summary(value=values), record['epoch'])
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def read_scalars(logdir: str) -> dict:
  """Reads every event file in `logdir` back: {tag: {step: value}}."""
  scalars = {}
  for event in _events(logdir):
    for value in event.summary.value:
      if value.HasField('simple_value'):
        scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars


def _events(logdir: str):
  """Every event of `logdir`'s event files; a file cut short (a full disk, a kill) is
  read up to its last whole record."""
  for path in sorted(glob.glob(os.path.join(glob.escape(logdir), 'events.out.tfevents.*'))):
    try:
      yield from tf1.train.summary_iterator(path)
    except tf.errors.DataLossError:
      continue


def read_hparams(logdir: str) -> dict:
  """Reads the HParams session of `logdir`'s event files back: {name: value} ({} if
  none)."""
  values = {}
  for event in _events(logdir):
    for value in event.summary.value:
      if value.tag != hparams_metadata.SESSION_START_INFO_TAG:
        continue
      data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
      for name, v in data.session_start_info.hparams.items():
        values[name] = getattr(v, v.WhichOneof('kind'))
  return values
