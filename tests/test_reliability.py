"""Checkpoints, resume, interruption, non-finite loss and determinism, on real runs."""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from mnist_rnn import config as config_lib
from mnist_rnn import metrics_log
from mnist_rnn import mnist_data
from mnist_rnn import train
from tests.test_cli import ROOT, assert_one_line_error, run_cli

tf1 = tf.compat.v1

# Small enough to be quick, long enough (512 steps, ~1 s an epoch on an AVX-512 EPYC) for a
# signal sent 0.1 s after epoch 1's line to land inside epoch 2 on a machine 3× faster.
STEPS = 512
RUN = ['--train_examples=4096', '--test_examples=256', '--batch_size=8', '--num_units=16',
       '--epochs=3']
# For tests of what happens between runs (no signal to land inside an epoch): 8 steps.
SHORT = ['--train_examples=512', '--test_examples=256', '--batch_size=64', '--num_units=16']
TIMING_KEYS = ('examples_per_sec', 'steady_examples_per_sec', 'epoch_seconds', 'build_seconds')


def records(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def without_timing(rows):
  return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def start(workdir, *extra):
  env = dict(os.environ)
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'train_mnist_rnn.py'), *RUN,
       f'--workdir={workdir}', *extra],
      cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def wait_for_line(process, fragment, timeout=120):
  deadline = time.time() + timeout
  seen = []
  while time.time() < deadline:
    line = process.stderr.readline()
    if not line:
      break
    seen.append(line)
    if fragment in line:
      return seen
  raise AssertionError(f'never saw {fragment!r}: {"".join(seen)[-2000:]}')


def test_same_flags_and_seed_give_identical_metrics(reference, tmp_path):
  result = run_cli(*RUN, f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert without_timing(records(tmp_path)) == without_timing(records(reference))


def kill_in_epoch_2(workdir):
  process = start(workdir)
  wait_for_line(process, 'epoch 1/3')
  time.sleep(0.1)  # into epoch 2
  process.kill()
  process.wait()
  assert [r['epoch'] for r in records(workdir)] == [1]


def test_sigkill_mid_epoch_then_resume_keeps_each_epoch_once(reference, tmp_path):
  kill_in_epoch_2(tmp_path)
  # And the worst moments of a kill: a record written for an epoch whose checkpoint
  # never was, followed by a half-written line.
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write(json.dumps(dict(records(reference)[1], train_loss=123.0)) + '\n')
    f.write('{"epoch": 3, "train_lo')
  result = run_cli(*RUN, f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'resuming {tmp_path} from step {STEPS}: epoch 2, batch 0/{STEPS}' in result.stderr
  assert without_timing(records(tmp_path)) == without_timing(records(reference))


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_signal_saves_current_weights_exits_nonzero_and_resumes(reference, tmp_path, signum):
  process = start(tmp_path)
  wait_for_line(process, 'epoch 1/3')
  time.sleep(0.1)
  stopped_at = time.time()
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=60)
  assert time.time() - stopped_at < 10
  assert process.returncode == 130
  assert 'Traceback' not in stderr
  assert f'interrupted by {signum.name}: stopped at epoch 2 batch' in stderr
  latest = tf1.train.latest_checkpoint(str(tmp_path))
  step = int(latest.rsplit('-', 1)[1])
  assert STEPS < step < 2 * STEPS  # mid-epoch-2 weights were saved
  if signum == signal.SIGINT:
    return  # the resume from a signal's save is the same; measured once, for SIGTERM
  result = run_cli(*RUN, f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'resuming {tmp_path} from step {step}' in result.stderr
  assert without_timing(records(tmp_path)) == without_timing(records(reference))
  # The resumed epoch's speed names the steps it is measured over; whole epochs do not.
  (line,) = [l for l in result.stderr.splitlines() if 'epoch 2/3' in l]
  assert (f'(this process ran {2 * STEPS - step} of its {STEPS} steps, resumed at batch'
          f' {step - STEPS})') in line
  assert 'this process ran' not in [l for l in result.stderr.splitlines()
                                    if 'epoch 3/3' in l][0]


def test_continuing_a_finished_run_is_a_recorded_warm_restart(tmp_path):
  first = run_cli(*SHORT, '--epochs=1', f'--workdir={tmp_path}')
  assert first.returncode == 0  # (a rerun of a finished run: test_cli's smoke run)
  hint = [l for l in run_cli(*SHORT, '--epochs=1', f'--workdir={tmp_path}').stderr
          .splitlines() if 'nothing to train' in l][0]
  # A command to paste as it is: a real number (the new total), no <placeholder>.
  command = (f'python train_mnist_rnn.py --flagfile={tmp_path}/flags.txt'
             f' --workdir={tmp_path} --epochs=2 --restart_schedule')
  assert hint.endswith('to train it to 2 epochs in all (--epochs is the new total): '
                       + command)
  assert '<' not in hint and '>' not in hint
  # The cosine schedule has ended: more epochs are refused without the choice, and
  # the refusal leaves the folder as it was.
  before = {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)}
  more = run_cli(*SHORT, '--epochs=2', f'--workdir={tmp_path}')
  assert_one_line_error(more, 'has finished its cosine schedule', command)
  assert {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)} == before
  # The exact command of the hint trains epoch 2 from the peak learning rate again.
  more = run_cli(f'--flagfile={tmp_path}/flags.txt', f'--workdir={tmp_path}', '--epochs=2',
                 '--restart_schedule')
  assert more.returncode == 0 and 'epoch 2/2' in more.stderr, more.stderr[-2000:]
  assert [r['epoch'] for r in records(tmp_path)] == [1, 2]
  with open(tmp_path / 'segments.jsonl') as f:
    segments = [json.loads(line) for line in f]
  assert [(s['first_epoch'], s['last_epoch'], s['schedule_start_epoch'])
          for s in segments] == [(1, 1, 1), (2, 2, 2)]
  assert '--epochs=1' in segments[0]['flags'] and '--epochs=2' in segments[1]['flags']
  evaluated = run_cli(*SHORT, '--epochs=2', f'--workdir={tmp_path}', '--eval_only')
  assert evaluated.returncode == 0
  assert f'acc {records(tmp_path)[-1]["test_accuracy"]:.4f}' in evaluated.stderr
  assert 'states.h == outputs[-1]: True' in evaluated.stderr


