"""The repository refers only to files it has: links and paths in the docs and the code exist, and nothing
points outside the project (a design document or notes that live elsewhere)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yml", ".yaml", ".cfg", ".toml", ".txt", ""}
PATH_PATTERN = re.compile(
    r"(?<![\w/.-])((?:course_lib|tests|solutions|lessons|docs|examples|\.ci)/[\w./-]*\w\.(?:py|ipynb|md|yml|cfg|txt|png))")
LINK_PATTERN = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
OUTSIDE = re.compile("DESIGN" + r"\.md|\.\./" + "shared")  # (spelt in pieces so that this file does not match)


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (an sdist): every file under the root
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


TEXT_FILES = [p for p in _tracked_files() if p.suffix in TEXT_SUFFIXES and p.name != "constraints.txt"]
# paths the tests write at run time (screenshots) or that only exist as examples in prose
GENERATED = ("tests/screenshots/",)
PLACEHOLDER = re.compile(r"NN_|/[a-z]\.\w+$|_name\.")  # lessons/NN_name.ipynb, lessons/x.ipynb: patterns in prose


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_refers_to_a_file_outside_the_project(path):
    hits = [m.group(0) for m in OUTSIDE.finditer(path.read_text(encoding="utf-8", errors="replace"))]
    assert not hits, f"{path.relative_to(ROOT)} refers to {hits[0]!r}, which is not in the repository"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_mentioned_exists(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    missing = sorted({m for m in PATH_PATTERN.findall(text)
                      if not m.startswith(GENERATED) and not PLACEHOLDER.search(m) and not (ROOT / m).exists()
                      and not (path.parent / m).exists()})
    assert not missing, f"{path.relative_to(ROOT)} mentions {missing}, not in the repository"


@pytest.mark.parametrize("path", [p for p in TEXT_FILES if p.suffix == ".md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_to_local_files_resolve(path):
    broken = [link for link in LINK_PATTERN.findall(path.read_text(encoding="utf-8"))
              if not re.match(r"[a-z]+:", link) and not (path.parent / link).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to {broken}, which do not exist"


def test_the_checks_can_fail(tmp_path):
    assert OUTSIDE.search("see ../" + "shared/notes.md") and OUTSIDE.search("DESIGN" + ".md, section 3")
    assert PATH_PATTERN.findall("see `course_lib/" + "nothing_here.py` and tests/x/" + "y.ipynb.") == [
        "course_lib/" + "nothing_here.py", "tests/x/" + "y.ipynb"]
    assert PLACEHOLDER.search("lessons/NN_name.ipynb") and not PLACEHOLDER.search("lessons/00_welcome.ipynb")
    assert LINK_PATTERN.findall("[a](docs/" + "none.md) [b](https://x.org/a) [c](lessons/" + "00.ipynb#top)") == [
        "docs/" + "none.md", "https://x.org/a", "lessons/" + "00.ipynb"]
