"""Writes small IDX files (and MNIST-style folders) for the reader tests."""

import gzip
import hashlib
import os
import struct

import numpy as np


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
  header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
  return header + np.ascontiguousarray(array).astype('>u1' if type_code == 0x08 else array.dtype).tobytes()


def write(path: str, data: bytes, gzipped: bool) -> str:
  if gzipped:
    path += '.gz'
    data = gzip.compress(data)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def make_folder(folder: str, n_train: int = 64, n_test: int = 32, gzipped: bool = True,
                seed: int = 0, checksums: bool = False, **overrides) -> dict:
  """Writes the four MNIST files into `folder`; `overrides` replaces a file's bytes.

  Returns the arrays written, by key (train_images, ...).
  """
  rng = np.random.default_rng(seed)
  arrays = {
      'train_images': rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
      'train_labels': rng.integers(0, 10, n_train, dtype=np.uint8),
      'test_images': rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
      'test_labels': rng.integers(0, 10, n_test, dtype=np.uint8),
  }
  names = {'train_images': 'train-images-idx3-ubyte', 'train_labels': 'train-labels-idx1-ubyte',
           'test_images': 't10k-images-idx3-ubyte', 'test_labels': 't10k-labels-idx1-ubyte'}
  os.makedirs(folder, exist_ok=True)
  sums = []
  for key, name in names.items():
    data = overrides.get(key, idx_bytes(arrays[key]))
    write(os.path.join(folder, name), data, gzipped)
    sums.append(f'{hashlib.sha256(data).hexdigest()}  {name}\n')
  if checksums:
    with open(os.path.join(folder, 'SHA256SUMS'), 'w') as f:
      f.writelines(sums)
  return arrays
