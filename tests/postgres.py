"""A real PostgreSQL server for the tests, on 127.0.0.1 in a temporary folder.

.ci/run starts one and names it in MNIST_RNN_TEST_POSTGRES; without that variable
`server()` starts one itself from Debian's postgresql package (initdb, pg_ctl), as the
`postgres` user when the tests run as root (PostgreSQL refuses to run as root).
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

ENV = 'MNIST_RNN_TEST_POSTGRES'


def _bin(name: str) -> str:
  found = sorted(glob.glob(f'/usr/lib/postgresql/*/bin/{name}')) or [shutil.which(name)]
  if not found or not found[-1]:
    raise RuntimeError(f'PostgreSQL {name} not found: apt-get install postgresql')
  return found[-1]


def _as_server_user(command: list) -> list:
  return ['runuser', '-u', 'postgres', '--', *command] if os.geteuid() == 0 else command


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class Server:
  """A server of the tests' own, which a test may stop and start again."""

  def __init__(self):
    self.folder = tempfile.mkdtemp(prefix='mnist-rnn-pg-')
    if os.geteuid() == 0:
      user = pwd.getpwnam('postgres')
      os.chown(self.folder, user.pw_uid, user.pw_gid)
    self.port = free_port()
    self.data = os.path.join(self.folder, 'data')
    subprocess.run(_as_server_user([_bin('initdb'), '-D', self.data, '-A', 'trust', '-U',
                                    'postgres']), check=True, capture_output=True)
    self.start()
    self.url = f'postgresql://postgres@127.0.0.1:{self.port}/postgres'

  def start(self):
    subprocess.run(_as_server_user([_bin('pg_ctl'), '-D', self.data, '-l',
                                    os.path.join(self.folder, 'log'), '-w', '-o',
                                    f'-h 127.0.0.1 -p {self.port} -k {self.folder}',
                                    'start']), check=True, capture_output=True)

  def stop(self):
    subprocess.run(_as_server_user([_bin('pg_ctl'), '-D', self.data, '-m', 'immediate',
                                    'stop']), capture_output=True)

  def remove(self):
    self.stop()
    shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def own_server():
  """Yields a Server (its `url` a new database on it) that the caller may stop."""
  s = Server()
  try:
    s.url = _new_database(s.url)
    yield s
  finally:
    s.remove()


@contextlib.contextmanager
def server():
  """Yields the URL of a running server's database (a new one each time: the server
  is shared when .ci/run started it, so each user gets a database of its own)."""
  if os.environ.get(ENV):
    url = os.environ[ENV]
    yield _new_database(url)
    return
  with own_server() as s:
    yield s.url


def _new_database(url: str) -> str:
  import sqlalchemy  # pylint: disable=g-import-not-at-top
  name = f'test_{os.getpid()}_{int(time.time() * 1000) % 10**9}'
  engine = sqlalchemy.create_engine(url, isolation_level='AUTOCOMMIT')
  with engine.connect() as connection:
    connection.exec_driver_sql(f'CREATE DATABASE {name}')
  engine.dispose()
  return url.rsplit('/', 1)[0] + '/' + name


def main(argv):
  """`python -m tests.postgres start`: starts a server for a whole test session and
  prints the shell lines that name it (.ci/run evals them); `stop FOLDER` stops it."""
  if argv[1:2] == ['start']:
    s = Server()
    print(f'export {ENV}={s.url}')
    print(f'export MNIST_RNN_TEST_POSTGRES_FOLDER={s.folder}')
  elif argv[1:2] == ['stop'] and len(argv) == 3:
    s = Server.__new__(Server)
    s.folder, s.data = argv[2], os.path.join(argv[2], 'data')
    s.remove()
  else:
    raise SystemExit('usage: python -m tests.postgres start | stop FOLDER')


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  main(sys.argv)
