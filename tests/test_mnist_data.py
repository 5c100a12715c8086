"""Loading a data folder: the bundled copy, any MNIST-format folder, and bad folders."""

import os
import shutil

import numpy as np
import pytest

from mnist_rnn import idx
from mnist_rnn import mnist_data
from tests import idx_files


def test_bundled_copy_matches_the_published_facts():
  data = mnist_data.load()  # also verifies SHA256SUMS
  assert data.train.images.shape == (60000, 28, 28)
  assert data.test.images.shape == (10000, 28, 28)
  assert data.train.images.dtype == np.float32 and data.train.labels.dtype == np.int64
  assert 0.0 <= data.train.images.min() and data.train.images.max() <= 1.0
  assert list(data.train.labels[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
  assert list(data.test.labels[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
  assert list(np.bincount(data.test.labels)) == [980, 1135, 1032, 1010, 982, 892, 958,
                                                 1028, 974, 1009]
  assert abs(float(data.train.images.mean()) * 255 - 33.318) < 1e-3


@pytest.mark.parametrize('gzipped', [True, False], ids=['gz', 'raw'])
def test_any_folder_in_the_format_loads(tmp_path, gzipped):
  arrays = idx_files.make_folder(str(tmp_path), gzipped=gzipped, checksums=True)
  data = mnist_data.load(str(tmp_path))
  np.testing.assert_allclose(data.train.images * 255, arrays['train_images'], atol=1e-4)
  np.testing.assert_array_equal(data.test.labels, arrays['test_labels'])
  assert len(data.train.take(10)) == 10 and len(data.train.take(0)) == 64


def _error(folder):
  with pytest.raises(ValueError) as e:
    mnist_data.load(folder)
  assert '\n' not in str(e.value)
  return str(e.value)


def test_missing_folder(tmp_path):
  assert 'does not exist' in _error(str(tmp_path / 'nowhere'))


def test_missing_file(tmp_path):
  idx_files.make_folder(str(tmp_path))
  os.remove(tmp_path / 't10k-labels-idx1-ubyte.gz')
  assert 'missing t10k-labels-idx1-ubyte' in _error(str(tmp_path))


def test_label_count_differs_from_image_count(tmp_path):
  idx_files.make_folder(str(tmp_path), train_labels=idx_files.idx_bytes(np.zeros(63, np.uint8)))
  message = _error(str(tmp_path))
  assert 'train-labels-idx1-ubyte.gz' in message and '63 labels for 64 images' in message


def test_label_outside_0_to_9(tmp_path):
  labels = np.zeros(32, np.uint8)
  labels[7] = 12
  idx_files.make_folder(str(tmp_path), test_labels=idx_files.idx_bytes(labels))
  assert 'label 12 at index 7 is outside 0..9' in _error(str(tmp_path))


def test_wrong_image_dimensions(tmp_path):
  idx_files.make_folder(str(tmp_path),
                        train_images=idx_files.idx_bytes(np.zeros((64, 28, 27), np.uint8)))
  assert 'expected images of shape [n, 28, 28], got [64, 28, 27]' in _error(str(tmp_path))


def test_labels_file_in_images_place(tmp_path):
  idx_files.make_folder(str(tmp_path), test_images=idx_files.idx_bytes(np.zeros(32, np.uint8)))
  assert 't10k-images-idx3-ubyte.gz: expected images' in _error(str(tmp_path))


def test_checksum_mismatch_names_the_file(tmp_path):
  for name in os.listdir(mnist_data.BUNDLED_DIR):
    if name.endswith('.gz') or name == 'SHA256SUMS':
      shutil.copy(os.path.join(mnist_data.BUNDLED_DIR, name), tmp_path)
  # A valid IDX file with different content: only the checksum can catch it.
  idx_files.write(str(tmp_path / 't10k-labels-idx1-ubyte'),
                  idx_files.idx_bytes(np.zeros(10000, np.uint8)), gzipped=True)
  assert 't10k-labels-idx1-ubyte.gz: SHA-256' in _error(str(tmp_path))


def test_truncated_file_in_folder(tmp_path):
  good = idx_files.idx_bytes(np.zeros((64, 28, 28), np.uint8))
  idx_files.make_folder(str(tmp_path), train_images=good[:-100])
  with pytest.raises(idx.IdxError, match='train-images-idx3-ubyte.gz: truncated'):
    mnist_data.load(str(tmp_path))
