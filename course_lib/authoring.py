"""``python -m course_lib.authoring``: write ``lessons/`` from ``solutions/``.

A solution notebook is the source. Its lesson is the same notebook with

* every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block of a code cell replaced by
  ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the indentation of the BEGIN line;
* every output and execution count cleared, check cells (tag ``check``) included: a lesson shows no
  success line the learner has not earned (the grader reads the expected lines from ``solutions/``);
  check cells are marked not deletable and not editable, so that JupyterLab protects them from a slip;
* volatile metadata dropped (execution timings, widget state, the Python version, ...) and the
  kernel set to ``python3``; cell ids are kept (the grader matches check cells by id).

The output is a pure function of the solution notebook, written as nbformat's stable JSON, so
``python -m course_lib.authoring --check`` can tell whether ``lessons/`` is up to date: it exits
with status 1, naming the notebooks, when a lesson differs from what would be written, is missing
or has no solution any more. A malformed solution notebook (an unterminated or nested block, a
misspelt marker, a check cell without its tags, ``grading`` metadata or stored output, a missing
or repeated cell id) is an error naming the notebook and the cell (status 2).
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["AuthoringError", "BEGIN", "END", "STUB", "make_lesson", "lesson_text", "strip_solutions",
           "solution_blocks", "generate", "check", "execute", "main", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")

EXERCISE_TAG = "exercise"
CHECK_TAGS = ("check", "nbval-check-output")
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "trusted", "vscode", "pycharm")
VOLATILE_NOTEBOOK_METADATA = ("widgets", "vscode", "toc", "varInspector", "colab", "interpreter")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3"}


class AuthoringError(ValueError):
    """A solution notebook that cannot be turned into a lesson; the message names notebook and cell."""


@dataclass
class _Where:
    notebook: str
    index: int
    cell_id: str | None

    def __str__(self):
        return f"{self.notebook}, cell {self.index + 1} (id {self.cell_id!r})"


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _is_marker_like(stripped: str) -> bool:
    return stripped.startswith("#") and ("BEGIN SOLUTION" in stripped.upper() or "END SOLUTION" in stripped.upper())


def _scan(source: str, where):
    """Yield (kind, line) for each line: kind is 'code', 'begin', 'end' or 'solution'. Raises on bad markers."""
    inside_since = None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside_since is not None:
                raise AuthoringError(f"{where}: line {number}: {BEGIN} inside the block opened on line "
                                     f"{inside_since} (blocks cannot nest)")
            inside_since = number
            yield "begin", line
        elif stripped == END:
            if inside_since is None:
                raise AuthoringError(f"{where}: line {number}: {END} without a {BEGIN} before it")
            inside_since = None
            yield "end", line
        elif _is_marker_like(stripped):
            raise AuthoringError(f"{where}: line {number}: {stripped!r} looks like a solution marker but is not "
                                 f"exactly {BEGIN!r} or {END!r}")
        else:
            yield ("solution" if inside_since is not None else "code"), line
    if inside_since is not None:
        raise AuthoringError(f"{where}: unterminated {BEGIN} (line {inside_since}): add {END}")


def strip_solutions(source: str, where="<cell>") -> str:
    """``source`` with each solution block replaced by the stub, at the BEGIN line's indentation."""
    out = []
    for kind, line in _scan(source, where):
        if kind == "begin":
            indent = line[:len(line) - len(line.lstrip())]
            out.extend(f"{indent}{stub}\n" for stub in STUB)
        elif kind == "code":
            out.append(line)
    text = "".join(out)
    if not source.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


