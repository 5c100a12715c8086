"""What a study keeps of one finished run: read from its folder's metrics.jsonl into
plain JSON values (an Optuna trial's user attributes), so that a report needs the
study alone, never the run folders. No TensorFlow."""

import statistics as py_statistics

from mnist_rnn import metrics_log


class IncompleteRun(ValueError):
  """The folder does not hold every epoch of the run."""


def steady_examples_per_sec(history: list):
  """Training speed without the graph-optimisation step.

  Each record's `steady_examples_per_sec` leaves out the first steps of the process
  that trained it; the median over epochs is taken. Records of runs made before that
  field existed: the median of epochs after the first (None for a one-epoch run).
  """
  steady = [r['steady_examples_per_sec'] for r in history
            if r.get('steady_examples_per_sec')]
  if len(steady) == len(history):
    return py_statistics.median(steady)
  later = [r['examples_per_sec'] for r in history[1:]]
  return py_statistics.median(later) if later else None


def summarize(run_dir: str, epochs: int, early_stopping: bool = False) -> dict:
  """The result of the finished run in `run_dir`.

  With `early_stopping` (the run had --early_stopping_patience) the run may end before
  `epochs` (its last record says it stopped), and its model, whose test accuracy is
  final_test_accuracy, is its best validation epoch's.

  Returns:
    JSON values: final_test_accuracy, the per-epoch test_accuracy_curve (and
    validation_accuracy_curve with a validation split), best_validation_epoch,
    best_validation_accuracy, test_accuracy_at_best_validation (validation only),
    steady_examples_per_sec, train_seconds (the epochs' wall time, evaluation
    included), check_every_epoch (states.h == outputs[-1] in every epoch) and
    check_max_abs_diff.

  Raises:
    IncompleteRun: metrics.jsonl lacks an epoch of 1..epochs (of 1..the epoch it
      stopped at).
  """
  history = metrics_log.read(f'{run_dir}/{metrics_log.FILE_NAME}')
  last_epoch = epochs
  if early_stopping and history and history[-1].get('stopped_early'):
    last_epoch = history[-1].get('epoch')
  if [r.get('epoch') for r in history] != list(range(1, last_epoch + 1)):
    raise IncompleteRun(f'{run_dir}/{metrics_log.FILE_NAME} holds epochs'
                        f' {[r.get("epoch") for r in history]}, not 1..{epochs}')
  last = history[-1]
  model_is_best = early_stopping and 'best_validation_epoch' in last
  result = {
      'final_test_accuracy': last['test_accuracy_at_best_validation' if model_is_best
                                  else 'test_accuracy'],
      'test_accuracy_curve': [r['test_accuracy'] for r in history],
      'steady_examples_per_sec': steady_examples_per_sec(history),
      'train_seconds': sum(r['epoch_seconds'] for r in history),
      'check_every_epoch': all(r['state_equals_output'] for r in history),
      'check_max_abs_diff': max(r['state_output_max_abs_diff'] for r in history),
  }
  if 'validation_accuracy' in last:
    result.update(
        validation_accuracy_curve=[r['validation_accuracy'] for r in history],
        best_validation_epoch=last['best_validation_epoch'],
        best_validation_accuracy=last['best_validation_accuracy'],
        test_accuracy_at_best_validation=last['test_accuracy_at_best_validation'])
  return result
