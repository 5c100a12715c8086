"""Turns a picture of a digit (PNG, JPEG, BMP, GIF) into a 28x28 image as MNIST made them.

MNIST's digits are light ink on a dark background, the ink's bounding box scaled so
its longer side is 20 pixels (keeping the aspect ratio), placed in a 28x28 field so
that the ink's centre of mass is at the centre. A photo or a drawing is usually dark
ink on light paper, of any size and anywhere in the frame; `to_mnist` converts it:
grayscale, inverted when the border is light (paper), the paper's level subtracted,
cropped to the ink, scaled, centred by centre of mass, 0..1.

Decoding and resizing use TensorFlow's own ops (`tf.io.decode_image`,
`tf.image.resize`): no other image library. A file is checked before it is decoded:
its size on disk, and the width and height its header declares, so a small file that
would decode to gigabytes is refused.
"""

import struct

import numpy as np

from mnist_rnn import errors
from models import tf_env

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

FIELD, BOX = 28, 20          # MNIST's field and the ink box's longer side
MAX_FILE_BYTES = 50 << 20    # larger files are refused before they are read
MAX_PIXELS = 40_000_000      # larger declared images are refused before decoding


class ImageError(errors.ReportedError):
  """One image cannot be used; the message names the problem (the caller the file)."""


def declared_size(data: bytes):
  """(height, width) from a PNG, GIF or BMP header; None for other formats."""
  if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) >= 24:
    width, height = struct.unpack('>II', data[16:24])
    return height, width
  if data[:6] in (b'GIF87a', b'GIF89a') and len(data) >= 10:
    width, height = struct.unpack('<HH', data[6:10])
    return height, width
  if data[:2] == b'BM' and len(data) >= 26:
    width, height = struct.unpack('<ii', data[18:26])
    return abs(height), abs(width)
  return None


class Decoder:
  """Decodes image files and resizes arrays with TensorFlow ops, in one small graph."""

  def __init__(self):
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._data = tf1.placeholder(tf.string, [])
      self._decoded = tf.io.decode_image(self._data, expand_animations=False)
      self._jpeg_shape = tf.io.extract_jpeg_shape(self._data)
      self._image = tf1.placeholder(tf.float32, [None, None])
      self._size = tf1.placeholder(tf.int32, [2])
      self._resized = tf.image.resize(self._image[:, :, None], self._size,
                                      method='area')[:, :, 0]
    self._session = tf1.Session(graph=self._graph)

  def gray(self, path: str) -> np.ndarray:
    """The file at `path` as grayscale [height, width] float32 in 0..255 (transparent
    pixels count as white paper).

    Raises:
      ImageError: unreadable, empty, too large, not an image, or of zero size.
    """
    try:
      with open(path, 'rb') as f:
        data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
      raise ImageError(f'cannot read: {e.strerror or e}') from None
    if not data:
      raise ImageError('empty file')
    if len(data) > MAX_FILE_BYTES:
      raise ImageError(f'larger than {MAX_FILE_BYTES >> 20} MB')
    size = declared_size(data)
    if size is None and data[:2] == b'\xff\xd8':
      try:
        size = tuple(self._session.run(self._jpeg_shape, {self._data: data})[:2])
      except tf.errors.OpError:
        raise ImageError('not a readable JPEG') from None
    if size is not None and size[0] * size[1] > MAX_PIXELS:
      raise ImageError(f'declares {size[1]} x {size[0]} pixels, more than'
                       f' {MAX_PIXELS:,}')
    if size is not None and 0 in size:
      raise ImageError('an image of zero size')
    try:
      pixels = self._session.run(self._decoded, {self._data: data})
    except tf.errors.OpError:
      raise ImageError('not an image (PNG, JPEG, BMP or GIF expected)') from None
    if pixels.size == 0:
      raise ImageError('an image of zero size')
    return to_gray(pixels)

  def resize(self, image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-averaged resize of [h, w] float32 to [height, width]."""
    return self._session.run(self._resized, {self._image: image,
                                             self._size: [height, width]})

  def close(self):
    self._session.close()


def to_gray(pixels: np.ndarray) -> np.ndarray:
  """[h, w, channels] uint8 (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) -> [h, w] float32
  in 0..255; transparent parts become white paper."""
  pixels = pixels.astype(np.float32)
  channels = pixels.shape[2]
  alpha = pixels[:, :, -1:] / 255.0 if channels in (2, 4) else None
  color = pixels[:, :, :channels - 1] if alpha is not None else pixels
  gray = (color[:, :, 0] if color.shape[2] == 1
          else color[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32))
  if alpha is not None:
    gray = gray * alpha[:, :, 0] + 255.0 * (1.0 - alpha[:, :, 0])
  return gray


def to_mnist(gray: np.ndarray, resize) -> np.ndarray:
  """Converts a grayscale digit picture to an MNIST image.

  Args:
    gray: [height, width] in 0..255, ink darker or lighter than its background.
    resize: function (image [h, w], height, width) -> [height, width].

  Returns:
    [28, 28] float32 in 0..1: light ink on black, its box's longer side 20 pixels,
    its centre of mass at the centre.

  Raises:
    ImageError: no ink (an image of one colour).
  """
  gray = np.asarray(gray, np.float32)
  edge = max(1, min(gray.shape) // 20)
  border = np.concatenate([gray[:edge].ravel(), gray[-edge:].ravel(),
                           gray[:, :edge].ravel(), gray[:, -edge:].ravel()])
  paper = float(np.median(border))
  if paper > 127.5:  # dark ink on light paper: invert, as MNIST's ink is light
    gray, paper = 255.0 - gray, 255.0 - paper
  top = float(gray.max())
  if top - paper < 32:
    raise ImageError('no ink found (the image is one shade)')
  ink = np.clip((gray - paper) / (top - paper), 0.0, 1.0)
  rows, cols = np.nonzero(ink > 0.2)
  ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
  height, width = ink.shape
  scale = BOX / max(height, width)
  height, width = max(1, round(height * scale)), max(1, round(width * scale))
  small = np.clip(resize(ink, height, width), 0.0, 1.0)
  # Place the box so that its centre of mass falls on the field's centre.
  mass = small.sum()
  cy = (small.sum(axis=1) @ np.arange(height)) / mass
  cx = (small.sum(axis=0) @ np.arange(width)) / mass
  y0 = int(np.clip(round(FIELD / 2 - 0.5 - cy), 0, FIELD - height))
  x0 = int(np.clip(round(FIELD / 2 - 0.5 - cx), 0, FIELD - width))
  field = np.zeros((FIELD, FIELD), np.float32)
  field[y0:y0 + height, x0:x0 + width] = small
  return field / field.max()


def as_text(image: np.ndarray) -> str:
  """A 28x28 image in 0..1 as 28 lines of characters, darker to lighter ink."""
  shades = ' .:-=+*#%@'
  index = np.minimum((np.asarray(image) * len(shades)).astype(int), len(shades) - 1)
  return '\n'.join(''.join(shades[i] * 2 for i in row).rstrip() for row in index)