def solution_blocks(source: str, where="<cell>") -> list[list[str]]:
    """The lines of each solution block of ``source`` (markers excluded)."""
    blocks = []
    for kind, line in _scan(source, where):
        if kind == "begin":
            blocks.append([])
        elif kind == "solution":
            blocks[-1].append(line.rstrip("\n"))
    return blocks


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _validate_check_cell(cell, where) -> None:
    tags = _tags(cell)
    missing = [tag for tag in CHECK_TAGS if tag not in tags]
    if missing:
        raise AuthoringError(f"{where}: a check cell needs the tags {list(CHECK_TAGS)} (missing {missing})")
    grading = cell.get("metadata", {}).get("grading")
    if not isinstance(grading, dict) or not isinstance(grading.get("exercise"), str) or not grading["exercise"] \
            or not isinstance(grading.get("points"), int) or isinstance(grading.get("points"), bool) \
            or grading["points"] < 0:
        raise AuthoringError(f"{where}: a check cell needs the metadata "
                             f"\"grading\": {{\"exercise\": \"<id and title>\", \"points\": <int>}}, "
                             f"got {grading!r}")
    if any(kind != "code" for kind, _ in _scan(_source(cell), where)):
        raise AuthoringError(f"{where}: a check cell cannot hold a solution block")
    if cell.get("execution_count") is None or not cell.get("outputs"):
        raise AuthoringError(f"{where}: the check cell has no stored output; execute the solution notebook "
                             f"(its check cells must print their success lines) before generating the lesson")
    if any(output.get("output_type") == "error" for output in cell["outputs"]):
        raise AuthoringError(f"{where}: the check cell's stored output is an error; the solution must pass "
                             f"its own checks")


def make_lesson(solution, name: str = "<notebook>"):
    """The lesson notebook (a new NotebookNode) for a solution notebook."""
    nb = copy.deepcopy(solution)
    if nb.get("nbformat") != 4 or nb.get("nbformat_minor", 0) < 5:
        raise AuthoringError(f"{name}: nbformat {nb.get('nbformat')}.{nb.get('nbformat_minor')} has no cell ids; "
                             f"open and save it in JupyterLab 3 or later (nbformat 4.5)")
    seen_ids = {}
    for index, cell in enumerate(nb.cells):
        where = _Where(name, index, cell.get("id"))
        cell_id = cell.get("id")
        if not cell_id:
            raise AuthoringError(f"{where}: the cell has no id")
        if cell_id in seen_ids:
            raise AuthoringError(f"{where}: id {cell_id!r} is also the id of cell {seen_ids[cell_id] + 1}")
        seen_ids[cell_id] = index
        metadata = cell.setdefault("metadata", {})
        for key in VOLATILE_CELL_METADATA:
            metadata.pop(key, None)
        if isinstance(metadata.get("jupyter"), dict):
            metadata["jupyter"].pop("outputs_hidden", None)
            if not metadata["jupyter"]:
                del metadata["jupyter"]
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        tags = _tags(cell)
        if "check" in tags:
            _validate_check_cell(cell, where)
            cell["outputs"], cell["execution_count"] = [], None
            metadata["deletable"] = False
            metadata["editable"] = False
            continue
        has_block = any(kind == "begin" for kind, _ in _scan(source, where))
        if has_block and EXERCISE_TAG not in tags:
            raise AuthoringError(f"{where}: a cell with a solution block needs the tag {EXERCISE_TAG!r}")
        cell["source"] = strip_solutions(source, where)
        cell["outputs"] = []
        cell["execution_count"] = None
    metadata = nb.setdefault("metadata", {})
    for key in VOLATILE_NOTEBOOK_METADATA:
        metadata.pop(key, None)
    metadata["kernelspec"] = dict(KERNELSPEC)
    metadata["language_info"] = copy.deepcopy(LANGUAGE_INFO)
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    nbformat.validate(nb)
    return nb


def _text(nb) -> str:
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def lesson_text(solution_path) -> str:
    """The exact text of the lesson that ``solution_path`` generates."""
    solution_path = Path(solution_path)
    try:
        solution = nbformat.read(solution_path, as_version=4)
    except Exception as err:  # noqa: BLE001 (a broken file is reported as such)
        raise AuthoringError(f"{solution_path}: not a readable notebook: {err}") from err
    return _text(make_lesson(solution, name=str(solution_path)))


