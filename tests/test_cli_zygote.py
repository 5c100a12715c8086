"""The tests' forked CLI processes (tests/cli_zygote.py) behave as fresh ones."""

import os
import re
import subprocess

import pytest

from tests import cli_zygote
from tests.test_cli import ROOT, SMOKE, assert_one_line_error, run_cli
from tests.test_reliability import records, without_timing


def test_a_forked_run_trains_and_prints_as_a_fresh_interpreter_does(tmp_path):
  args = [f'--flagfile={SMOKE}', '--cell=gru', '--num_units=8', '--epochs=1']
  fresh = run_cli(*args, f'--workdir={tmp_path}/fresh', fresh=True)
  forked = run_cli(*args, f'--workdir={tmp_path}/forked')
  assert fresh.returncode == forked.returncode == 0, (fresh.stderr[-2000:],
                                                      forked.stderr[-2000:])
  assert fresh.stdout == forked.stdout and forked.stdout.startswith('done: 1 epoch')
  assert without_timing(records(tmp_path / 'fresh')) == without_timing(
      records(tmp_path / 'forked'))
  # The same log, timestamps, thread ids and timings aside; the program set
  # TF_USE_LEGACY_KERAS itself in both (run_cli takes it out of their environment).
  def lines(result):
    return [re.sub(r'[\d.]+s\b', '_s', l.split('] ', 1)[-1].split(' | ')[0])
            for l in result.stderr.splitlines() if 'run folder' not in l]
  assert lines(fresh) == lines(forked)
  assert (tmp_path / 'forked' / 'flags.txt').read_text() == (
      tmp_path / 'fresh' / 'flags.txt').read_text().replace('/fresh', '/forked')


def test_exit_codes_one_line_errors_and_folders_are_the_programs(tmp_path):
  for args in (['--eval_only'], ['--batch_size=0']):  # a run's error, a flag's (usage)
    os.makedirs(tmp_path / 'fresh')
    os.makedirs(tmp_path / 'forked')
    fresh = run_cli(*args, cwd=tmp_path / 'fresh', fresh=True)
    forked = run_cli(*args, cwd=tmp_path / 'forked')  # the default folder is relative
    assert_one_line_error(forked)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode, fresh.stdout, fresh.stderr)
    assert os.listdir(tmp_path / 'forked') == []
    for folder in ('fresh', 'forked'):
      os.rmdir(tmp_path / folder)


def test_a_command_past_its_timeout_is_killed_and_the_helper_serves_the_next(tmp_path):
  with pytest.raises(subprocess.TimeoutExpired):
    run_cli(f'--flagfile={SMOKE}', f'--workdir={tmp_path}', timeout=0.5)
  after = run_cli('--helpshort')
  assert after.returncode == 0 and '--cell' in after.stdout


PROBE = """import os, sys
print('tensorflow' in sys.modules, os.environ.get('TF_USE_LEGACY_KERAS'),
      os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.getcwd())
sys.exit(3)
"""


def test_an_environment_read_at_import_gets_a_fresh_interpreter(tmp_path):
  probe = tmp_path / 'probe.py'
  probe.write_text(PROBE)
  environ = dict(os.environ)
  environ.pop('TF_USE_LEGACY_KERAS', None)
  forked = cli_zygote.run(str(probe), [], str(tmp_path), environ, 60)
  # Forked: TensorFlow is loaded already, and the variable the imports set is set.
  assert (forked.returncode, forked.stdout) == (3, f'True 1 None {tmp_path}\n')
  for name in ('TF_ENABLE_ONEDNN_OPTS', 'CUDA_VISIBLE_DEVICES', 'PYTHONPATH'):
    assert not cli_zygote._Helper.can_fork(  # pylint: disable=protected-access
        dict(environ, **{name: 'changed'}))
  fresh = cli_zygote.run(str(probe), [], str(tmp_path),
                         dict(environ, TF_ENABLE_ONEDNN_OPTS='0'), 60)
  assert (fresh.returncode, fresh.stdout) == (3, f'False None 0 {tmp_path}\n')
