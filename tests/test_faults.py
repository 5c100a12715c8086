"""Faults around the run folder, through the real CLI: two processes at once, a full
disk, a moved folder, a corrupted checkpoint. Each ends with the folder in a state from
which the same command finishes with every epoch recorded exactly once, and with the
same metrics as a run that met no fault (`reference`)."""

import glob
import os
import shutil
import subprocess
import time

import pytest

from mnist_rnn import errors
from mnist_rnn import metrics_log
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_reliability import (RUN, STEPS, records, start, wait_for_line,
                                    without_timing)


def finish_and_match(workdir, reference_dir, *extra):
  """Reruns the same command; it must finish with the reference's epochs, once each."""
  result = run_cli(*RUN, f'--workdir={workdir}', *extra)
  assert result.returncode == 0, result.stderr[-2000:]
  assert without_timing(records(workdir)) == without_timing(records(reference_dir))
  return result


def leftovers(workdir):
  return [p for p in os.listdir(workdir) if '.tmp' in p or '_temp' in p or p == '.lock']


# -- two processes, one folder -------------------------------------------------


def test_a_second_process_is_refused_and_a_killed_ones_lock_is_taken_over(reference,
                                                                          tmp_path):
  first = start(tmp_path)
  wait_for_line(first, 'run folder')
  try:
    early = run_cli(*RUN, f'--workdir={tmp_path}', '--eval_only')  # TensorFlow still loads
    assert_one_line_error(early, f'--workdir={tmp_path}: process {first.pid} trains in it'
                          ' and has saved no checkpoint yet; evaluate after its first epoch')
    second = run_cli(*RUN, f'--workdir={tmp_path}')
    assert_one_line_error(second, f'--workdir={tmp_path}: process {first.pid} is using it')
    wait_for_line(first, 'epoch 1/3')  # a checkpoint to read
    reader = run_cli(*RUN, f'--workdir={tmp_path}', '--eval_only')
    assert_one_line_error(reader, f'--workdir={tmp_path}: process {first.pid} trains in it')
  finally:
    first.kill()  # SIGKILL: no clean-up; its pid stays in the folder
    first.wait()
  assert (tmp_path / '.lock').read_text() == f'pid {first.pid}\n'
  result = finish_and_match(tmp_path, reference)
  assert (f'taking over the lock left by process {first.pid}, which is no longer running'
          in result.stderr)
  assert leftovers(tmp_path) == []


# -- a full disk ---------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
  """A 16 MB tmpfs (the tests run as root on CI); skipped where mounting is not allowed."""
  disk = tmp_path / 'disk'
  disk.mkdir()
  mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', str(disk)],
                           capture_output=True, text=True)
  if mounted.returncode != 0:
    pytest.skip(f'cannot mount a tmpfs here: {mounted.stderr.strip()}')
  try:
    yield disk
  finally:
    subprocess.run(['umount', '-l', str(disk)], check=False)


def fill(disk, leave_bytes):
  """Fills `disk` up to `leave_bytes` of free space with one file; returns it."""
  filler = disk / 'filler'
  stat = os.statvfs(disk)
  with open(filler, 'wb') as f:
    f.write(bytes(max(stat.f_bavail * stat.f_frsize - leave_bytes, 0)))
  return filler


def test_a_full_disk_while_saving_loses_nothing(reference, small_disk):
  workdir, what = small_disk / 'run', 'the checkpoint'
  process = start(workdir)
  wait_for_line(process, 'epoch 1/3')
  # Epoch 2's metrics line still fits (a page of its file is free), its checkpoint not.
  filler = fill(small_disk, 16 << 10)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 4, stderr[-2000:]
  lines = [l for l in stderr.splitlines() if l.startswith('train_mnist_rnn.py: error:')]
  assert lines == [f'train_mnist_rnn.py: error: no space left on the device of {workdir}'
                   f' while saving {what} of epoch 2; the last complete checkpoint is kept:'
                   ' free some space and rerun the same command to continue']
  assert 'Traceback' not in stderr
  assert leftovers(workdir) == []
  assert sorted(glob.glob(str(workdir / 'ckpt-*.index'))) == [str(workdir / f'ckpt-{STEPS}.index')]
  assert (workdir / 'checkpoint').read_text().startswith(f'model_checkpoint_path: "ckpt-{STEPS}"')
  os.remove(filler)
  result = finish_and_match(workdir, reference)
  assert f'resuming {workdir} from step {STEPS}' in result.stderr