def _solutions(solutions_dir: Path, names=None) -> list[Path]:
    paths = sorted(solutions_dir.glob("*.ipynb"))
    if names:
        wanted = {Path(n).name for n in names}
        unknown = wanted - {p.name for p in paths}
        if unknown:
            raise AuthoringError(f"no such notebook in {solutions_dir}: {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.name in wanted]
    return paths


def generate(solutions_dir=None, lessons_dir=None, names=None) -> list[str]:
    """Write the lessons; return what changed (``"wrote lessons/x.ipynb"``, ``"removed ..."``)."""
    solutions_dir = Path(solutions_dir or REPO_ROOT / "solutions")
    lessons_dir = Path(lessons_dir or REPO_ROOT / "lessons")
    sources = _solutions(solutions_dir, names)
    texts = {path.name: lesson_text(path) for path in sources}  # all or nothing: fail before writing
    lessons_dir.mkdir(parents=True, exist_ok=True)
    changes = []
    for filename, text in texts.items():
        target = lessons_dir / filename
        if not target.is_file() or target.read_bytes() != text.encode("utf-8"):
            target.write_bytes(text.encode("utf-8"))
            changes.append(f"wrote {target}")
    if not names:
        for stale in sorted(lessons_dir.glob("*.ipynb")):
            if stale.name not in texts:
                stale.unlink()
                changes.append(f"removed {stale} (no {solutions_dir / stale.name})")
    return changes


def check(solutions_dir=None, lessons_dir=None, names=None) -> list[str]:
    """What is out of date in ``lessons_dir``: one sentence per notebook; empty when all is up to date."""
    solutions_dir = Path(solutions_dir or REPO_ROOT / "solutions")
    lessons_dir = Path(lessons_dir or REPO_ROOT / "lessons")
    problems = []
    sources = _solutions(solutions_dir, names)
    for path in sources:
        target = lessons_dir / path.name
        text = lesson_text(path)
        if not target.is_file():
            problems.append(f"{target} is missing (generated from {path})")
        elif target.read_bytes() != text.encode("utf-8"):
            problems.append(f"{target} differs from what {path} generates")
    if not names:
        for stale in sorted(lessons_dir.glob("*.ipynb")):
            if not (solutions_dir / stale.name).is_file():
                problems.append(f"{stale} has no solution notebook {solutions_dir / stale.name}")
    return problems


def coalesce_streams(outputs: list) -> list:
    """Consecutive ``stream`` outputs of one name joined into one: how often a kernel flushed its stdout
    during a cell depends on timing, and the stored notebook must not."""
    joined = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            joined.append(output)
    return joined


def execute(solutions_dir=None, names=None, timeout: int = 600, progress=print) -> list[str]:
    """Re-execute solution notebooks in place, top to bottom, in a fresh ``python3`` kernel.

    The kernel runs with ``COURSE_DEVICE=cpu`` (compared outputs are computed on the CPU), from the
    notebook's own folder, with the course's Python. Cell ids, tags and sources are kept; outputs and
    execution counts are the new run's; widget state and timings are not stored. A cell that raises
    stops the run and nothing is written for that notebook. Returns the notebooks written.
    """
    import os
    import time

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    solutions_dir = Path(solutions_dir or REPO_ROOT / "solutions")
    written = []
    for path in _solutions(solutions_dir, names):
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        previous = os.environ.get("COURSE_DEVICE")
        os.environ["COURSE_DEVICE"] = "cpu"
        try:
            client.execute()
        except CellExecutionError as err:
            raise AuthoringError(f"{path}: a cell raised while executing; nothing written:\n{err}") from err
        finally:
            if previous is None:
                os.environ.pop("COURSE_DEVICE", None)
            else:
                os.environ["COURSE_DEVICE"] = previous
        for cell in nb.cells:
            for key in VOLATILE_CELL_METADATA:
                cell.get("metadata", {}).pop(key, None)
            if cell.get("outputs"):
                cell["outputs"] = coalesce_streams(cell["outputs"])
        for key in VOLATILE_NOTEBOOK_METADATA:
            nb.metadata.pop(key, None)
        path.write_text(_text(nb), encoding="utf-8")
        written.append(str(path))
        if progress:
            progress(f"executed {path} in {time.perf_counter() - started:.1f} s")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.authoring",
                                     description="Write lessons/ from solutions/ (exercises stubbed, "
                                                 "check cells kept).")
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="only these notebooks (file names in solutions/); default: all")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if lessons/ differs from what would be written")
    parser.add_argument("--execute", action="store_true",
                        help="first re-execute the solution notebooks in place (fresh kernel, COURSE_DEVICE=cpu), "
                             "then write lessons/")
    parser.add_argument("--solutions", metavar="DIR", default=None, help="default: the course's solutions/")
    parser.add_argument("--lessons", metavar="DIR", default=None, help="default: the course's lessons/")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(args.solutions, args.lessons, args.notebooks)
            if problems:
                print("lessons/ is out of date; run `python -m course_lib.authoring`:", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print("lessons/ is up to date")
            return 0
        if args.execute:
            execute(args.solutions, args.notebooks)
        for change in generate(args.solutions, args.lessons, args.notebooks):
            print(change)
        return 0
    except AuthoringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
