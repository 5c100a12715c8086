"""Parses IDX files (the MNIST file format), gzipped or not, into numpy arrays.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order.
"""

import gzip
import hashlib
import os
import zlib

import numpy as np

from mnist_rnn import errors

# Type codes of the IDX format, mapped to big-endian numpy dtypes.
_DTYPES = {
    0x08: np.dtype('u1'),
    0x09: np.dtype('i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}


class IdxError(errors.ReportedError, ValueError):
  """An IDX file is missing, unreadable or malformed; the message names it."""


def read_bytes(path: str) -> bytes:
  """Returns the (decompressed, if gzipped) bytes of `path`.

  Raises:
    IdxError: the file is missing, unreadable, or a broken gzip stream.
  """
  name = os.path.basename(path)
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except FileNotFoundError:
    raise IdxError(f'{path}: file not found') from None
  except OSError as e:
    raise IdxError(f'{path}: cannot read: {e.strerror or e}') from None
  if raw[:2] != b'\x1f\x8b':
    return raw
  try:
    return gzip.decompress(raw)
  except (OSError, EOFError, zlib.error) as e:
    raise IdxError(f'{name}: corrupt gzip stream ({e})') from None


def sha256_hex(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def parse(data: bytes, name: str) -> np.ndarray:
  """Parses the bytes of one IDX file.

  Args:
    data: the whole (decompressed) file.
    name: the file's name, used in error messages.

  Returns:
    An array of the file's shape, in native byte order.

  Raises:
    IdxError: bad magic number, unknown type, or a size that does not match the
      header (truncated file or trailing bytes).
  """
  if len(data) < 4:
    raise IdxError(f'{name}: truncated: {len(data)} bytes, no IDX header')
  if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
    raise IdxError(
        f'{name}: bad magic number 0x{data[:4].hex()} (not an IDX file)')
  dtype, ndim = _DTYPES[data[2]], data[3]
  header = 4 + 4 * ndim
  if ndim == 0 or len(data) < header:
    raise IdxError(f'{name}: truncated header ({len(data)} bytes, {ndim} dims)')
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', ndim, offset=4))
  expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) != expected:
    what = 'truncated' if len(data) < expected else 'trailing bytes'
    raise IdxError(f'{name}: {what}: header says {shape} needs {expected} bytes,'
                   f' file has {len(data)}')
  array = np.frombuffer(data, dtype, offset=header).reshape(shape)
  return array.astype(dtype.newbyteorder('='), copy=False)
