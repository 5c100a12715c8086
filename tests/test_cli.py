"""The real CLI, end to end in a process of its own: every cell x runner on a few
hundred examples (the CPU smoke test, in a new interpreter), and bad input failing
with one line."""

import json
import os
import re

import pytest

from tests import cli_zygote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, 'configs', 'smoke.flags')


def run_cli(*args, timeout=300, cwd=ROOT, env=None, fresh=False, program='train_mnist_rnn.py'):
  """`python train_mnist_rnn.py ARGS` in a process of its own, as a user runs it.

  The process is forked from a helper that has imported TensorFlow already
  (tests/cli_zygote.py: ~5 s of CPU saved per command). `fresh`, or an `env` that sets
  what TensorFlow reads at import: a new Python interpreter instead, for what only a
  fresh start shows (the program selecting legacy Keras itself, TensorFlow's start-up
  lines, a module missing from the path).
  """
  environ = dict(os.environ, **(env or {}))
  environ.pop('TF_USE_LEGACY_KERAS', None)  # the program must set it itself
  return cli_zygote.run(os.path.join(ROOT, program), args, cwd, environ, timeout, fresh)


def assert_one_line_error(result, *fragments, program='train_mnist_rnn.py'):
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  lines = [l for l in result.stderr.splitlines() if l.startswith(f'{program}: error:')]
  assert len(lines) == 1, result.stderr[-2000:]
  for fragment in fragments:
    assert fragment in lines[0], lines[0]


# Every cell builds with every runner in test_models and test_fused_cells; --compare's
# runs go through this same CLI (test_study).
@pytest.mark.parametrize('args', [
    ['--cell=lstm', '--runner=static'],
    ['--cell=gru', '--runner=dynamic'],
    ['--cell=rnn', '--runner=static', '--num_layers=2', '--bidirectional'],
    ['--cell=fused_lstm', '--runner=dynamic', '--time_major'],
], ids=['lstm-static', 'gru-dynamic', 'rnn-2layers-bidirectional', 'fused_lstm-time_major'])
def test_smoke_run_writes_metrics_and_logs_the_check(tmp_path, args):
  # A new interpreter, as CI's smoke test and a user start it (run_cli's `fresh`).
  result = run_cli(f'--flagfile={SMOKE}', *args, f'--workdir={tmp_path}', fresh=True)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  assert [r['epoch'] for r in records] == [1, 2]
  cell, runner = args[0].split('=')[1], args[1].split('=')[1]
  for r in records:
    assert r['cell'] == cell and r['runner'] == runner
    assert r['state_equals_output'] is True and r['state_output_max_abs_diff'] == 0.0
    assert 0.0 <= r['test_accuracy'] <= 1.0 and r['examples_per_sec'] > 0
    for key in ('train_loss', 'train_accuracy', 'test_loss', 'epoch_seconds'):
      assert isinstance(r[key], float)
  assert 'epoch 2/2 |' in result.stderr
  assert 'states.h == outputs[-1]: True (max |diff| 0.0e+00)' in result.stderr
  assert ('c != h' in result.stderr) == (cell in ('lstm', 'fused_lstm'))
  # The result on stdout, progress on stderr.
  assert result.stdout.startswith('done: 2 epochs | final test accuracy ')
  assert 'best' not in result.stdout and 'done:' not in result.stderr
  if '--bidirectional' in args:
    assert all(r['backward_state_equals_first_output'] is True and
               r['backward_state_equals_last_output'] is False for r in records)
    assert ('backward h == backward outputs[0]: True, == backward half of outputs[-1]: False'
            in result.stderr)
  # TensorFlow's C++ start-up lines ('E0000 ... failed call to cuInit') are kept
  # off a healthy CPU run (test_startup_lines_show_with_verbosity shows them).
  assert not re.search(r'^[IWEF]0000 ', result.stderr, re.M), result.stderr[:2000]
  if args == ['--cell=lstm', '--runner=static']:
    # The saved flags repeat the run: here, it is already complete.
    again = run_cli(f'--flagfile={tmp_path}/flags.txt')
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'already holds 2 of 2 epochs' in again.stderr


