"""Reads IDX files (the MNIST file format), gzipped or not, into numpy arrays.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order.
The header is read first and the data never past what it declares: a file that
decompresses to more than that (a gzip bomb, trailing bytes) is refused after
reading one byte beyond it, so memory stays bounded by the declared size.
"""

import gzip
import hashlib
import io
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
_CHUNK = 1 << 20


class IdxError(errors.ReportedError, ValueError):
  """An IDX file is missing, unreadable or malformed; the message names it."""


def _read_up_to(stream, n: int) -> bytes:
  """Up to `n` bytes of `stream`, fewer only at its end; read in chunks, so memory
  grows with what is actually there, not with `n`."""
  chunks, left = [], n
  while left > 0:
    chunk = stream.read(min(left, _CHUNK))
    if not chunk:
      break
    chunks.append(chunk)
    left -= len(chunk)
  return b''.join(chunks)


def _parse_stream(stream, name: str, check_header=None):
  """Parses one IDX file from a binary stream; returns (array, SHA-256 of its bytes)."""
  magic = _read_up_to(stream, 4)
  if len(magic) < 4:
    raise IdxError(f'{name}: truncated: {len(magic)} bytes, no IDX header')
  if magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
    raise IdxError(f'{name}: bad magic number 0x{magic.hex()} (not an IDX file)')
  dtype, ndim = _DTYPES[magic[2]], magic[3]
  dims = _read_up_to(stream, 4 * ndim)
  if ndim == 0 or len(dims) < 4 * ndim:
    raise IdxError(f'{name}: truncated header ({4 + len(dims)} bytes, {ndim} dims)')
  shape = tuple(int(d) for d in np.frombuffer(dims, '>u4'))
  if check_header is not None:
    check_header(shape, dtype.newbyteorder('='))
  header = 4 + 4 * ndim
  size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  body = _read_up_to(stream, size)
  if len(body) < size:
    raise IdxError(f'{name}: truncated: header says {shape} needs {header + size} bytes,'
                   f' file has {header + len(body)}')
  if stream.read(1):
    raise IdxError(f'{name}: trailing bytes: header says {shape} needs {header + size}'
                   ' bytes, file has more')
  digest = hashlib.sha256(magic + dims + body).hexdigest()
  array = np.frombuffer(body, dtype).reshape(shape)
  return array.astype(dtype.newbyteorder('='), copy=False), digest


def parse(data: bytes, name: str) -> np.ndarray:
  """Parses the bytes of one (uncompressed) IDX file.

  Raises:
    IdxError: bad magic number, unknown type, or a size that does not match the
      header (truncated file or trailing bytes).
  """
  return _parse_stream(io.BytesIO(data), name)[0]


def read(path: str, check_header=None):
  """Reads the IDX file at `path`, gzipped or not, within its declared size.

  Args:
    path: the file.
    check_header: optional function (shape, dtype) that raises if the header
      describes an array the caller cannot use; called before any data is read.

  Returns:
    (array in native byte order, SHA-256 hex of the decompressed bytes).

  Raises:
    IdxError: missing, unreadable, a broken gzip stream, or malformed (see `parse`).
  """
  name = os.path.basename(path)
  try:
    with open(path, 'rb') as raw:
      gzipped = raw.read(2) == b'\x1f\x8b'
      raw.seek(0)
      stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
      try:
        return _parse_stream(stream, name, check_header)
      except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise IdxError(f'{name}: corrupt gzip stream ({e})') from None
  except FileNotFoundError:
    raise IdxError(f'{path}: file not found') from None
  except IdxError:
    raise
  except OSError as e:
    raise IdxError(f'{path}: cannot read: {e.strerror or e}') from None