def test_a_finished_run_asked_again_answers_from_its_files(reference, tmp_path):
  """No TensorFlow: a `tensorflow` that cannot be imported stands first on the path."""
  fake = tmp_path / 'no_tf' / 'tensorflow'
  fake.mkdir(parents=True)
  (fake / '__init__.py').write_text('raise ImportError("TensorFlow was imported")\n')
  before = {p: os.path.getmtime(os.path.join(reference, p)) for p in os.listdir(reference)}
  again = run_cli(*RUN, f'--workdir={reference}', env={'PYTHONPATH': str(fake.parent)})
  assert again.returncode == 0, again.stderr[-2000:]
  assert f'{reference} already holds 3 of 3 epochs: nothing to train' in again.stderr
  last = records(reference)[-1]
  assert again.stdout == (f'done: 3 epochs | final test accuracy'
                          f' {last["test_accuracy"]:.4f} | states.h == outputs[-1] every'
                          ' epoch: True\n')
  assert {p: os.path.getmtime(os.path.join(reference, p))
          for p in os.listdir(reference)} == before
  # Without a whole metrics.jsonl the run is opened as before (TensorFlow re-creates it).
  copy = tmp_path / 'copy'
  shutil.copytree(reference, copy)
  with open(copy / 'metrics.jsonl', 'a') as f:
    f.write('{not json\n')
  broken = run_cli(*RUN, f'--workdir={copy}', env={'PYTHONPATH': str(fake.parent)})
  assert broken.returncode != 0 and 'TensorFlow was imported' in broken.stderr


def test_a_new_default_folder_names_the_finished_run_beside_it(tmp_path):
  first = run_cli(*SHORT, '--epochs=1', cwd=tmp_path)
  assert first.returncode == 0, first.stderr[-2000:]
  (finished,) = os.listdir(tmp_path / 'runs')
  more = run_cli(*SHORT, '--epochs=2', cwd=tmp_path)
  assert more.returncode == 0 and 'epoch 2/2' in more.stderr, more.stderr[-2000:]
  (line,) = [l for l in more.stderr.splitlines() if 'holds a finished run' in l]
  new = sorted(set(os.listdir(tmp_path / 'runs')) - {finished})[0]
  folder = os.path.join('runs', finished)
  assert line.endswith(
      f'{folder} holds a finished run of these flags (1 epoch); this command starts a new'
      f' one in runs/{new} from epoch 1. To train that run on to 2 epochs instead, stop'
      f' this (Ctrl-C) and run: python train_mnist_rnn.py --flagfile={folder}/flags.txt'
      f' --workdir={folder} --epochs=2 --restart_schedule')
  # Before anything trains; and another configuration (a seed) is not named.
  assert more.stderr.index('holds a finished run') < more.stderr.index('epoch 1/2')
  other = run_cli(*SHORT, '--epochs=2', '--seed=1', cwd=tmp_path)
  assert other.returncode == 0 and 'holds a finished run' not in other.stderr