def test_startup_lines_show_with_verbosity():
  from models import tf_env  # pylint: disable=g-import-not-at-top
  result = run_cli('--inspect', '--num_units=8', '--verbosity=1', fresh=True)
  assert result.returncode == 0, result.stderr[-2000:]
  # This machine has no GPU: TensorFlow says so in its own start-up lines.
  assert re.search(r'^[IWEF]0000 .*cuda', result.stderr, re.M | re.I), result.stderr[:2000]
  assert tf_env.show_startup_lines(gpus=1)  # a GPU found: always shown
  assert not tf_env.show_startup_lines(gpus=0)  # (absl's default verbosity here)


def test_trimmed_lengths_run_reports_the_check_false(tmp_path):
  result = run_cli(f'--flagfile={SMOKE}', '--cell=basic_lstm', '--runner=dynamic',
                   '--sequence_length=trimmed', '--head_input=last_relevant', '--epochs=1',
                   f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / 'metrics.jsonl') as f:
    record = json.loads(f.readline())
  assert record['state_equals_output'] is False
  assert record['state_output_differing_fraction'] > 0.5
  assert record['head_input'] == 'last_relevant' and record['sequence_length'] == 'trimmed'
  assert 'states.h == outputs[-1]: False' in result.stderr


@pytest.mark.parametrize('args, fragments', [
    (['--runner=static', '--time_major'], ['--time_major applies to --runner=dynamic']),
    (['--batch_size=0'], ['batch_size']),
    (['--epochs=-1'], ['epochs']),
    (['--num_units=0'], ['num_units']),
    (['--learning_rate=0'], ['--learning_rate must be > 0']),
    (['--train_examples=-5'], ['train_examples']),
    (['--cell=transformer'], ['cell']),
    (['--num_layers=0'], ['num_layers']),
    (['--head_input=middle'], ['head_input']),
    (['--flagfile=configs/nope.flags'], ['error: Unable to open flagfile', 'nope.flags']),
    (['--data_dir=/nonexistent/mnist'], ['/nonexistent/mnist: data folder does not exist']),
    (['--workdir=/proc/cannot/create'], ['--workdir=/proc/cannot/create: cannot create']),
], ids=['time_major-static', 'batch_size', 'epochs', 'num_units', 'learning_rate',
        'train_examples', 'cell', 'num_layers', 'head_input', 'flagfile', 'data_dir',
        'workdir'])
def test_bad_input_is_one_line_and_nonzero(args, fragments, tmp_path):
  if not any(a.startswith('--workdir') for a in args):
    args = [*args, f'--workdir={tmp_path}/run']
  assert_one_line_error(run_cli(*args), *fragments)
  assert not os.path.exists(tmp_path / 'run' / 'flags.txt')


def _broken_gzip(folder):
  path = os.path.join(folder, 't10k-images-idx3-ubyte.gz')
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])


@pytest.mark.parametrize('fault, fragments', [
    (lambda d: os.remove(os.path.join(d, 'train-labels-idx1-ubyte.gz')),
     ['missing train-labels-idx1-ubyte.gz']),
    (_broken_gzip, ['t10k-images-idx3-ubyte.gz: corrupt gzip stream']),
    ('bad_magic', ['train-images-idx3-ubyte.gz: bad magic number']),
    ('wrong_dims', ['expected images of shape [n, 28, 28], got [64, 14, 56]']),
    ('label_count', ['train-labels-idx1-ubyte.gz: 60 labels for 64 images']),
    ('label_range', ['t10k-labels-idx1-ubyte.gz: label 10 at index 0 is outside 0..9']),
], ids=['missing-file', 'broken-gzip', 'bad-magic', 'wrong-dims', 'label-count',
        'label-range'])
