"""Failures the command line reports as one line and an exit code, never a traceback.

Each carries the exit code the trainer ends with; the message names the file, flag
or folder and what is wrong with it. No TensorFlow here: the entry point catches
these before TensorFlow is loaded.
"""

import errno

EXIT_ERROR = 1        # bad input: data, run folder, checkpoint, compiler
EXIT_USAGE = 2        # a bad flag or flagfile (absl's convention)
EXIT_NONFINITE = 3    # the loss became NaN or infinite
EXIT_NO_SPACE = 4     # the disk filled up while saving
EXIT_INTERRUPTED = 130  # SIGINT/SIGTERM (128 + 2, the shell's code for Ctrl-C)


class ReportedError(Exception):
  """A failure the user can act on; str() is the one line to print."""
  exit_code = EXIT_ERROR


class NoCheckpoint(ReportedError, ValueError):
  """--eval_only (or another reader) found no checkpoint to read."""


class NonFiniteLoss(ReportedError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""
  exit_code = EXIT_NONFINITE


class NoSpace(ReportedError):
  """The disk filled up while saving; what was complete before is kept."""
  exit_code = EXIT_NO_SPACE


def is_no_space(error: BaseException) -> bool:
  """True for an OSError with errno ENOSPC, or a TensorFlow error caused by one."""
  if isinstance(error, OSError) and error.errno == errno.ENOSPC:
    return True
  return 'No space left on device' in str(getattr(error, 'message', '') or error)


class TrainingInterrupted(ReportedError):
  """Training stopped on request; a checkpoint of the current weights was saved."""
  exit_code = EXIT_INTERRUPTED
