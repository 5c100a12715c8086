"""Loads and validates the four MNIST IDX files of a folder (MNIST or Fashion-MNIST).

Images become float32 in [0, 1] with shape [examples, 28, 28] (row t of an image is
time step t of the RNN); labels become int64 in 0..9 with shape [examples].
"""

import dataclasses
import os

import numpy as np

from mnist_rnn import errors
from mnist_rnn import idx

# The bundled copy of MNIST (see data/mnist/README.md).
BUNDLED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'mnist')

FILES = {
    'train_images': 'train-images-idx3-ubyte',
    'train_labels': 'train-labels-idx1-ubyte',
    'test_images': 't10k-images-idx3-ubyte',
    'test_labels': 't10k-labels-idx1-ubyte',
}
CHECKSUMS_FILE = 'SHA256SUMS'
IMAGE_SIZE = 28
NUM_CLASSES = 10


class DataError(errors.ReportedError, ValueError):
  """The data folder or one of its files is unusable; the message names which."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One split: images [examples, 28, 28] float32 in [0, 1], labels [examples] int64."""
  images: np.ndarray
  labels: np.ndarray

  def __len__(self):
    return len(self.labels)

  def take(self, n: int) -> 'Split':
    """The first `n` examples (all of them when n is 0 or too large)."""
    if n <= 0 or n >= len(self):
      return self
    return Split(self.images[:n], self.labels[:n])


@dataclasses.dataclass(frozen=True)
class Mnist:
  train: Split
  test: Split


def _find(data_dir: str, base: str) -> str:
  for candidate in (base + '.gz', base):
    path = os.path.join(data_dir, candidate)
    if os.path.isfile(path):
      return path
  raise DataError(f'{data_dir}: missing {base}.gz (or {base})')


def _read_checksums(data_dir: str) -> dict:
  """Maps file name -> expected SHA-256 of its decompressed bytes ({} if no file)."""
  path = os.path.join(data_dir, CHECKSUMS_FILE)
  if not os.path.isfile(path):
    return {}
  sums = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      parts = line.split()
      if len(parts) == 2:
        sums[parts[1].lstrip('*')] = parts[0].lower()
  return sums


def _load_file(path: str, checksums: dict, kind: str) -> np.ndarray:
  def check_header(shape, dtype):
    # Before any data is read: a header that declares something else is refused
    # without reading what it declares.
    if dtype != np.uint8:
      raise DataError(f'{path}: expected unsigned bytes (type 0x08), got {dtype}')
    if kind == 'images' and (len(shape) != 3 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)):
      raise DataError(f'{path}: expected images of shape [n, 28, 28], got {list(shape)}'
                      ' (magic 0x00000803)')
    if kind == 'labels' and len(shape) != 1:
      raise DataError(f'{path}: expected a 1-D label file (magic 0x00000801), got'
                      f' shape {list(shape)}')

  array, digest = idx.read(path, check_header)
  name = os.path.basename(path)
  expected = checksums.get(name[:-3] if name.endswith('.gz') else name)
  if expected is not None and digest != expected:
    raise DataError(f'{path}: SHA-256 of the decompressed bytes does not match'
                    f' {CHECKSUMS_FILE} (corrupt or different file)')
  return array


def _load_split(data_dir: str, prefix: str, checksums: dict) -> Split:
  images_path = _find(data_dir, FILES[prefix + '_images'])
  labels_path = _find(data_dir, FILES[prefix + '_labels'])
  images = _load_file(images_path, checksums, 'images')
  labels = _load_file(labels_path, checksums, 'labels')
  if len(images) != len(labels):
    raise DataError(f'{labels_path}: {len(labels)} labels for {len(images)} images'
                    f' in {os.path.basename(images_path)}')
  if len(labels) == 0:
    raise DataError(f'{images_path}: holds no examples')
  if labels.max() >= NUM_CLASSES:
    bad = int(np.argmax(labels >= NUM_CLASSES))
    raise DataError(f'{labels_path}: label {int(labels[bad])} at index {bad} is'
                    ' outside 0..9')
  return Split(images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64))


def hold_out(train: Split, validation_examples: int) -> tuple:
  """Splits the last `validation_examples` examples off `train`.

  Returns:
    (the rest, the validation split); with 0, (train, an empty Split).

  Raises:
    DataError: no training example would be left.
  """
  if validation_examples >= len(train):
    raise DataError(f'--validation_examples={validation_examples} leaves no training'
                    f' example of the {len(train)}')
  cut = len(train) - validation_examples
  return (Split(train.images[:cut], train.labels[:cut]),
          Split(train.images[cut:], train.labels[cut:]))


def load(data_dir: str = '') -> Mnist:
  """Reads, checks and normalises the four IDX files in `data_dir` ('' = the bundled copy).

  Files may be gzipped (`NAME.gz`) or not (`NAME`). When the folder has a
  `SHA256SUMS` file (the bundled copy does), each file's decompressed bytes are
  checked against it.

  Raises:
    DataError (or idx.IdxError, also a ValueError): a one-line message naming the
      folder or file and what is wrong with it.
  """
  data_dir = data_dir or BUNDLED_DIR
  if not os.path.isdir(data_dir):
    raise DataError(f'{data_dir}: data folder does not exist')
  checksums = _read_checksums(data_dir)
  return Mnist(train=_load_split(data_dir, 'train', checksums),
               test=_load_split(data_dir, 'test', checksums))