def test_bad_data_folder_is_one_line_and_nonzero(tmp_path, fault, fragments):
  import numpy as np
  from tests import idx_files
  overrides = {
      'bad_magic': {'train_images': b'\x03\x08\x00\x00' + bytes(100)},  # byte-swapped
      'wrong_dims': {'train_images': idx_files.idx_bytes(np.zeros((64, 14, 56), np.uint8))},
      'label_count': {'train_labels': idx_files.idx_bytes(np.zeros(60, np.uint8))},
      'label_range': {'test_labels': idx_files.idx_bytes(np.full(32, 10, np.uint8))},
  }
  data_dir = str(tmp_path / 'data')
  if callable(fault):
    idx_files.make_folder(data_dir)
    fault(data_dir)
  else:
    idx_files.make_folder(data_dir, **overrides[fault])
  workdir = tmp_path / 'run'
  assert_one_line_error(run_cli(f'--data_dir={data_dir}', f'--workdir={workdir}'), *fragments)
  assert not (workdir / 'metrics.jsonl').exists()


@pytest.fixture(scope='module')
def no_tensorflow(tmp_path_factory):
  """PYTHONPATH for a process in which importing TensorFlow fails loudly."""
  folder = tmp_path_factory.mktemp('no_tensorflow')
  (folder / 'tensorflow').mkdir()
  (folder / 'tensorflow' / '__init__.py').write_text(
      "raise ImportError('TensorFlow was imported')\n")
  return {'PYTHONPATH': str(folder)}


@pytest.mark.parametrize('args', [['--help'], ['--helpshort']])
def test_help_answers_without_tensorflow(args, no_tensorflow):
  result = run_cli(*args, env=no_tensorflow)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ''
  text = ' '.join(result.stdout.split())  # help wraps lines
  assert 'Trains an LSTM or GRU on MNIST' in text
  assert 'fused_lstm = LSTMCell with' in text  # --cell names every cell
  assert 'kept short on purpose' not in text  # users' text, not developers'


def test_helpshort_lists_the_main_flags_only(no_tensorflow):
  short, full = (run_cli(a, env=no_tensorflow) for a in ('--helpshort', '--help'))
  assert short.returncode == 0 and short.stderr == ''
  listed = re.findall(r'^  --(\w+)', short.stdout, re.M)
  source = open(os.path.join(ROOT, 'train_mnist_rnn.py'), encoding='utf-8').read()
  main = re.search(r'^MAIN_FLAGS = \((.*?)\)$', source, re.M | re.S).group(1)
  assert listed == re.findall(r"'(\w+)'", main) + ['flagfile']  # (not imported: its flags)
  assert '--tune_trials' not in short.stdout and '--tune_trials' in full.stdout
  assert 'main flags (all of them: --help)' in short.stdout
  assert len(short.stdout.splitlines()) < len(full.stdout.splitlines()) / 2


@pytest.mark.parametrize('args, fragment', [
    (['--cell=transformer'], 'flag --cell=transformer'),
    (['--runner=static', '--time_major'], '--time_major applies to --runner=dynamic'),
    (['--flagfile=configs/nope.flags'], 'nope.flags'),
    (['--data_dir=/nonexistent/mnist'], '/nonexistent/mnist: data folder does not exist'),
    (['--eval_only', '--cell=gru'], 'no such folder, so no checkpoint to evaluate'),
    (['--early_stopping_patience=3'], '--early_stopping_patience stops on validation'
     ' accuracy: give --validation_examples=N'),
    (['--early_stopping_patience=-1', '--validation_examples=100'],
     'flag --early_stopping_patience=-1'),
], ids=['flag', 'flag-combination', 'flagfile', 'data_dir', 'eval_only-without-run',
        'patience-without-validation', 'negative-patience'])
