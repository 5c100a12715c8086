"""Using a trained model: --export, loading the export in plain TensorFlow 2, and
predict_mnist_rnn.py on pictures that are not MNIST's own pixels."""

import dataclasses
import json
import math
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from mnist_rnn import checkpoints
from mnist_rnn import config as config_lib
from mnist_rnn import export
from mnist_rnn import mnist_data
from models import classifier
from models import tf_env
from tests import idx_files
from tests.test_cli import ROOT, assert_one_line_error, run_cli

tf = tf_env.tensorflow()
tf1 = tf.compat.v1

# A model good enough for its predictions to mean something, trained in seconds.
TRAINED = ['--cell=gru', '--num_units=64', '--train_examples=6000', '--test_examples=1000',
           '--epochs=2', '--learning_rate=0.01', '--shift_pixels=0']  # 85.90% on 1,000

# Loads exports in a process of its own: TensorFlow 2, eager, no TF_USE_LEGACY_KERAS, no
# import of this project; the test images come in as a .npy file.
TF2_LOADER = '''
import json, os, sys
import numpy as np
import tensorflow as tf
assert tf.executing_eagerly() and 'TF_USE_LEGACY_KERAS' not in os.environ
assert not any(m.split('.')[0] in ('mnist_rnn', 'models') for m in sys.modules)
images = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
  serve = tf.saved_model.load(path).signatures['serving_default']
  result = {k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}
  out[path] = {'probabilities': result['probabilities'].tolist(),
               'classes': result['classes'].tolist(),
               'classes_dtype': str(result['classes'].dtype),
               'state_h_equals_last_output': bool(np.array_equal(result['state_h'],
                                                                 result['last_output']))}
print(json.dumps(out))
'''