def test_a_metrics_line_that_does_not_fit_leaves_the_file_as_it_was(small_disk):
  path = small_disk / 'metrics.jsonl'
  metrics_log.append(str(path), {'epoch': 1, 'pad': 'x' * 4000})  # its page is full
  before = path.read_bytes()
  fill(small_disk, 0)
  with pytest.raises(OSError) as e:
    metrics_log.append(str(path), {'epoch': 2, 'pad': 'y' * 4000})
  assert errors.is_no_space(e.value)
  assert path.read_bytes() == before


def test_a_full_disk_before_training_leaves_no_folder(small_disk):
  fill(small_disk, 0)
  result = run_cli(*RUN, f'--workdir={small_disk}/run')
  assert_one_line_error(result, f'no space left on the device of {small_disk}/run while'
                        ' saving flags.txt')
  assert result.returncode == 4
  assert sorted(os.listdir(small_disk)) == ['filler']


# -- a moved folder, a corrupted checkpoint ------------------------------------


def train_until(workdir, epoch):
  """Runs RUN in `workdir` and kills it once `epoch` is saved (same schedule as the
  reference: a shorter --epochs would decay the learning rate sooner)."""
  process = start(workdir)
  try:
    wait_for_line(process, f'epoch {epoch}/3')
  finally:
    process.kill()
    process.wait()


def truncate_data(workdir, step):
  data = glob.glob(str(workdir / f'ckpt-{step}.data-*'))[0]
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)


def test_a_moved_folder_with_a_corrupted_latest_checkpoint_resumes_from_the_one_before(
    reference, tmp_path):
  train_until(tmp_path / 'a', 2)  # checkpoints of epochs 1 and 2
  # As an older version of this trainer wrote it: absolute paths, dead once moved.
  (tmp_path / 'a' / 'checkpoint').write_text(
      f'model_checkpoint_path: "{tmp_path}/a/ckpt-{2 * STEPS}"\n')
  shutil.move(tmp_path / 'a', tmp_path / 'b')
  moved = tmp_path / 'b'
  truncate_data(moved, 2 * STEPS)
  # Evaluation reads the newest checkpoint that restores, and says which it skipped.
  evaluated = run_cli(*RUN, f'--workdir={moved}', '--eval_only')
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  assert f'skipping checkpoint {moved}/ckpt-{2 * STEPS}: it does not restore' in evaluated.stderr
  assert f'at step {STEPS} ' in evaluated.stderr
  # Training redoes epoch 2 from epoch 1's checkpoint; metrics.jsonl is cut to match.
  result = finish_and_match(moved, reference)
  assert f'skipping checkpoint {moved}/ckpt-{2 * STEPS}' in result.stderr
  assert f'resuming {moved} from step {STEPS}' in result.stderr
  assert (moved / 'checkpoint').read_text().startswith(f'model_checkpoint_path: "ckpt-{3 * STEPS}"')


def test_checkpoint_files_that_all_fail_are_refused_not_started_over(tmp_path):
  train_until(tmp_path, 1)
  truncate_data(tmp_path, STEPS)
  def contents():  # the killed run's pid note is taken over and cleared: not compared
    return {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path) if p != '.lock'}
  before = contents()
  result = run_cli(*RUN, f'--workdir={tmp_path}')
  assert_one_line_error(result, f'--workdir={tmp_path} holds 1 checkpoint(s) that do not'
                        f' restore (ckpt-{STEPS}); nothing was changed')
  assert contents() == before
