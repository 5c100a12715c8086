"""Longer sequences: images read as 784 / N steps of N pixels, permuted or not."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_rnn import config as config_lib
from mnist_rnn import inspect_graph
from mnist_rnn import metrics_log
from mnist_rnn import mnist_data
from mnist_rnn import state_check
from mnist_rnn import workdir as workdir_lib
from models import classifier
from models import config as model_config
from models import tf_env
from study import first_epochs
from tests.test_cli import ROOT, assert_one_line_error, run_cli

tf = tf_env.tensorflow()
tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def images():
  return mnist_data.load().test.images[:3]


def test_the_pixel_order_is_row_major_and_the_permutation_fixed_by_its_seed(images):
  permutation = model_config.pixel_permutation(3)
  assert sorted(permutation) == list(range(784))
  np.testing.assert_array_equal(permutation, model_config.pixel_permutation(3))
  assert not np.array_equal(permutation, model_config.pixel_permutation(4))
  graph = tf.Graph()
  with graph.as_default():
    x = tf1.placeholder(tf.float32, [None, 28, 28])
    views = {(n, p): classifier.sequences(
        config_lib.ModelConfig(pixels_per_step=n, permute_pixels=p, permutation_seed=3), x)
             for n in (28, 7, 1) for p in (False, True)}
  with tf1.Session(graph=graph) as session:
    got = session.run(views, {x: images})
  flat = images.reshape(3, 784)
  for (n, permuted), view in got.items():
    expected = (flat[:, permutation] if permuted else flat).reshape(3, 784 // n, n)
    np.testing.assert_array_equal(view, expected)


def test_trimmed_lengths_end_at_the_last_step_with_ink():
  image = np.zeros((1, 28, 28), np.float32)
  image[0, 5, 3] = 1.0  # the last ink: row 5, column 3 = pixel 143
  graph = tf.Graph()
  with graph.as_default():
    x = tf1.placeholder(tf.float32, [None, 28, 28])
    lengths = {n: classifier.trimmed_lengths_op(classifier.sequences(
        config_lib.ModelConfig(pixels_per_step=n), x)) for n in (28, 7, 1)}
  with tf1.Session(graph=graph) as session:
    got = session.run(lengths, {x: np.concatenate([image, np.zeros_like(image)])})
  assert got[28].tolist() == [6, 1] and got[7].tolist() == [21, 1]
  assert got[1].tolist() == [144, 1]  # a blank image is 1 step long


def test_784_steps_static_and_dynamic_agree_and_the_check_holds(images):
  """Sequential MNIST: outputs[-1] after 784 one-pixel steps, with the same weights
  under static_rnn (784 cells in the graph) and dynamic_rnn (one while loop). The
  forward graph an export serves (classifier.build_inference): the training graph's
  gradients of 784 static steps would take most of a minute to build, and add nothing
  to what is checked here."""
  values, weights = {}, None
  for runner in ('static', 'dynamic'):
    config = config_lib.ModelConfig(cell='lstm', runner=runner, num_units=8, pixels_per_step=1)
    assert model_config.time_steps(config) == 784
    graph = tf.Graph()
    with graph.as_default():
      model = classifier.build_inference(config)
      init = tf1.global_variables_initializer()
    matmuls = [op for op in graph.get_operations() if op.type == 'MatMul']
    # LSTMCell multiplies once per step it is unrolled for; the head once.
    assert len(matmuls) == (784 if runner == 'static' else 0) + 1
    with tf1.Session(graph=graph) as session:
      session.run(init)
      variables = graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
      if weights is None:  # static: fresh weights, kept for the dynamic graph
        weights = {v.op.name: session.run(v) for v in variables}
      else:  # the same variables by name (the runners build them alike)
        assert sorted(weights) == sorted(v.op.name for v in variables)
        for v in variables:
          v.load(weights[v.op.name], session)
      fetched = session.run({'h': model.state_h, 'output': model.last_output},
                            {model.images: images})
    assert state_check.from_values(fetched).h_equals_output.equal  # at step 784
    values[runner] = fetched['output']
  # After 784 steps of fresh weights little of the image is left (|h| ~ 1e-4: what
  # vanishing gradients have to fight); relative agreement, on values that are not 0.
  assert np.all(values['static'] != 0)
  np.testing.assert_allclose(values['static'], values['dynamic'], rtol=1e-4, atol=1e-9)


def test_inspect_says_how_many_steps(images):
  text = inspect_graph.inspect(config_lib.ModelConfig(
      runner='dynamic', time_major=True, num_units=4, pixels_per_step=7, permute_pixels=True),
      images)
  assert '112 steps of 7 pixels (permuted)' in text
  assert 'outputs: one tensor [time, batch, units] = [112, 3, 4]' in text
  assert '[time, batch, 7] = [112, 3, 7]' in text
  assert 'states.h == outputs[-1]: True' in text


def test_the_permutation_is_part_of_the_run_and_another_seed_is_refused(tmp_path):
  args = ['--train_examples=256', '--test_examples=64', '--batch_size=64', '--num_units=8',
          '--pixels_per_step=98', '--permute_pixels', '--permutation_seed=5', '--epochs=1',
          f'--workdir={tmp_path}']
  result = run_cli(*args)
  assert result.returncode == 0, result.stderr[-2000:]
  saved = (tmp_path / 'flags.txt').read_text()
  assert '--pixels_per_step=98\n' in saved and '--permute_pixels\n' in saved
  assert '--permutation_seed=5\n' in saved
  assert 'states.h == outputs[-1]: True' in result.stderr
  refused = run_cli(*args[:-2], '--permutation_seed=6', '--epochs=2', f'--workdir={tmp_path}')
  assert_one_line_error(refused, '--permutation_seed: saved 5, requested 6')
  resumed = run_cli(*args[:-2], '--epochs=2', '--restart_schedule',
                    f'--workdir={tmp_path}')  # the same order, trained further
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f'resuming {tmp_path} from step 4' in resumed.stderr and 'epoch 2/2' in resumed.stderr
  # Without --workdir, the reading is part of the run folder's name.
  config = dataclasses.replace(config_lib.TrainConfig(), model=config_lib.ModelConfig(
      pixels_per_step=1, permute_pixels=True, permutation_seed=2))
  assert config_lib.default_workdir(config).endswith('lstm_static_784steps_permuted'
                                                     '_permutation_seed2')


@pytest.mark.parametrize('value', ['5', '0', '785', '-28'])
def test_bad_pixels_per_step_is_refused_at_parse_time(value, tmp_path):
  result = run_cli(f'--pixels_per_step={value}', f'--workdir={tmp_path}/run')
  assert_one_line_error(result, '--pixels_per_step')
  assert result.returncode == 2 and result.stderr.count('\n') == 1


def test_the_784_step_presets_run_one_tower_and_repeat_themselves(tmp_path):
  # Two towers at 784 steps gave one of two different results from run to run (oneDNN's
  # MatMuls, two at a time; docs/results.md): the presets keep one, and a rerun of a
  # preset (here on 512 examples, 4 steps) gives the same numbers to the last bit. The
  # sequential preset is the one rerun: its random shifts are drawn from the seed too.
  for name in ('sequential_mnist', 'permuted_mnist'):
    with open(f'{ROOT}/configs/{name}.flags', encoding='utf-8') as f:
      assert '--towers=1\n' in f.read()
  small = ['--train_examples=512', '--test_examples=128', '--validation_examples=128',
           '--epochs=1']
  rows = []
  for k in range(2):
    result = run_cli(f'--flagfile={ROOT}/configs/sequential_mnist.flags', *small,
                     f'--workdir={tmp_path}/run{k}')
    assert result.returncode == 0, result.stderr[-2000:]
    rows.append(metrics_log.read(f'{tmp_path}/run{k}/{metrics_log.FILE_NAME}'))
  assert first_epochs.differences(rows[0], rows[1], epochs=1) == []
  assert rows[0][0]['state_equals_output'] is True


# Each 784-step preset's committed run (docs/runs/<run>/flags.txt, docs/results.md): what
# the preset's one command must train again, first epochs to the last digit.
PRESET_RUNS = {'sequential_mnist': 'sequential_mnist', 'permuted_mnist': 'permuted_mnist'}

# The flags a command resolves to, as the trainer writes them to flags.txt, without
# TensorFlow or training: absl parses the command line, the trainer makes its config.
RESOLVE = """
import sys
from absl import flags
import train_mnist_rnn
from mnist_rnn import config
flags.FLAGS(['train_mnist_rnn.py', *sys.argv[1:]])
print('\\n'.join(config.flag_lines(train_mnist_rnn.config_from_flags())))
"""


def resolved_flags(*args):
  result = subprocess.run([sys.executable, '-c', RESOLVE, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  flags = workdir_lib.parse_flag_lines(result.stdout)
  del flags['workdir']
  return flags


def committed_flags(run):
  """docs/runs/<run>/flags.txt, a flag added after it at the value it had before."""
  saved = workdir_lib.read_saved_flags(os.path.join(ROOT, 'docs', 'runs', run))
  del saved['workdir']
  added = workdir_lib.flags_before_the_flag(saved)  # what a rerun of it appends
  return {**saved, **workdir_lib.parse_flag_lines('\n'.join(added))}


def test_each_784_step_preset_is_the_command_of_its_committed_run():
  presets = {name: resolved_flags(f'--flagfile=configs/{name}.flags') for name in PRESET_RUNS}
  for name, run in PRESET_RUNS.items():
    committed = committed_flags(run)
    assert presets[name] == committed, {k: (presets[name].get(k), committed.get(k))
                                        for k in presets[name].keys() | committed.keys()
                                        if presets[name].get(k) != committed.get(k)}
  # The comparison sees a flag that differs: the other preset, and one flag changed.
  assert presets['sequential_mnist'] != committed_flags(PRESET_RUNS['permuted_mnist'])
  changed = resolved_flags('--flagfile=configs/permuted_mnist.flags', '--epochs=31')
  assert changed == {**presets['permuted_mnist'], 'epochs': '31'} != presets['permuted_mnist']
