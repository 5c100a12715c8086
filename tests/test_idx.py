"""IDX parsing: good files (gzipped or not) and each kind of bad file."""

import gzip
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_rnn import idx
from tests import idx_files


def test_parses_images_and_labels_round_trip():
  images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
  parsed = idx.parse(idx_files.idx_bytes(images), 'x')
  np.testing.assert_array_equal(parsed, images)
  labels = np.array([3, 1, 4], np.uint8)
  np.testing.assert_array_equal(idx.parse(idx_files.idx_bytes(labels), 'y'), labels)


def test_parses_big_endian_int32():
  values = np.array([[1, -2], [70000, 4]], np.int32)
  data = bytes([0, 0, 0x0C, 2]) + np.array([2, 2], '>u4').tobytes() + values.astype('>i4').tobytes()
  np.testing.assert_array_equal(idx.parse(data, 'i32'), values)


@pytest.mark.parametrize('gzipped', [True, False], ids=['gz', 'raw'])
def test_read_bytes_gzipped_or_not(tmp_path, gzipped):
  data = idx_files.idx_bytes(np.ones((3, 28, 28), np.uint8))
  path = idx_files.write(str(tmp_path / 'f'), data, gzipped)
  array, digest = idx.read(path)
  np.testing.assert_array_equal(array, np.ones((3, 28, 28), np.uint8))
  assert digest == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize('data, message', [
    (b'\x00\x00', 'truncated'),
    (b'\x12\x34\x08\x01' + b'\x00\x00\x00\x01' + b'\x05', 'bad magic number'),
    (b'\x00\x00\x07\x01' + b'\x00\x00\x00\x01' + b'\x05', 'bad magic number'),
    (b'\x00\x00\x08\x03' + b'\x00\x00\x00\x02', 'truncated header'),
    (idx_files.idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-1], 'truncated'),
    (idx_files.idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b'\x00', 'trailing bytes'),
], ids=['too-short', 'magic-nonzero', 'unknown-type', 'short-header', 'truncated-data',
        'trailing-bytes'])
def test_bad_files_name_the_file_and_problem(data, message):
  with pytest.raises(idx.IdxError, match=message) as e:
    idx.parse(data, 'bad-file')
  assert str(e.value).startswith('bad-file:')
  assert '\n' not in str(e.value)


def test_corrupt_gzip_stream(tmp_path):
  good = gzip.compress(idx_files.idx_bytes(np.zeros((50, 28, 28), np.uint8)))
  path = tmp_path / 'broken.gz'
  path.write_bytes(good[:len(good) // 2])
  with pytest.raises(idx.IdxError, match='broken.gz: corrupt gzip stream'):
    idx.read(str(path))


def test_missing_file(tmp_path):
  with pytest.raises(idx.IdxError, match='file not found'):
    idx.read(os.path.join(tmp_path, 'nope'))


def test_a_header_is_checked_before_its_data_is_read(tmp_path):
  path = idx_files.write(str(tmp_path / 'f'), idx_files.idx_bytes(np.ones((3, 14, 56), np.uint8)),
                         True)
  seen = []

  def refuse(shape, dtype):
    seen.append((shape, dtype))
    raise idx.IdxError('f: not 28 x 28')
  with pytest.raises(idx.IdxError, match='not 28 x 28'):
    idx.read(path, refuse)
  assert seen == [((3, 14, 56), np.dtype('u1'))]


def test_a_gzip_bomb_is_refused_within_the_declared_size(tmp_path):
  # A header for 1,000 images (784 KB), then 1 GB of zeros: under 5 MB compressed.
  path = tmp_path / 'bomb-idx3-ubyte.gz'
  with gzip.open(path, 'wb', compresslevel=1) as f:
    f.write(idx_files.idx_bytes(np.zeros((1000, 28, 28), np.uint8)))
    block = bytes(1 << 24)
    for _ in range(64):
      f.write(block)
  assert path.stat().st_size < 5 << 20
  # The peak from /proc (VmHWM starts anew at exec; ru_maxrss would carry the forking
  # pytest process's, TensorFlow included).
  code = ('import sys; sys.path.insert(0, sys.argv[2]); from mnist_rnn import idx\n'
          'try:\n  idx.read(sys.argv[1])\nexcept idx.IdxError as e:\n  print(e)\n'
          'status = open("/proc/self/status").read()\n'
          'print(int(status.split("VmHWM:")[1].split()[0]) // 1024)')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, '-c', code, str(path), root],
                          capture_output=True, text=True, timeout=120)
  message, peak_mb = result.stdout.splitlines()
  assert message.startswith('bomb-idx3-ubyte.gz: trailing bytes: header says (1000, 28, 28)')
  assert int(peak_mb) < 200  # the process as a whole; the file would be 1 GB