def test_errors_are_the_only_line_and_leave_nothing_behind(args, fragment, tmp_path,
                                                           no_tensorflow):
  # In an empty folder, with the default run folder (runs/...): nothing may appear.
  result = run_cli(*args, cwd=tmp_path, env=no_tensorflow)
  assert result.returncode in (1, 2)
  assert result.stderr.count('\n') == 1, result.stderr
  assert result.stderr.startswith('train_mnist_rnn.py: error:') and fragment in result.stderr
  assert os.listdir(tmp_path) == []


def test_a_flagfile_preset_with_other_flags_gets_its_own_folder(tmp_path):
  first = run_cli(f'--flagfile={SMOKE}', '--epochs=1', cwd=tmp_path, fresh=True)
  assert first.returncode == 0, first.stderr[-2000:]
  # The README's example: the same preset with a later flag is another run.
  second = run_cli(f'--flagfile={SMOKE}', '--epochs=1', '--cell=gru', cwd=tmp_path)
  assert second.returncode == 0, second.stderr[-2000:]
  folders = sorted(os.listdir(tmp_path / 'runs'))
  assert folders == ['gru_static_epochs1_batch_size64_train_examples512_test_examples256',
                     'lstm_static_epochs1_batch_size64_train_examples512_test_examples256']
  assert f'run folder: {os.path.join("runs", folders[0])}' in second.stderr
  # flags.txt replays anywhere: the bundled data is not recorded as this clone's path.
  saved = (tmp_path / 'runs' / folders[0] / 'flags.txt').read_text()
  assert '--data_dir=\n' in saved and ROOT not in saved
  # Rerunning a finished run says so in one line, and nothing about resuming.
  again = run_cli(f'--flagfile={SMOKE}', '--epochs=1', '--cell=gru', cwd=tmp_path)
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'already holds 1 of 1 epochs: nothing to train' in again.stderr
  assert 'resuming' not in again.stderr
  # An explicit folder holding another run: refused, with the one flag to add.
  refused = run_cli(f'--flagfile={SMOKE}', '--epochs=1', '--cell=gru', '--seed=3',
                    f'--workdir={os.path.join("runs", folders[0])}', cwd=tmp_path)
  assert_one_line_error(refused, '--seed: saved 0, requested 3',
                        'add --workdir=runs/gru_static_seed3_epochs1_batch_size64')
  # Startup lines of TensorFlow's C++ libraries, if any, appear once each.
  startup = [l for l in first.stderr.splitlines() if l.startswith(('I0000', 'E0000', 'W0000'))]
  messages = [l.split(']', 1)[-1] for l in startup]
  assert len(messages) == len(set(messages)), startup


def test_an_lstm_run_evaluates_as_fused_lstm(tmp_path):
  # The other direction, and both on the same weights, in test_fused_lstm.py.
  lstm = tmp_path / 'lstm'
  result = run_cli(f'--flagfile={SMOKE}', '--epochs=1', f'--workdir={lstm}')
  assert result.returncode == 0, result.stderr[-2000:]
  trained = json.loads((lstm / 'metrics.jsonl').read_text().splitlines()[-1])
  result = run_cli(f'--flagfile={SMOKE}', '--epochs=1', '--cell=fused_lstm',
                   f'--workdir={lstm}', '--eval_only')
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'acc {trained["test_accuracy"]:.4f}' in result.stderr
  assert 'states.h == outputs[-1]: True' in result.stderr
  # The result is on stdout too, as training's is (`> result.txt` is not empty).
  assert re.fullmatch(rf'eval: step 8 \| test loss [\d.]+ acc {trained["test_accuracy"]:.4f}'
                      r' \| states.h == outputs\[-1\]: True\n', result.stdout), result.stdout
  # Training on with the other cell is refused: its sums run in another order.
  refused = run_cli(f'--flagfile={SMOKE}', '--epochs=2', '--cell=fused_lstm',
                    f'--workdir={lstm}')
  assert_one_line_error(refused, '--cell: saved lstm, requested fused_lstm')
