"""TensorBoard output of a run: per-epoch scalars, the hyperparameters as text, the graph.

Written with tf.compat.v1.summary.FileWriter into the run's workdir, so
`tensorboard --logdir <workdir>` (or the parent of several workdirs) shows it.
"""

import glob
import os

import numpy as np

from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

# metrics.jsonl key -> TensorBoard tag.
SCALARS = {
    'train_loss': 'loss/train',
    'test_loss': 'loss/test',
    'train_accuracy': 'accuracy/train',
    'test_accuracy': 'accuracy/test',
    'examples_per_sec': 'speed/train_examples_per_sec',
    'state_output_max_abs_diff': 'check/state_h_vs_outputs_last_max_abs_diff',
    'learning_rate': 'optimizer/learning_rate',
}


class Writer:
  """One run's event file."""

  def __init__(self, logdir: str, graph=None):
    self._writer = tf1.summary.FileWriter(logdir, graph=graph)

  def hyperparameters(self, params: dict) -> None:
    """Logs the run's settings as a markdown table in TensorBoard's Text tab."""
    rows = ['| setting | value |', '|---|---|']
    rows += [f'| {k} | {v} |' for k, v in sorted(params.items())]
    tensor = tf1.make_tensor_proto(np.array('\n'.join(rows), dtype=object))
    metadata = tf1.SummaryMetadata(
        plugin_data=tf1.SummaryMetadata.PluginData(plugin_name='text'))
    value = tf1.Summary.Value(tag='hyperparameters/text_summary', metadata=metadata,
                              tensor=tensor)
    self._writer.add_summary(tf1.Summary(value=[value]), 0)
    self._writer.flush()

  def epoch(self, record: dict) -> None:
    """Logs one metrics.jsonl record's scalars at step = its epoch."""
    values = [tf1.Summary.Value(tag=tag, simple_value=float(record[key]))
              for key, tag in SCALARS.items() if key in record]
    self._writer.add_summary(tf1.Summary(value=values), record['epoch'])
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def read_scalars(logdir: str) -> dict:
  """Reads every event file in `logdir` back: {tag: {step: value}} (for tests)."""
  scalars = {}
  for path in sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))):
    for event in tf1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.HasField('simple_value'):
          scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars
