"""A comparison's experiment for TensorBoard's HParams dashboard.

Without one, TensorBoard infers the experiment from every run: each flag of the run
becomes a column (33, of which a comparison varies 3 or 4), and each scalar tag a
metric, so a run that lacks a tag drops out of the parallel-coordinates view. The
comparison writes one into `<folder>/hparams_experiment/`: the hyperparameters that
differ between its runs, and the metrics every run has, so `tensorboard
--logdir=<folder>` shows each run once, in every view. (TensorBoard reads one such
experiment per --logdir: pointed at a folder holding several comparisons it picks one.)

The runs' event files are read with the record format and protobufs that TensorBoard
ships, and the experiment written with its record writer: no TensorFlow, so a
comparison's own process never loads it (a report answers in a second).
"""

import glob
import os
import shutil
import socket
import struct
import time

from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import metadata
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.summary.writer import record_writer

FOLDER = 'hparams_experiment'


def _records(path: str):
  """The records of one TFRecord file (8-byte length, 4-byte CRC, data, 4-byte CRC);
  a file cut short is read up to its last whole record."""
  with open(path, 'rb') as f:
    data = f.read()
  at = 0
  while at + 12 <= len(data):
    (length,) = struct.unpack('<Q', data[at:at + 8])
    if at + 12 + length + 4 > len(data):
      return
    yield data[at + 12:at + 12 + length]
    at += 12 + length + 4


def read_run(run_folder: str) -> tuple:
  """(the run's HParams session {name: value}, the set of its scalar tags)."""
  hparams, scalars = {}, set()
  for path in sorted(glob.glob(os.path.join(glob.escape(run_folder),
                                            'events.out.tfevents.*'))):
    for record in _records(path):
      event = event_pb2.Event.FromString(record)
      for value in event.summary.value:
        if value.tag == metadata.SESSION_START_INFO_TAG:
          info = plugin_data_pb2.HParamsPluginData.FromString(
              value.metadata.plugin_data.content).session_start_info
          hparams.update((k, getattr(v, v.WhichOneof('kind'))) for k, v in
                         info.hparams.items())
        elif value.HasField('simple_value'):
          scalars.add(value.tag)
  return hparams, scalars


def experiment(runs: dict) -> tuple:
  """From {run name: (hparams, scalar tags)}: (the hparams that differ between the
  runs, each with its values seen, in the order first seen; the scalar tags every run
  has, sorted)."""
  sessions = [h for h, _ in runs.values() if h]
  names = []
  for h in sessions:
    names.extend(n for n in h if n not in names)
  differing = {}
  for name in names:
    values = []
    for h in sessions:
      value = h.get(name)
      if value not in values:
        values.append(value)
    if len(values) > 1:
      differing[name] = values
  tag_sets = [tags for h, tags in runs.values() if h]
  common = sorted(set.intersection(*tag_sets)) if tag_sets else []
  return differing, common


def _domain(values: list):
  present = [v for v in values if v is not None]
  if all(isinstance(v, str) for v in present) or all(isinstance(v, bool) for v in present):
    return hparams_summary.Discrete(sorted(present))
  if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
    return hparams_summary.Discrete(sorted(float(v) for v in present))
  return None


def write(folder: str, run_names: list) -> str:
  """Writes the experiment of the comparison in `folder` whose runs are the subfolders
  `run_names` (replacing the one written before); returns its folder ('' when no run
  has an HParams session yet)."""
  runs = {name: read_run(os.path.join(folder, name)) for name in run_names}
  differing, metrics = experiment(runs)
  if not any(h for h, _ in runs.values()):
    return ''
  target = os.path.join(folder, FOLDER)
  shutil.rmtree(target, ignore_errors=True)
  os.makedirs(target)
  summary = hparams_summary.hparams_config_pb(
      hparams=[hparams_summary.HParam(name, _domain(values))
               for name, values in differing.items()],
      metrics=[hparams_summary.Metric(tag) for tag in metrics])
  # One event file as TensorBoard's EventFileWriter names and starts it, written with
  # its RecordWriter on a plain file: EventFileWriter opens files through
  # tensorboard.compat.tf, which imports TensorFlow when it is installed (seconds).
  name = f'events.out.tfevents.{int(time.time())}.{socket.gethostname()}'
  with open(os.path.join(target, name), 'wb') as f:
    records = record_writer.RecordWriter(f)
    for event in (event_pb2.Event(file_version='brain.Event:2'),
                  event_pb2.Event(summary=summary)):
      event.wall_time = time.time()
      records.write(event.SerializeToString())
  return target
