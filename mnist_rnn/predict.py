"""Classifies digit images with a trained model: a run folder or a SavedModel.

`open_model(path)` takes a run folder (its latest checkpoint, rebuilt from its
flags.txt; else its newest export), a SavedModel folder (an export) or an export's
model.tflite (run by TensorFlow Lite's interpreter); `inputs(args)`
turns image files, folders of them and IDX image files into 28x28 MNIST images;
`Model.probabilities` classifies a batch.
"""

import contextlib
import dataclasses
import gzip
import os
import sys
import tempfile
from typing import Iterator
import warnings

import numpy as np

from mnist_rnn import checkpoints
from mnist_rnn import digit_images
from mnist_rnn import errors
from mnist_rnn import export
from mnist_rnn import idx
from mnist_rnn import workdir as workdir_lib
from models import config as model_config
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1


class ModelError(errors.ReportedError):
  """--model names nothing that can classify."""


def model_config_from_flags(saved: dict) -> model_config.ModelConfig:
  """A ModelConfig from flags.txt values (strings), typed as its fields."""
  values = {}
  for field in dataclasses.fields(model_config.ModelConfig):
    if field.name in saved:
      text = saved[field.name]
      kind = type(field.default)
      values[field.name] = (text == 'true') if kind is bool else kind(text)
  return model_config.ModelConfig(**values)


class Model:
  """A session that maps images [n, 28, 28] in 0..1 to probabilities [n, 10]."""

  def __init__(self, path: str):
    self.graph = tf.Graph()
    self.session = tf1.Session(graph=self.graph)
    self.source = self._load(path)

  def _load(self, path: str) -> str:
    self._tflite = None
    if path.endswith('.tflite') and os.path.isfile(path):
      return self._load_tflite(path)
    if not os.path.isdir(path):
      raise ModelError(f'--model={path}: no such folder')
    if os.path.exists(os.path.join(path, 'saved_model.pb')):
      return self._load_export(path)
    saved = workdir_lib.read_saved_flags(path)
    newest_export = (export.exports(path) or [None])[0]
    if checkpoints.steps(path):
      if not saved:
        raise ModelError(f'--model={path}: holds checkpoints but no flags.txt to rebuild'
                         ' the model from')
      model = model_config_from_flags(saved)
      if newest_export:
        made_as = export.read_info(newest_export).get('model', {}).get('cell')
        if made_as and (model_config.checkpoint_family(made_as)
                        != model_config.checkpoint_family(model.cell)):
          raise ModelError(f'--model={path}: its export {newest_export} was made from a'
                           f' {made_as} run, its flags.txt says {model.cell}')
      self._signature = None
      self.inference, step = export.restore_inference(self.session, self.graph, model, path)
      return f'{path} (checkpoint of step {step}, {model.cell})'
    if newest_export:
      return self._load_export(newest_export)
    raise ModelError(f'--model={path}: no checkpoint or export there (a run folder or a'
                     ' SavedModel folder expected)')

  def _load_export(self, path: str) -> str:
    try:
      meta = tf1.saved_model.loader.load(self.session, [tf1.saved_model.tag_constants.SERVING],
                                         path)
    except (tf.errors.OpError, OSError, ValueError, RuntimeError) as e:
      message = str(getattr(e, 'message', e)).splitlines()[0][:200]
      raise ModelError(f'--model={path}: not a loadable SavedModel ({message})') from None
    if export.SIGNATURE not in meta.signature_def:
      raise ModelError(f'--model={path}: no {export.SIGNATURE} signature')
    signature = meta.signature_def[export.SIGNATURE]
    if 'images' not in signature.inputs or 'probabilities' not in signature.outputs:
      raise ModelError(f'--model={path}: its signature has no images input or'
                       ' probabilities output (not an export of this trainer)')
    get = self.graph.get_tensor_by_name
    self.inference = None
    self._signature = (get(signature.inputs['images'].name),
                       get(signature.outputs['probabilities'].name))
    return f'{path} (SavedModel)'

  def _load_tflite(self, path: str) -> str:
    with warnings.catch_warnings():  # tf.lite.Interpreter's notice of LiteRT
      warnings.simplefilter('ignore')
      try:
        self._tflite = tf.lite.Interpreter(model_path=path)
      except (ValueError, RuntimeError) as e:
        raise ModelError(f'--model={path}: not a TensorFlow Lite model'
                         f' ({str(e).splitlines()[0][:200]})') from None
    return f'{path} (TensorFlow Lite)'

  def _tflite_probabilities(self, images: np.ndarray) -> np.ndarray:
    it = self._tflite
    source = it.get_input_details()[0]['index']
    it.resize_tensor_input(source, list(images.shape))
    with _without_the_xnnpack_notice():
      it.allocate_tensors()
    it.set_tensor(source, np.asarray(images, np.float32))
    it.invoke()
    out = {d['name']: d['index'] for d in it.get_output_details()}
    return it.get_tensor(out['probabilities'])

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    if self._tflite is not None:
      return self._tflite_probabilities(images)
    images_in, probabilities = (self._signature if self._signature is not None else
                                (self.inference.images, self.inference.probabilities))
    return self.session.run(probabilities, {images_in: images})

  def close(self):
    self.session.close()


