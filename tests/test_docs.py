"""README.md and docs/*.md render as written: parsed as CommonMark (with tables) by
markdown-it-py, every heading is a heading, every fence closes, every table row has
its header's number of cells, and every relative link and picture exists."""

import glob
import os
import re

from markdown_it import MarkdownIt
import pytest

from tests.test_cli import ROOT

DOCS = ['README.md'] + sorted(os.path.relpath(p, ROOT)
                              for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def parse(name):
  with open(os.path.join(ROOT, name), encoding='utf-8') as f:
    text = f.read()
  return text.splitlines(), MarkdownIt('commonmark').enable('table').parse(text)


def _cells(line):
  """The cells of a table row as CommonMark counts them: pipes outside code spans and
  not escaped."""
  line = re.sub(r'`[^`]*`', 'code', line.strip())
  line = re.sub(r'\\\|', 'pipe', line)
  return line.strip('|').count('|') + 1


@pytest.mark.parametrize('name', DOCS)
def test_headings_and_fences(name):
  lines, tokens = parse(name)
  headings = {t.map[0] for t in tokens if t.type == 'heading_open'}
  fenced = set()
  for t in (t for t in tokens if t.type == 'fence'):
    start, end = t.map
    # A fence that runs to the end of the file without its closing line is unclosed.
    assert lines[end - 1].strip().startswith(t.markup), f'{name}:{start + 1}: fence not closed'
    fenced.update(range(start, end))
    # A section heading inside a code block: a stray fence swallowed the prose.
    inside = [i + 1 for i in range(start + 1, end - 1) if re.match(r'#{2,6} ', lines[i])]
    assert not inside, f'{name}: lines {inside} are headings inside the fence at {start + 1}'
  looks = [i for i, l in enumerate(lines) if re.match(r'#{1,6} ', l) and i not in fenced]
  assert all(i in headings for i in looks), name
  assert sum(l.strip().startswith('```') for l in lines) % 2 == 0, name


@pytest.mark.parametrize('name', DOCS)
def test_every_table_row_has_the_headers_cells(name):
  lines, tokens = parse(name)
  for t in (t for t in tokens if t.type == 'table_open'):
    start, end = t.map
    rows = [l for l in lines[start:end]]
    width = _cells(rows[0])
    for i, row in enumerate(rows):
      assert _cells(row) == width, f'{name}:{start + i + 1}: {_cells(row)} cells, not {width}'


def _links(tokens):
  for t in tokens:
    for child in t.children or ():
      if child.type == 'link_open':
        yield child.attrs['href']
      elif child.type == 'image':
        yield child.attrs['src']


@pytest.mark.parametrize('name', DOCS)
def test_relative_links_point_to_files(name):
  _, tokens = parse(name)
  folder = os.path.dirname(os.path.join(ROOT, name))
  local = [h for h in _links(tokens) if not re.match(r'[a-z]+:', h) and not h.startswith('#')]
  missing = [h for h in local if not os.path.exists(os.path.join(folder, h.split('#')[0]))]
  assert not missing, f'{name}: {missing}'


def test_the_checks_catch_the_faults_they_are_for(tmp_path, monkeypatch):
  """A stray fence (the README's old line 130) and a paragraph glued to a table fail."""
  monkeypatch.setattr('tests.test_docs.ROOT', str(tmp_path))
  (tmp_path / 'stray.md').write_text('# a\n\n```\ncode\n```\n```\n## b\n\ntext\n```\n')
  with pytest.raises(AssertionError, match='headings inside the fence'):
    test_headings_and_fences('stray.md')
  (tmp_path / 'glued.md').write_text('# a\n\n| x | y |\n|---|---|\n| 1 | 2 |\nPresets...\n')
  with pytest.raises(AssertionError, match='1 cells, not 2'):
    test_every_table_row_has_the_headers_cells('glued.md')
  (tmp_path / 'link.md').write_text('# a\n\n[gone](docs/none.md) [web](https://x.org)\n')
  with pytest.raises(AssertionError, match='none.md'):
    test_relative_links_point_to_files('link.md')


def _python_versions(text):
  """'3.11, 3.12 or 3.13' after the first 'Python ' that lists versions."""
  found = re.search(r'Python (3\.\d+(?:(?:, | or )3\.\d+)*)', text)
  return re.findall(r'3\.\d+', found.group(1)) if found else []


def test_readme_and_requirements_name_the_same_python_versions():
  read = lambda name: open(os.path.join(ROOT, name), encoding='utf-8').read()
  readme, requirements = _python_versions(read('README.md')), _python_versions(
      read('requirements.txt'))
  assert readme and readme == requirements, (readme, requirements)
  assert _python_versions('Python 3.11 or 3.12 (3.13 tested before)') == ['3.11', '3.12']