def load_in_tf2(images, paths, tmp_path):
  np.save(tmp_path / 'images.npy', images)
  env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '3'
  result = subprocess.run([sys.executable, '-c', TF2_LOADER, str(tmp_path / 'images.npy'),
                           *map(str, paths)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('trained')
  result = run_cli(*TRAINED, f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def test_export_loads_in_plain_tf2_with_eval_onlys_accuracy(trained, tmp_path):
  result = run_cli(*TRAINED, f'--workdir={trained}', '--export')
  assert result.returncode == 0, result.stderr[-2000:]
  path = result.stdout.strip()
  assert path == str(trained / 'saved_model' / str(2 * math.ceil(6000 / 128)))  # last step
  assert not [p for p in os.listdir(trained / 'saved_model') if p.startswith('.')]
  assert export.read_info(path)['model']['cell'] == 'gru'
  # --eval_only of the checkpoint on the full test set, then the export in TF2.
  evaluated = run_cli(*TRAINED, '--test_examples=0', f'--workdir={trained}', '--eval_only')
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  accuracy = float(re.search(r'test loss [\d.]+ acc ([\d.]+)', evaluated.stderr).group(1))
  test = mnist_data.load().test
  loaded = load_in_tf2(test.images, [path], tmp_path)[path]
  correct = int(np.sum(np.array(loaded['classes']) == test.labels))
  assert correct == round(accuracy * len(test))
  assert loaded['classes_dtype'] == 'int64'
  assert loaded['state_h_equals_last_output']
  np.testing.assert_allclose(np.sum(loaded['probabilities'], axis=1), 1.0, rtol=1e-5)
  # Exporting the same step again keeps the export as it is.
  again = run_cli(*TRAINED, f'--workdir={trained}', '--export')
  assert again.returncode == 0 and again.stdout.strip() == path
  assert 'exists already' in again.stderr
  # predict_mnist_rnn.py takes the export, and --show prints what the model saw.
  picture = write_pictures(tmp_path / 'one', test.images[:1], ('png',))[0]
  shown = run_predict(f'--model={path}', '--show', str(picture))
  assert shown.returncode == 0, shown.stderr[-2000:]
  lines = shown.stdout.splitlines()
  assert re.fullmatch(rf'{re.escape(str(picture))}: \d \(\d\.\d{{3}}\)  top 3: .*', lines[0])
  assert len(lines) == 1 + 28 + 1  # the line, 28 rows of the image, a blank line
  assert any('@' in l for l in lines[1:])
  # The TensorFlow Lite model of the export classifies the same way.
  lite = run_predict(f'--model={path}/model.tflite', '--json', str(picture))
  full = run_predict(f'--model={path}', '--json', str(picture))
  assert lite.returncode == 0 and full.returncode == 0, lite.stderr[-2000:]
  assert 'XNNPACK' not in lite.stderr, lite.stderr[-2000:]  # TF Lite's start-up notice
  a, b = json.loads(lite.stdout), json.loads(full.stdout)
  assert a['digit'] == b['digit'] and abs(a['probability'] - b['probability']) <= 1e-4


# Every cell with each runner once, and the variants that change the exported graph.
VARIANTS = [dict(cell=c, runner=r) for c in ('lstm', 'gru') for r in ('static', 'dynamic')] + [
    dict(cell='rnn', runner='dynamic'),
    dict(cell='basic_lstm', runner='static'),
    dict(cell='fused_lstm', runner='static'),
    dict(cell='lstm', runner='dynamic', time_major=True),
    dict(cell='gru', runner='static', num_layers=2),
    dict(cell='lstm', runner='static', bidirectional=True),
    dict(cell='fused_lstm', runner='dynamic', bidirectional=True, num_layers=2),
    dict(cell='gru', runner='dynamic', sequence_length='trimmed', head_input='last_relevant'),
    dict(cell='lstm', runner='static', sequence_length='trimmed', head_input='state_h'),
    dict(cell='gru', runner='dynamic', pixels_per_step=7, permute_pixels=True),
    dict(cell='fused_gru', runner='dynamic', time_major=True, num_layers=2),
    # Zoneout: the export serves the masks' expectation, as evaluation does.
    dict(cell='fused_lstm', runner='static', pixels_per_step=14, zoneout_c=0.5,
         zoneout_h=0.05),
]


def test_every_cell_runner_and_variant_exports_and_loads_in_tf2(tmp_path):
  """Weights from a checkpoint of the training graph; the export, loaded in TF2, gives
  the training graph's probabilities on the same images."""
  images = mnist_data.load().test.images[:6]
  expected, paths = {}, []
  for k, changes in enumerate(VARIANTS):
    model = config_lib.ModelConfig(num_units=8, seed=k, towers=1, **changes)
    workdir = tmp_path / f'run{k}'
    workdir.mkdir()
    graph = tf.Graph()
    with graph.as_default():
      training = classifier.build(model, batch_size=8)
      saver = tf1.train.Saver()
      init = tf1.global_variables_initializer()
    with tf1.Session(graph=graph) as session:
      session.run(init)
      checkpoints.save(session, saver, str(workdir), 5)
      logits = classifier.run_rows(session, training, {'logits': training.logits},
                                   images)['logits']
    path = export.export(config_lib.TrainConfig(model=model, workdir=str(workdir)))
    expected[path] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    paths.append(path)
  loaded = load_in_tf2(images, paths, tmp_path)
  for changes, path in zip(VARIANTS, paths):
    np.testing.assert_allclose(loaded[path]['probabilities'], expected[path], atol=1e-5,
                               err_msg=str(changes))
    # model.tflite, builtin ops only, from the static graph whatever the runner: the
    # SavedModel's probabilities in TensorFlow Lite's interpreter.
    lite = tflite_run(os.path.join(path, export.TFLITE_FILE), images)
    np.testing.assert_allclose(lite['probabilities'], loaded[path]['probabilities'],
                               atol=1e-5, err_msg=str(changes))
    assert (lite['classes'] == np.argmax(lite['probabilities'], axis=1)).all()
    # The tutorial's equality holds in the export too, and breaks where it must.
    trimmed = changes.get('sequence_length') == 'trimmed'
    assert loaded[path]['state_h_equals_last_output'] is (not trimmed), changes


def tflite_run(path, images):
  """Every output of a .tflite model on `images`, by name; fails on a non-builtin op."""
  import warnings  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # tf.lite.Interpreter's notice of LiteRT
    interpreter = tf.lite.Interpreter(model_path=path)
  source = interpreter.get_input_details()[0]['index']
  interpreter.resize_tensor_input(source, list(images.shape))
  interpreter.allocate_tensors()
  interpreter.set_tensor(source, images.astype(np.float32))
  interpreter.invoke()
  return {d['name']: interpreter.get_tensor(d['index'])
          for d in interpreter.get_output_details()}


# -- predict_mnist_rnn.py --------------------------------------------------------


PREDICT = 'predict_mnist_rnn.py'


def run_predict(*args):
  return run_cli(*args, program='predict_mnist_rnn.py')


def as_users_picture(image, rng):
  """An MNIST digit as a user's picture: dark ink on white paper, 5-10x larger, off
  centre, with a margin. [28, 28] in 0..1 -> [h, w, 1] uint8."""
  scale = int(rng.integers(5, 11))
  big = np.kron(255 - np.round(image * 255), np.ones((scale, scale)))
  side = 28 * scale
  canvas = np.full((side + int(rng.integers(40, 200)), side + int(rng.integers(40, 200))),
                   255.0)
  top = int(rng.integers(0, canvas.shape[0] - side + 1))
  left = int(rng.integers(0, canvas.shape[1] - side + 1))
  canvas[top:top + side, left:left + side] = big
  return canvas.astype(np.uint8)[:, :, None]


def write_pictures(folder, images, kinds=('png', 'jpg')):
  """Writes each image as a PNG or JPEG (alternating) with TensorFlow's encoders."""
  rng = np.random.default_rng(0)
  graph = tf.Graph()
  with graph.as_default():
    pixels = tf1.placeholder(tf.uint8, [None, None, 1])
    encoders = {'png': tf.io.encode_png(pixels), 'jpg': tf.io.encode_jpeg(pixels, quality=90)}
  folder.mkdir(exist_ok=True)
  names = []
  with tf1.Session(graph=graph) as session:
    for i, image in enumerate(images):
      kind = kinds[i % len(kinds)]
      names.append(folder / f'{i:03d}.{kind}')
      names[-1].write_bytes(session.run(encoders[kind],
                                        {pixels: as_users_picture(image, rng)}))
  return names


def predicted(stdout):
  return {json.loads(line)['image']: json.loads(line) for line in stdout.splitlines()}


def test_predict_reads_users_pictures_as_well_as_the_originals(trained, tmp_path):
  test = mnist_data.load().test.take(120)
  write_pictures(tmp_path / 'pictures', test.images)
  originals = idx_files.write(str(tmp_path / 'originals-idx3-ubyte'),
                              idx_files.idx_bytes(np.round(test.images * 255).astype(np.uint8)),
                              gzipped=True)
  result = run_predict(f'--model={trained}', '--json', str(tmp_path / 'pictures'), originals)
  assert result.returncode == 0, result.stderr[-2000:]
  rows = predicted(result.stdout)
  assert len(rows) == 240
  pictures = [rows[str(tmp_path / 'pictures' / f'{i:03d}.{("png", "jpg")[i % 2]}')]['digit']
              for i in range(120)]
  original = [rows[f'{originals}[{i}]']['digit'] for i in range(120)]
  on_pictures = np.mean(np.array(pictures) == test.labels)
  on_originals = np.mean(np.array(original) == test.labels)
  print(f'accuracy on 120 pictures {on_pictures:.3f}, on their originals {on_originals:.3f}')
  assert on_originals > 0.75
  assert on_pictures >= on_originals - 0.05, (on_pictures, on_originals)
  for row in rows.values():
    assert [d for d, _ in row['top3']][0] == row['digit'] and len(row['top3']) == 3
    assert row['probability'] == row['top3'][0][1]


def write_bmp(path, gray):
  """An uncompressed 24-bit BMP of a [h, w] uint8 image (TensorFlow has no BMP encoder)."""
  height, width = gray.shape
  row = (3 * width + 3) // 4 * 4
  pixels = b''.join(np.repeat(line, 3).tobytes().ljust(row, b'\0') for line in gray[::-1])
  header = (b'BM' + struct.pack('<IHHI', 54 + len(pixels), 0, 0, 54)
            + struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, len(pixels), 0, 0, 0, 0))
  path.write_bytes(header + pixels)
  return path


def test_bad_images_are_one_line_each_and_the_good_ones_still_classified(trained, tmp_path):
  test = mnist_data.load().test
  good = write_pictures(tmp_path / 'good', test.images[:1], ('png',))
  good.append(write_bmp(tmp_path / 'good' / 'seven.bmp',
                        as_users_picture(test.images[0], np.random.default_rng(1))[:, :, 0]))
  text = tmp_path / 'notes.png'
  text.write_text('not an image')
  empty_file = tmp_path / 'empty.png'
  empty_file.write_bytes(b'')
  zero = tmp_path / 'zero.png'  # a PNG header that declares 0 x 0 pixels
  zero.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00\x00\x00\x0dIHDR' + bytes(8) + b'\x08\x00\x00\x00\x00')
  huge = tmp_path / 'huge.gif'  # declares 65535 x 65535 pixels in 13 bytes
  huge.write_bytes(b'GIF89a\xff\xff\xff\xff\x00\x00\x00')
  blank = write_pictures(tmp_path / 'blank', [np.zeros((28, 28), np.float32)], ('png',))[0]
  (tmp_path / 'empty_folder').mkdir()
  args = [str(good[0]), str(text), str(tmp_path / 'missing.png'), str(empty_file), str(zero),
          str(huge), str(blank), str(tmp_path / 'empty_folder'), str(good[1])]
  result = run_predict(f'--model={trained}', *args)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith('predict_mnist_rnn.py: error:')]
  assert errors == [f'predict_mnist_rnn.py: error: {p}' for p in (
      f'{text}: not an image (PNG, JPEG, BMP or GIF expected)',
      f'{tmp_path / "missing.png"}: no such file',
      f'{empty_file}: empty file',
      f'{zero}: an image of zero size',
      f'{huge}: declares 65535 x 65535 pixels, more than 40,000,000',
      f'{blank}: no ink found (the image is one shade)',
      f'{tmp_path / "empty_folder"}: an empty folder (no images)')]
  lines = result.stdout.splitlines()
  assert [l.split(':')[0] for l in lines] == [str(good[0]), str(good[1])]
  assert lines[1].startswith(f'{good[1]}: 7 ')  # the BMP of a 7, classified


def test_a_model_path_that_cannot_classify_is_one_line(trained, tmp_path):
  assert_one_line_error(run_predict(f'--model={tmp_path}', 'x.png'),
                        f'--model={tmp_path}: no checkpoint or export there', program=PREDICT)
  # A run folder whose export was made from another cell than its flags.txt says.
  other = tmp_path / 'other'
  other.mkdir()
  for name in os.listdir(trained):
    if name.startswith(('ckpt-', 'checkpoint', 'flags.txt')):
      (other / name).write_bytes((trained / name).read_bytes())
  (other / 'saved_model' / '1' / 'assets.extra').mkdir(parents=True)
  (other / 'saved_model' / '1' / 'saved_model.pb').write_bytes(b'')
  (other / 'saved_model' / '1' / 'assets.extra' / 'mnist_rnn.json').write_text(
      json.dumps({'step': 1, 'model': dataclasses.asdict(config_lib.ModelConfig(cell='rnn'))}))
  assert_one_line_error(run_predict(f'--model={other}', 'x.png'),
                        'was made from a rnn run, its flags.txt says gru', program=PREDICT)


def test_only_the_xnnpack_notice_is_held_back(capfd):
  """What C++ writes on file descriptor 2 passes, the notice alone is dropped."""
  from mnist_rnn import predict  # pylint: disable=g-import-not-at-top
  with predict._without_the_xnnpack_notice():  # pylint: disable=protected-access
    os.write(2, (predict.XNNPACK_NOTICE + '\nERROR: a real one\n').encode())
  assert capfd.readouterr().err == 'ERROR: a real one\n'