def test_another_epochs_mid_schedule_is_refused_and_constant_continues(tmp_path):
  from mnist_rnn import segments  # pylint: disable=g-import-not-at-top
  (tmp_path / 'flags.txt').write_text('--epochs=25\n')
  with pytest.raises(segments.ContinuationError, match='would change its learning rate'):
    segments.plan(str(tmp_path), 25, 3, 30, 'cosine', False, [], 'cmd')
  assert segments.plan(str(tmp_path), 25, 3, 25, 'cosine', False, [], 'cmd') == (1, None)
  start, segment = segments.plan(str(tmp_path), 25, 25, 30, 'constant', False, [], 'cmd')
  assert start == 1 and (segment.first_epoch, segment.last_epoch) == (26, 30)


def test_an_unreadable_segment_line_is_left_in_place(tmp_path, caplog):
  from mnist_rnn import segments  # pylint: disable=g-import-not-at-top
  segments.append(str(tmp_path), segments.Segment(1, 2, 1, ('--epochs=2',)))
  with open(tmp_path / 'segments.jsonl', 'a') as f:
    f.write('{"first_epoch": 3, "last\n')
  segments.append(str(tmp_path), segments.Segment(3, 4, 3, ('--epochs=4',)))
  before = (tmp_path / 'segments.jsonl').read_text()
  assert [(s.first_epoch, s.last_epoch) for s in segments.read(str(tmp_path))] == [(1, 2),
                                                                                 (3, 4)]
  assert 'segments.jsonl line 2 could not be read' in caplog.text
  assert (tmp_path / 'segments.jsonl').read_text() == before


def test_learning_rate_of_a_warm_restart(tmp_path):
  # Epochs 1-2 of 2, then a restart over epochs 3-4: the cosine starts over at the peak.
  rates = [train.learning_rate_at(step - 2 * 8, 2 * 8, 1e-3, 'cosine') for step in (16, 20, 24)]
  assert rates == [pytest.approx(1e-3), pytest.approx(0.5 * 1e-3 * (1 + math.cos(math.pi / 4))),
                   pytest.approx(5e-4)]


def test_a_corrupted_metrics_line_is_kept_and_its_epoch_recreated(tmp_path):
  first = run_cli(*SHORT, '--epochs=2', '--lr_schedule=constant', f'--workdir={tmp_path}')
  assert first.returncode == 0
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines(keepends=True)
  original = json.loads(lines[0])
  lines[0] = lines[0][:40] + '\x00garbage\n'
  (tmp_path / 'metrics.jsonl').write_text(''.join(lines))
  more = run_cli(*SHORT, '--epochs=3', '--lr_schedule=constant', f'--workdir={tmp_path}')
  assert more.returncode == 0, more.stderr[-2000:]
  assert (f'{tmp_path}/metrics.jsonl line 1 could not be read (not JSON); it is kept in'
          ' metrics.jsonl.unreadable') in more.stderr
  assert 'epoch 1 re-created from the TensorBoard events' in more.stderr
  assert (tmp_path / 'metrics.jsonl.unreadable').read_text() == 'line 1: ' + lines[0]
  got = records(tmp_path)
  assert [r['epoch'] for r in got] == [1, 2, 3]
  assert got[0]['recreated_from'] == 'tensorboard events'
  assert got[0]['test_accuracy'] == pytest.approx(original['test_accuracy'], rel=1e-6)
  assert got[0]['state_equals_output'] is True


def test_incompatible_resume_is_refused_and_touches_nothing(reference, tmp_path):
  workdir = tmp_path / 'copy'
  shutil.copytree(reference, workdir)
  before = {p: (workdir / p).read_bytes() for p in os.listdir(workdir)}
  result = run_cli(*RUN, '--cell=gru', '--num_units=32', f'--workdir={workdir}')
  assert_one_line_error(result, '--cell: saved lstm, requested gru',
                        '--num_units: saved 16, requested 32')
  assert {p: (workdir / p).read_bytes() for p in os.listdir(workdir)} == before


def test_eval_only_without_checkpoint(tmp_path):
  assert_one_line_error(run_cli('--eval_only', f'--workdir={tmp_path}'),
                        'no checkpoint to evaluate')


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  data = mnist_data.load()
  data = mnist_data.Mnist(data.train.take(256), data.test.take(64))
  config = config_lib.TrainConfig(model=config_lib.ModelConfig(num_units=8),
                                  workdir=str(tmp_path), batch_size=64, epochs=1)
  train.train_and_evaluate(config, data)
  good = tf1.train.latest_checkpoint(str(tmp_path))
  # The same run continued on images that make the forward pass NaN (a diverged
  # model behaves the same way from the loss onwards).
  poisoned = mnist_data.Mnist(
      mnist_data.Split(np.full_like(data.train.images, np.nan), data.train.labels), data.test)
  with pytest.raises(train.NonFiniteLoss, match='NaN or infinite at epoch 2 batch 0'):
    train.train_and_evaluate(dataclasses.replace(config, epochs=2), poisoned)
  assert tf1.train.latest_checkpoint(str(tmp_path)) == good
  assert [r['epoch'] for r in metrics_log.read(str(tmp_path / 'metrics.jsonl'))] == [1]
