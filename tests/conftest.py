"""pytest set-up: legacy Keras before TensorFlow, and absl flags marked as parsed."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mnist_rnn  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()
