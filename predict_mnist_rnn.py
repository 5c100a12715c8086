"""Classifies your own digit images with a model trained by train_mnist_rnn.py.

  python predict_mnist_rnn.py --model=runs/lstm_static my_digit.png photos/
  python predict_mnist_rnn.py --model=runs/lstm_static/saved_model/11725 --json seven.jpg
  python predict_mnist_rnn.py --model=runs/gru_static --show data/mnist/t10k-images-idx3-ubyte.gz

--model is a run folder (its latest checkpoint) or a SavedModel folder (an export
made with train_mnist_rnn.py --export). Each IMAGE is a PNG, JPEG, BMP or GIF file, a
folder of them, or an IDX images file. A picture is converted as MNIST's digits were
made: grayscale, dark ink on light paper inverted, cropped to the ink, scaled to 20
pixels, centred in 28 x 28 by centre of mass. One line per image: the digit, its
probability, the top 3. Exit 1 if any image could not be classified.
"""

import json
import os
import sys

import mnist_rnn  # noqa: F401  (first: selects legacy Keras before TensorFlow loads)

from absl import app
from absl import flags
import numpy as np

from mnist_rnn import cli
from mnist_rnn import errors

_MODEL = flags.DEFINE_string('model', None, 'A run folder, a SavedModel folder (an'
                             ' export) or an export\'s model.tflite.',
                             required=True)
_JSON = flags.DEFINE_boolean('json', False, 'One JSON object per line instead of text.')
_SHOW = flags.DEFINE_boolean('show', False, 'Also print the 28 x 28 image the model saw.')
_BATCH = 256

PROGRAM = 'predict_mnist_rnn.py'


def fail(message: str, code: int = errors.EXIT_ERROR):
  cli.fail(PROGRAM, message, code)


def report(name: str, probabilities) -> str:
  top = sorted(range(10), key=lambda d: -probabilities[d])[:3]
  if _JSON.value:
    return json.dumps({'image': name, 'digit': top[0],
                       'probability': round(float(probabilities[top[0]]), 4),
                       'top3': [[d, round(float(probabilities[d]), 4)] for d in top]})
  others = ', '.join(f'{d} {probabilities[d]:.3f}' for d in top)
  return f'{name}: {top[0]} ({probabilities[top[0]]:.3f})  top 3: {others}'


def main(argv):
  paths = argv[1:]
  if not paths:
    fail('no images given: predict_mnist_rnn.py --model=PATH IMAGE...', errors.EXIT_USAGE)
  if not os.path.exists(_MODEL.value):
    fail(f'--model={_MODEL.value}: no such file or folder')
  # TensorFlow loads here, once the command line is known to be good.
  from mnist_rnn import digit_images  # pylint: disable=g-import-not-at-top
  from mnist_rnn import predict  # pylint: disable=g-import-not-at-top
  try:
    model = predict.Model(_MODEL.value)
  except errors.ReportedError as e:
    fail(str(e))
  decoder = digit_images.Decoder()
  failed = 0
  pending = []

  def flush():
    if not pending:
      return
    probabilities = model.probabilities(np.stack([item.image for item in pending]))
    for item, p in zip(pending, probabilities):
      print(report(item.name, p), flush=True)
      if _SHOW.value:
        print(digit_images.as_text(item.image) + '\n', flush=True)
    pending.clear()

  for item in predict.inputs(paths, decoder):
    if item.error:
      flush()  # keep the output in the order of the inputs
      sys.stderr.write(f'{PROGRAM}: error: {item.name}: {item.error}\n')
      failed += 1
      continue
    pending.append(item)
    if len(pending) == _BATCH:
      flush()
  flush()
  decoder.close()
  model.close()
  if failed:
    sys.exit(errors.EXIT_ERROR)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.flags_parser(PROGRAM))
