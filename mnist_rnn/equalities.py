"""`--equality_table`: which of the tutorial's equalities hold in which configuration.

Every row is measured: the configuration's graph is built with fresh weights and run on
real test images, and the tensors are compared as in the per-epoch check.
"""

import dataclasses

from mnist_rnn import config as config_lib
from mnist_rnn import inspect_graph
from mnist_rnn import state_check
from models import config as model_config

VARIANTS = {
    'one layer': {},
    '2 layers': {'num_layers': 2},
    'bidirectional': {'bidirectional': True},
    'trimmed lengths': {'sequence_length': 'trimmed'},
}
COLUMNS = ('cell', 'runner', 'variant', 'states.h == outputs[-1]', 'c == h',
           'backward h == backward outputs[0]', 'backward h == backward half of outputs[-1]')


def check_configuration(model_config: config_lib.ModelConfig, images) -> state_check.StateCheck:
  """Builds `model_config` with fresh weights and runs the check on `images`."""
  _, _, values = inspect_graph.run_fresh(model_config, images, inspect_graph.check_tensors)
  return state_check.from_values(values)


def _cell(comparison) -> str:
  if comparison is None:
    return '—'
  if comparison.equal:
    return 'True'
  return f'False ({100 * comparison.differing_fraction:.0f}% of examples)'


def table(images, num_units: int = 32) -> str:
  """The markdown table for every cell x runner x variant."""
  lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
  for cell in model_config.CELLS:
    for runner in model_config.RUNNERS:
      for variant, changes in VARIANTS.items():
        config = dataclasses.replace(
            config_lib.ModelConfig(cell=cell, runner=runner, num_units=num_units), **changes)
        check = check_configuration(config, images)
        values = [cell, runner, variant, _cell(check.h_equals_output), _cell(check.c_vs_h),
                  _cell(check.backward_h_vs_first), _cell(check.backward_h_vs_last)]
        lines.append('| ' + ' | '.join(values) + ' |')
  return '\n'.join(lines) + '\n'
