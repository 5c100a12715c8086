"""What both command lines share: one-line errors, and absl's parser made quiet.

No TensorFlow here: a bad flag or --help answers before TensorFlow loads.
"""

import sys
import textwrap

from absl import flags

from mnist_rnn import errors

_HELP_FLAGS = ('--help', '-?', '--helpshort', '--helpfull')


def fail(program: str, message: str, code: int = errors.EXIT_ERROR):
  """Prints 'PROGRAM: error: MESSAGE' as the one line on stderr and exits with `code`."""
  sys.stderr.write(f'{program}: error: {message}\n')
  sys.exit(code)


def short_help(usage: str, names: tuple) -> str:
  """--helpshort: the program's usage, then only the flags `names` (the main ones),
  each with its help and default, and where the rest are."""
  lines = [usage.strip(), '', 'main flags (all of them: --help):']
  for name in names:
    flag = flags.FLAGS[name]
    kind = '' if flag.boolean else '=' + flag.flag_type().replace('string enum', 'name')
    default = '' if flag.default in (None, '') else f' (default: {flag.default_as_str})'
    lines.append(f'  --{name}{kind}')
    lines.extend(textwrap.wrap(flag.help + default, 80, initial_indent='    ',
                               subsequent_indent='    '))
  lines += ['  --flagfile=path', '    Read flags from a file, e.g. a preset in configs/; later flags'
            ' win.']
  return '\n'.join(lines) + '\n'


def flags_parser(program: str, usage: str = '', short: tuple = ()):
  """absl's parser for app.run, but a bad flag or flagfile is one line on stderr and
  exit 2, --help exits 0, and --helpshort (with `short`) lists only those flags."""
  def parse(argv):
    if short and '--helpshort' in argv[1:]:
      sys.stdout.write(short_help(usage, short))
      sys.exit(0)
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
