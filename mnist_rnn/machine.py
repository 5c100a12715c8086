"""The machine an epoch was computed on, as its metrics.jsonl record names it.

A committed run reruns its first epochs to the last digit only on the kind of CPU it
was recorded on: the AVX-512 EPYC and the AVX-512/AMX Xeon compute the same values, the
AVX2 EPYC others (docs/mnist_784_log.md, "Across kinds of CPU"). So each epoch's record says
which CPU computed it and whether TensorFlow's oneDNN rewrites were on (TensorFlow
decides that by the CPU too), and study.first_epochs names both when a rerun differs.
No TensorFlow here: the trainer passes in what TensorFlow reports.
"""

import platform

CPUINFO = '/proc/cpuinfo'


def _cpuinfo(path: str) -> dict:
  """The first processor's fields of a /proc/cpuinfo text ({} where there is none)."""
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      text = f.read()
  except OSError:
    return {}
  fields = {}
  for line in text.splitlines():
    if not line.strip():
      if fields:
        break  # the first processor's block is enough: the others repeat it
      continue
    key, _, value = line.partition(':')
    fields.setdefault(key.strip(), value.strip())
  return fields


def vector_instructions(flags: set) -> str:
  """The widest vector instructions among a CPU's flags, as the docs name the kinds:
  'AVX-512 with AMX', 'AVX-512', 'AVX2' or 'neither AVX2 nor AVX-512'."""
  if 'avx512f' in flags:
    return 'AVX-512 with AMX' if 'amx_tile' in flags else 'AVX-512'
  return 'AVX2' if 'avx2' in flags else 'neither AVX2 nor AVX-512'


def describe(onednn_opts, cpuinfo_path: str = CPUINFO) -> dict:
  """{'cpu': model name, 'vector_instructions': ..., 'onednn_opts': bool or None}.

  Args:
    onednn_opts: whether TensorFlow's oneDNN rewrites are on in this process (None:
      not known).
    cpuinfo_path: where the CPU describes itself (Linux); elsewhere the platform's
      processor name stands in and the instructions are not known.
  """
  info = _cpuinfo(cpuinfo_path)
  if info:
    cpu = info.get('model name') or info.get('Model name') or info.get('cpu model', '')
    instructions = vector_instructions(set(info.get('flags', '').split()))
  else:
    cpu, instructions = platform.processor() or platform.machine(), None
  return {'cpu': cpu or platform.machine(), 'vector_instructions': instructions,
          'onednn_opts': onednn_opts}


def cpu_kind(machine) -> str:
  """The CPU and its widest vector instructions: 'Intel(R) Xeon(R) Processor, AVX-512
  with AMX' (the instructions left out where not known)."""
  parts = [machine.get('cpu') or 'unknown CPU', machine.get('vector_instructions')]
  return ', '.join(p for p in parts if p)


def text(machine) -> str:
  """One line for a log or a comparison: 'Intel(R) Xeon(R) Processor, AVX-512 with
  AMX, oneDNN rewrites on'; 'not recorded' for a record from before this field."""
  if not machine:
    return 'not recorded'
  onednn = {True: 'oneDNN rewrites on', False: 'oneDNN rewrites off'}.get(
      machine.get('onednn_opts'), 'oneDNN rewrites unknown')
  return f'{cpu_kind(machine)}, {onednn}'
