"""`--export`: a run's model (its latest checkpoint, or with early stopping its best
validation epoch's) as a SavedModel that any TensorFlow 2 can load.

The export holds `classifier.build_inference`'s graph: input `images` float32
[None, 28, 28] in 0..1, any batch size (whatever batch the trainer's graph was built
for); outputs `probabilities` [None, 10], `classes` int64 [None], and `last_output`
and `state_h` [None, units] so that states.h == outputs[-1] can be checked on the
exported model too. It is written to `<workdir>/saved_model/<step>/` under a
temporary name first and renamed when complete, so a half-written export never looks
like one. `--cell=fused_lstm` exports as LSTMCell's ops (the same variables): a
SavedModel holding the compiled kernels would need their library at every load, and
the point of an export is that it loads anywhere. `assets.extra/mnist_rnn.json`
records the model's settings and the step.

Beside it, `model.tflite` is the same model for TensorFlow Lite (LiteRT), with
builtin ops only, so it runs on a phone. It is always converted from the *static*
graph: the static and dynamic runners hold the same variables under the same names,
and a dynamic_rnn's while loop (its TensorList ops) does not lower to builtin ops.
Inputs and outputs as the SavedModel's (batch 1 until resized).
"""

import dataclasses
import json
import os
import shutil

from absl import logging

from mnist_rnn import checkpoints
from mnist_rnn import config as config_lib
from mnist_rnn import errors
from models import classifier
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

EXPORT_DIR = 'saved_model'
SIGNATURE = 'serving_default'
INFO_FILE = os.path.join('assets.extra', 'mnist_rnn.json')
TFLITE_FILE = 'model.tflite'
OUTPUTS = ('probabilities', 'classes', 'last_output', 'state_h')


def tflite_model(model: config_lib.ModelConfig, workdir: str) -> bytes:
  """`workdir`'s newest checkpoint as a TensorFlow Lite flatbuffer of builtin ops,
  converted from the static graph of `model` (whatever its runner)."""
  static = dataclasses.replace(model, runner='static', time_major=False)
  graph = tf.Graph()
  with tf1.Session(graph=graph) as session:
    inference, _ = restore_inference(session, graph, static, workdir)
    converter = tf1.lite.TFLiteConverter.from_session(
        session, [inference.images], [getattr(inference, k) for k in OUTPUTS])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with tf_env.caught_stderr_lines():  # the converter's MLIR chatter, not for users
      try:
        return converter.convert()
      except Exception as e:  # pylint: disable=broad-except  (the converter's own types)
        raise errors.ReportedError(f'--export: the TensorFlow Lite conversion of'
                                   f' {workdir} failed: {str(e).splitlines()[0][:300]}'
                                   ) from None


def _write_tflite(model, workdir, folder) -> str:
  """Writes `folder`/model.tflite whole or not at all."""
  path = os.path.join(folder, TFLITE_FILE)
  data = tflite_model(model, workdir)
  with open(path + '.tmp', 'wb') as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(path + '.tmp', path)
  return path


def exports(workdir: str) -> list:
  """The complete exports in `workdir`, newest (highest step) first."""
  folder = os.path.join(workdir, EXPORT_DIR)
  if not os.path.isdir(folder):
    return []
  steps = [int(n) for n in os.listdir(folder) if n.isdigit()
           and os.path.exists(os.path.join(folder, n, 'saved_model.pb'))]
  return [os.path.join(folder, str(s)) for s in sorted(steps, reverse=True)]


def restore_inference(session, graph, model: config_lib.ModelConfig, workdir: str):
  """Builds the inference graph of `model` in `graph` and restores `workdir`'s newest
  checkpoint that restores into it; returns (classifier.Inference, step).

  Raises:
    errors.NoCheckpoint: no checkpoint in `workdir`.
  """
  with graph.as_default():
    inference = classifier.build_inference(model)
    saver = tf1.train.Saver(tf1.global_variables())
    step = checkpoints.restore(session, saver, workdir)
  if step is None:
    raise errors.NoCheckpoint(f'--workdir={workdir}: no checkpoint to export')
  return inference, step


def export(config: config_lib.TrainConfig) -> str:
  """Exports the run's model (`config_lib.model_folder`: the latest checkpoint of
  `config.workdir`, or with early stopping the best validation epoch's) to
  `config.workdir`/saved_model/<its step>; returns the export's folder.

  An export of that step that exists already is kept as it is.
  """
  graph = tf.Graph()
  with tf1.Session(graph=graph) as session:
    source = config_lib.model_folder(config)
    inference, step = restore_inference(session, graph, config.model, source)
    target = os.path.join(config.workdir, EXPORT_DIR, str(step))
    if os.path.exists(os.path.join(target, 'saved_model.pb')):
      logging.info('%s exists already: the export of step %d', target, step)
      if not os.path.exists(os.path.join(target, TFLITE_FILE)):  # made before .tflite
        _write_tflite(config.model, source, target)
      return target
    partial = os.path.join(config.workdir, EXPORT_DIR, f'.partial-{step}-{os.getpid()}')
    try:
      with graph.as_default():
        builder = tf1.saved_model.Builder(partial)
        signature = tf1.saved_model.signature_def_utils.predict_signature_def(
            inputs={'images': inference.images},
            outputs={k: getattr(inference, k) for k in OUTPUTS})
        builder.add_meta_graph_and_variables(
            session, [tf1.saved_model.tag_constants.SERVING],
            signature_def_map={SIGNATURE: signature}, strip_default_attrs=True)
        builder.save()
      os.makedirs(os.path.join(partial, 'assets.extra'), exist_ok=True)
      with open(os.path.join(partial, INFO_FILE), 'w', encoding='utf-8') as f:
        json.dump({'step': step, 'model': dataclasses.asdict(config.model)}, f, indent=1)
      _write_tflite(config.model, source, partial)
      if os.path.exists(target):  # an incomplete folder of that name: replaced
        shutil.rmtree(target)
      os.rename(partial, target)
    except BaseException as e:
      shutil.rmtree(partial, ignore_errors=True)
      if isinstance(e, (OSError, tf.errors.OpError)) and errors.is_no_space(e):
        raise errors.NoSpace(f'no space left on the device of {config.workdir} while'
                             f' exporting step {step}; nothing was left behind') from None
      raise
  logging.info('exported step %d of %s to %s', step, source, target)
  return target


def read_info(export_dir: str) -> dict:
  """The settings an export was made with ({} for a SavedModel made elsewhere)."""
  path = os.path.join(export_dir, INFO_FILE)
  if not os.path.exists(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)