# TensorFlow Lite's C++ prints this when its default CPU delegate starts (the first
# allocate_tensors), on every prediction; it says nothing a user could act on.
XNNPACK_NOTICE = 'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.'


@contextlib.contextmanager
def _without_the_xnnpack_notice():
  """Catches what C++ writes to stderr (file descriptor 2) inside; passes all of it on
  but XNNPACK_NOTICE, so a real error from TensorFlow Lite still shows."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    try:
      yield
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      caught.seek(0)
      rest = [l for l in caught.read().decode('utf-8', 'replace').splitlines(True)
              if l.strip() != XNNPACK_NOTICE]
      if rest:
        sys.stderr.write(''.join(rest))
        sys.stderr.flush()


@dataclasses.dataclass
class Item:
  """One image to classify: its name, and the 28x28 image or why there is none."""
  name: str
  image: np.ndarray = None
  error: str = ''


def _is_idx(path: str) -> bool:
  try:
    with open(path, 'rb') as f:
      head = f.read(4)
      if head[:2] == b'\x1f\x8b':
        f.seek(0)
        head = gzip.GzipFile(fileobj=f).read(4)
  except (OSError, EOFError):
    return False
  return len(head) == 4 and head[:2] == b'\x00\x00' and head[2] == 0x08 and head[3] == 3


def inputs(paths, decoder: digit_images.Decoder) -> Iterator[Item]:
  """The images named by `paths`: files, folders (their files, sorted), IDX files.

  Yields an Item per image, with `error` set where an image cannot be used.
  """
  for path in paths:
    if os.path.isdir(path):
      names = sorted(n for n in os.listdir(path) if not n.startswith('.')
                     and os.path.isfile(os.path.join(path, n)))
      if not names:
        yield Item(path, error='an empty folder (no images)')
      for name in names:
        yield from inputs([os.path.join(path, name)], decoder)
    elif not os.path.exists(path):
      yield Item(path, error='no such file')
    elif _is_idx(path):
      def check(shape, dtype):
        if dtype != np.uint8 or len(shape) != 3 or shape[1:] != (28, 28):
          raise idx.IdxError(f'{path}: not IDX images of 28 x 28 bytes')
      try:
        images, _ = idx.read(path, check)
      except idx.IdxError as e:
        yield Item(path, error=str(e).split(': ', 1)[-1])
        continue
      for i, image in enumerate(images):
        yield Item(f'{path}[{i}]', image.astype(np.float32) / 255.0)
    else:
      try:
        yield Item(path, digit_images.to_mnist(decoder.gray(path), decoder.resize))
      except digit_images.ImageError as e:
        yield Item(path, error=str(e))
