"""mnist_rnn.machine: the CPU an epoch's record names, read from /proc/cpuinfo texts of
the three kinds of machine the docs measure (and of none), and the trainer's record."""

import json

import pytest

from mnist_rnn import machine

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: another name the first block wins over
flags\t\t: fpu
"""
EPYC_AVX2 = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
"""
EPYC_AVX512 = """processor\t: 0
model name\t: AMD EPYC 9B14
flags\t\t: fpu avx avx2 fma avx512f avx512_vnni avx512_bf16
"""


@pytest.mark.parametrize('text, cpu, instructions', [
    (XEON, 'Intel(R) Xeon(R) Processor', 'AVX-512 with AMX'),
    (EPYC_AVX2, 'AMD EPYC 7B13', 'AVX2'),
    (EPYC_AVX512, 'AMD EPYC 9B14', 'AVX-512'),
    ('processor\t: 0\nmodel name\t: old\nflags\t\t: fpu sse2 avx\n', 'old',
     'neither AVX2 nor AVX-512'),
])
def test_the_cpu_and_its_widest_vector_instructions_are_read(tmp_path, text, cpu,
                                                              instructions):
  path = tmp_path / 'cpuinfo'
  path.write_text(text)
  described = machine.describe(True, str(path))
  assert described == {'cpu': cpu, 'vector_instructions': instructions, 'onednn_opts': True}
  assert json.loads(json.dumps(described)) == described  # a metrics.jsonl field
  assert machine.text(described) == f'{cpu}, {instructions}, oneDNN rewrites on'


def test_without_a_cpuinfo_the_platform_names_the_cpu_and_nothing_is_made_up(tmp_path):
  described = machine.describe(None, str(tmp_path / 'missing'))
  assert described['cpu'] and described['vector_instructions'] is None
  assert described['onednn_opts'] is None
  assert machine.text(described).endswith(', oneDNN rewrites unknown')
  assert 'None' not in machine.text(described)
  assert machine.text(None) == 'not recorded'  # a record from before the field
  assert machine.text({'cpu': 'x', 'vector_instructions': 'AVX2', 'onednn_opts': False}) == (
      'x, AVX2, oneDNN rewrites off')
