"""Which runs a comparison is made of: cells x runners x seeds over one base config,
each run's folder name and flags, and the settings that identify the grid. No
TensorFlow, no Optuna."""

import dataclasses
import os

from mnist_rnn import config as config_lib
from models import config as model_config

# Flags that identify a run's result in a study; speed settings and folders do not.
_NOT_IDENTITY = ('workdir', 'towers', 'intra_op_threads', 'inter_op_threads', 'cell',
                 'runner', 'seed', 'check_examples')


@dataclasses.dataclass(frozen=True)
class Grid:
  """The comparison's runs: every (cell, runner, seed) over `base`'s other settings."""
  base: config_lib.TrainConfig
  cells: tuple = tuple(model_config.CELLS)
  runners: tuple = tuple(model_config.RUNNERS)
  seeds: int = 1               # seeds 0..seeds-1
  towers: int = 1              # each run's --towers (speed only)
  # Per cell, flags that replace the base's (the tuned configuration of each cell):
  # ((cell, ((flag, value), ...)), ...).
  overrides: tuple = ()

  def points(self) -> list:
    """[(cell, runner, seed)], seed by seed, so that an interrupted study holds whole
    seeds of every configuration (the pairs the statistics need) first."""
    return [(c, r, s) for s in range(self.seeds) for c in self.cells for r in self.runners]

  def combinations(self) -> list:
    return [(c, r) for c in self.cells for r in self.runners]

  def run_config(self, folder: str, cell: str, runner: str, seed: int
                 ) -> config_lib.TrainConfig:
    """The TrainConfig of one run, in `folder`/<run_name(cell, runner, seed)>."""
    return with_flags(self.base, dict(dict(self.overrides).get(cell, ())), cell=cell,
                      runner=runner, time_major=False, seed=seed, towers=self.towers,
                      workdir=os.path.join(folder, run_name(cell, runner, seed)))

  def settings(self) -> dict:
    """What identifies the grid (stored in the study; another grid is refused):
    the cells, runners, seeds and every base flag that changes a result."""
    values = {k: v for k, v in config_lib.flatten(self.base).items()
              if k not in _NOT_IDENTITY}
    values.update(compare_cells=','.join(self.cells),
                  compare_runners=','.join(self.runners), seeds=self.seeds)
    if self.overrides:
      values['tuned'] = {cell: dict(flags) for cell, flags in self.overrides}
    return values

  def folder_suffix(self) -> str:
    """What the default comparison folder adds for a grid other than the default
    (every cell and runner, one seed): '_lstm-gru_static_seeds5'."""
    parts = []
    if self.cells != tuple(model_config.CELLS):
      parts.append('-'.join(self.cells))
    if self.runners != tuple(model_config.RUNNERS):
      parts.append('-'.join(self.runners))
    if self.seeds != 1:
      parts.append(f'seeds{self.seeds}')
    return ''.join('_' + p for p in parts)


def with_flags(config: config_lib.TrainConfig, values: dict = None, **more
               ) -> config_lib.TrainConfig:
  """`config` with the named flags replaced, whether they belong to the model or the run."""
  values = {**(values or {}), **more}
  model_fields = {f.name for f in dataclasses.fields(config.model)}
  model = dataclasses.replace(config.model, **{k: v for k, v in values.items()
                                               if k in model_fields})
  return dataclasses.replace(config, model=model, **{k: v for k, v in values.items()
                                                     if k not in model_fields})


def run_name(cell: str, runner: str, seed: int) -> str:
  return f'{cell}_{runner}_seed{seed}'


def differences(saved: dict, wanted: dict) -> list:
  """'--name: X there, Y here' for each setting that differs (a setting missing from
  `saved`, from an older study, counts as its default)."""
  defaults = Grid(config_lib.TrainConfig()).settings()
  out = []
  for key, value in wanted.items():
    there = saved.get(key, defaults.get(key))
    if there != value:
      out.append(f'--{key}: {there} there, {value} here')
  return out
