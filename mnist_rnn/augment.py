"""Training-time augmentation: random translations of the images.

Without it the default LSTM fits the training set (99.97% train accuracy) and stalls
near 98.85% test accuracy; shifting each image by up to 2 pixels lets it generalise.
"""

import numpy as np


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
  """Moves each image by its own random (dy, dx) in [-max_shift, max_shift], zero-filled.

  Args:
    images: [batch, height, width] float32.
    max_shift: largest shift in pixels; 0 returns `images` unchanged.
    rng: the source of the shifts.

  Returns:
    [batch, height, width], a new array unless max_shift is 0.
  """
  if max_shift <= 0:
    return images
  n, height, width = images.shape
  padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
  top = rng.integers(0, 2 * max_shift + 1, n)
  left = rng.integers(0, 2 * max_shift + 1, n)
  rows = top[:, None] + np.arange(height)   # [batch, height]
  cols = left[:, None] + np.arange(width)   # [batch, width]
  return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
