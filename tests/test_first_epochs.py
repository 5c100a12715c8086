"""study.first_epochs against the shared reference run (conftest.reference): its flags
rerun in a new folder and stopped after epoch 1 give epoch 1 exactly; a committed value
that differs is found and named; bad input is one line."""

import json
import os
import shutil

from mnist_rnn import machine
from study import first_epochs


def _one_line(capsys, fragment):
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith('first_epochs: error:'), err
  assert fragment in err[0], err[0]


def test_a_rerun_stopped_after_epoch_1_equals_the_committed_epoch_and_a_change_is_found(
    reference, tmp_path, capsys):
  rerun = tmp_path / 'rerun'
  assert first_epochs.main([reference, '--epochs=1', f'--workdir={rerun}']) == 0
  out = capsys.readouterr().out
  assert 'every compared value equal' in out, out
  with open(rerun / 'metrics.jsonl') as f:
    lines = f.read().splitlines()
  # Stopped by SIGTERM after epoch 1 (of the run's 3): it saved and did not go on.
  assert len(lines) == 1 and json.loads(lines[0])['epoch'] == 1
  # The record names the machine that computed it: this one, as TensorFlow saw it.
  recorded = json.loads(lines[0])['machine']
  assert recorded['cpu'] == machine.describe(None)['cpu']
  assert recorded['onednn_opts'] in (True, False)
  assert 'machine' not in out  # the same machine: nothing to say about it
  # The same committed run with one value changed: found, named, exit 1 (the rerun's
  # folder already holds epoch 1, so nothing trains again).
  changed = tmp_path / 'changed'
  shutil.copytree(reference, changed, ignore=shutil.ignore_patterns('ckpt*', 'events*'))
  with open(changed / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  records[0]['test_accuracy'] += 0.0001
  # ...as if computed on another kind of CPU: the note names both machines.
  records[0]['machine'] = {'cpu': 'AMD EPYC 7B13', 'vector_instructions': 'AVX2',
                           'onednn_opts': False}
  with open(changed / 'metrics.jsonl', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in records)
  assert first_epochs.main([str(changed), '--epochs=1', f'--workdir={rerun}']) == 1
  out = capsys.readouterr().out
  assert 'epoch 1: test_accuracy differs' in out and '1 values differ' in out, out
  assert ('the committed epochs were computed on AMD EPYC 7B13, AVX2, oneDNN rewrites off;'
          f' this rerun on {machine.text(recorded)}') in out, out
  assert first_epochs.machine_note(records, records) == ''
  assert first_epochs.differences(records, records, 3) == []
  assert first_epochs.differences(records, records[:1], 2) == [
      (2, 'the epoch itself', True, False)]


def test_bad_input_is_one_line(reference, tmp_path, capsys):
  assert first_epochs.main([str(tmp_path), f'--workdir={tmp_path / "x"}']) == 1
  _one_line(capsys, 'has no flags.txt')
  assert first_epochs.main([reference, '--epochs=9', f'--workdir={tmp_path / "x"}']) == 1
  _one_line(capsys, '--epochs=9')
  assert first_epochs.main([reference, f'--workdir={reference}']) == 1
  _one_line(capsys, 'is the committed run')
  assert not os.path.exists(tmp_path / 'x')


def test_a_flags_txt_from_before_a_flag_reruns_at_its_old_value(reference, tmp_path, capsys):
  # The reference run's flags.txt without --fused_h_gradient, as one written before it.
  old = tmp_path / 'old'
  shutil.copytree(reference, old, ignore=shutil.ignore_patterns('ckpt*', 'events*'))
  flags = (old / 'flags.txt').read_text().splitlines()
  assert '--fused_h_gradient=transposed_rows' in flags
  (old / 'flags.txt').write_text(
      '\n'.join(l for l in flags if not l.startswith('--fused_h_gradient')) + '\n')
  rerun = tmp_path / 'rerun'
  assert first_epochs.main([str(old), '--epochs=1', f'--workdir={rerun}']) == 0
  assert 'every compared value equal' in capsys.readouterr().out
  # It reran with the form every run before the flag had.
  assert '--fused_h_gradient=matmul' in (rerun / 'flags.txt').read_text().splitlines()
