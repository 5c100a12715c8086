"""What both command lines share: one-line errors, and absl's parser made quiet.

No TensorFlow here: a bad flag or --help answers before TensorFlow loads.
"""

import sys

from absl import flags

from mnist_rnn import errors

_HELP_FLAGS = ('--help', '-?', '--helpshort', '--helpfull')


def fail(program: str, message: str, code: int = errors.EXIT_ERROR):
  """Prints 'PROGRAM: error: MESSAGE' as the one line on stderr and exits with `code`."""
  sys.stderr.write(f'{program}: error: {message}\n')
  sys.exit(code)


def flags_parser(program: str):
  """absl's parser for app.run, but a bad flag or flagfile is one line on stderr and
  exit 2, and --help exits 0."""
  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      # absl prefixes some messages (a missing flagfile) with 'ERROR:: '.
      fail(program, str(e).removeprefix('ERROR:: '), errors.EXIT_USAGE)
    except SystemExit as e:
      # absl's help flags print the help and exit 1; asking for help is not an error.
      if e.code == 1 and any(a.split('=')[0] in _HELP_FLAGS for a in argv[1:]):
        sys.exit(0)
      raise
  return parse
