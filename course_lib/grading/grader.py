"""The grader: put the original check cells back, run the notebook under nbval, score each exercise.

``grade_notebook(path)`` (and ``python -m course_lib.grading``):

1. reads the reference notebook of the same name in ``solutions/`` (the course's own check cells,
   with their expected output);
2. restores every check cell in the submission from it, matched by cell id: an edited check cell is
   overwritten, a deleted one (or one whose id changed) is re-inserted where it stood, after the cell
   that precedes it in the reference; cells tagged ``check`` that the reference does not have are
   dropped; the outputs of all other cells are cleared, so nbval compares only the check cells;
3. runs the result with ``pytest --nbval-lax --nbval-current-env`` in a temporary directory, with
   ``COURSE_DEVICE=cpu``, the course's sanitize file and a per-cell time limit;
4. scores: an exercise (a check cell, named by its ``grading`` metadata) passes when its cell ran
   without error and printed exactly the expected line; it then earns its points, else none.

Editing or deleting a check cell therefore cannot turn a fail into a pass. (The grader does not
defend against code that deliberately subverts the Python process, such as replacing
``course_lib.grading``'s functions at run time; a teacher who suspects that reads the code.)
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

__all__ = ["ExerciseResult", "GradeReport", "grade_notebook", "restore_check_cells", "check_cells",
           "REPO_ROOT", "DEFAULT_CELL_TIMEOUT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CELL_TIMEOUT = 300
CHECK_TAG = "check"


@dataclass
class ExerciseResult:
    exercise: str
    cell_id: str
    passed: bool
    points: int
    max_points: int
    message: str | None = None


@dataclass
class GradeReport:
    """The grade of one notebook; iterating over it gives its :class:`ExerciseResult`\\ s."""

    notebook: str
    reference: str | None
    exercises: list[ExerciseResult] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    other_failures: list[dict] = field(default_factory=list)
    error: str | None = None

    def __iter__(self):
        return iter(self.exercises)

    def __len__(self):
        return len(self.exercises)

    def __getitem__(self, index):
        return self.exercises[index]

    @property
    def points(self) -> int:
        return sum(r.points for r in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.exercises)

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.passed for r in self.exercises)

    def to_dict(self) -> dict:
        return {
            "notebook": self.notebook,
            "reference": self.reference,
            "exercises": [asdict(r) for r in self.exercises],
            "points": self.points,
            "max_points": self.max_points,
            "passed": self.passed,
            "restored": list(self.restored),
            "other_failures": list(self.other_failures),
            "error": self.error,
        }

    def table(self, width: int = 100) -> str:
        """The human-readable report: one row per exercise, then the total."""
        lines = [f"{self.notebook}"]
        if self.error:
            lines.append(f"  ERROR: {self.error}")
        name_width = max([len("exercise")] + [len(r.exercise) for r in self.exercises])
        name_width = min(name_width, 60)
        rule = f"  {'-' * name_width}  ------  ------"
        lines.append(f"  {'exercise':<{name_width}}  result  points")
        lines.append(rule)
        for r in self.exercises:
            lines.append(f"  {r.exercise[:name_width]:<{name_width}}  {'pass' if r.passed else 'FAIL':<6}  "
                         f"{r.points:>2} / {r.max_points}")
            if not r.passed and r.message:
                for text in _short(r.message, width - 6):
                    lines.append(f"      {text}")
        lines.append(rule)
        lines.append(f"  {'total':<{name_width}}  {'pass' if self.passed else 'FAIL':<6}  "
                     f"{self.points:>2} / {self.max_points}")
        for note in self.restored:
            lines.append(f"  note: {note}")
        for failure in self.other_failures:
            lines.append(f"  note: cell {failure['cell_index']} (not graded) raised "
                         f"{_short(failure['message'], width - 40)[0]}")
        return "\n".join(lines)


def _short(message: str, width: int, max_lines: int = 4) -> list[str]:
    out = []
    for line in message.strip().splitlines():
        out.append(line if len(line) <= width else line[:width - 3] + "...")
        if len(out) == max_lines:
            out.append("...")
            break
    return out or [""]


# ---------------------------------------------------------------------------------------------
# check cells


def is_check_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def check_cells(nb) -> list:
    """The check cells of a notebook, in order."""
    return [cell for cell in nb.cells if is_check_cell(cell)]


def exercise_of(cell) -> tuple[str, int]:
    """(exercise name, points) from a check cell's ``grading`` metadata."""
    grading = cell.get("metadata", {}).get("grading", {}) or {}
    name = str(grading.get("exercise") or f"check cell {cell.get('id')}")
    points = grading.get("points", 1)
    return name, int(points) if isinstance(points, (int, float)) and not isinstance(points, bool) else 1


def restore_check_cells(submission, reference):
    """A copy of ``submission`` whose check cells are exactly the reference's, and notes on what changed.

    Matching is by cell id. A reference check cell missing from the submission goes back after the
    nearest preceding reference cell that the submission has (by id, else by identical source), or
    before the nearest following one, or at the end. Cells tagged ``check`` that are not reference
    check cells are removed; every other cell keeps its source, loses its outputs.
    """
    nb = copy.deepcopy(submission)
    notes: list[str] = []
    ref_cells = reference.cells
    ref_checks = {cell["id"]: cell for cell in ref_cells if is_check_cell(cell) and cell.get("id")}

    if nb.get("nbformat_minor", 0) < 5 or any("id" not in cell for cell in nb.cells):
        nb["nbformat"], nb["nbformat_minor"] = 4, max(5, nb.get("nbformat_minor", 5))
        taken = {cell.get("id") for cell in nb.cells} | {cell.get("id") for cell in ref_cells}
        for index, cell in enumerate(nb.cells):
            if not cell.get("id"):
                new = f"submission-cell-{index}"
                while new in taken:
                    new += "-x"
                cell["id"] = new
                taken.add(new)

    kept, seen = [], set()
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if cell_id in ref_checks:
            if cell_id in seen:
                notes.append(f"removed a duplicate of check cell {cell_id!r} (cell {index})")
                continue
            seen.add(cell_id)
            original = ref_checks[cell_id]
            if _differs(cell, original):
                notes.append(f"check cell {cell_id!r} ({exercise_of(original)[0]}) was modified; "
                             f"the original was put back")
            kept.append(copy.deepcopy(original))
        elif is_check_cell(cell):
            notes.append(f"removed cell {index} tagged 'check' that is not a check cell of the reference "
                         f"(id {cell_id!r})")
        else:
            kept.append(_without_outputs(cell))
    nb.cells = kept

    for ref_index, ref_cell in enumerate(ref_cells):
        if not is_check_cell(ref_cell) or ref_cell.get("id") in seen:
            continue
        position = _insertion_point(nb.cells, ref_cells, ref_index)
        nb.cells.insert(position, copy.deepcopy(ref_cell))
        seen.add(ref_cell.get("id"))
        notes.append(f"check cell {ref_cell.get('id')!r} ({exercise_of(ref_cell)[0]}) was missing; "
                     f"it was put back at its place")
    return nb, notes


def _differs(cell, original) -> bool:
    return (cell.get("cell_type") != original.get("cell_type") or cell.get("source") != original.get("source")
            or cell.get("metadata", {}).get("tags") != original.get("metadata", {}).get("tags")
            or cell.get("metadata", {}).get("grading") != original.get("metadata", {}).get("grading"))


def _without_outputs(cell):
    cell = copy.deepcopy(cell)
    if cell.get("cell_type") == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
        tags = cell.get("metadata", {}).get("tags")
        if tags and "nbval-check-output" in tags:
            cell["metadata"]["tags"] = [t for t in tags if t != "nbval-check-output"]
    return cell


def _insertion_point(cells, ref_cells, ref_index) -> int:
    ids = {cell.get("id"): i for i, cell in enumerate(cells)}
    sources = {}
    for i, cell in enumerate(cells):
        sources.setdefault((cell.get("cell_type"), _source(cell)), i)

    def find(ref_cell):
        if ref_cell.get("id") in ids:
            return ids[ref_cell.get("id")]
        if _source(ref_cell).strip():
            return sources.get((ref_cell.get("cell_type"), _source(ref_cell)))
        return None

    for before in range(ref_index - 1, -1, -1):
        found = find(ref_cells[before])
        if found is not None:
            return found + 1
    for after in range(ref_index + 1, len(ref_cells)):
        found = find(ref_cells[after])
        if found is not None:
            return found
    return len(cells)


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


# ---------------------------------------------------------------------------------------------
# running


def default_solutions_dir() -> Path:
    return REPO_ROOT / "solutions"


def default_sanitize_file() -> Path | None:
    path = REPO_ROOT / "tests" / "nbval_sanitize.cfg"
    return path if path.is_file() else None


def grade_notebook(path, *, solutions_dir=None, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                   total_timeout: float | None = None, sanitize_file=None, keep_dir=None) -> GradeReport:
    """Grade one notebook against the reference of the same name in ``solutions_dir``.

    Returns a :class:`GradeReport` (iterate over it for the per-exercise results). Never raises for
    a bad submission: an unreadable notebook fails every exercise; a missing reference sets ``error``.
    ``keep_dir``: write the restored notebook there (to see exactly what was run).
    """
    path = Path(path)
    solutions_dir = Path(solutions_dir) if solutions_dir is not None else default_solutions_dir()
    reference_path = solutions_dir / path.name
    report = GradeReport(notebook=str(path), reference=str(reference_path))
    if not reference_path.is_file():
        report.error = f"no reference notebook {reference_path} (the grader grades notebooks of the course only)"
        return report
    reference = nbformat.read(reference_path, as_version=4)
    checks = check_cells(reference)
    if not checks:
        report.error = f"the reference {reference_path} has no check cells (cells tagged 'check')"
        return report

    try:
        submission = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 (any unreadable file is the submission's problem)
        for cell in checks:
            name, points = exercise_of(cell)
            report.exercises.append(ExerciseResult(name, cell.get("id"), False, 0, points,
                                                   f"the notebook could not be read: {err}"))
        return report

    restored, report.restored = restore_check_cells(submission, reference)
    with tempfile.TemporaryDirectory(prefix="course-grading-") as tmp:
        tmp = Path(tmp)
        work = tmp / "notebook"
        work.mkdir()
        target = work / path.name
        nbformat.write(restored, target)
        if keep_dir is not None:
            Path(keep_dir).mkdir(parents=True, exist_ok=True)
            nbformat.write(restored, Path(keep_dir) / path.name)
        records, problem = _run_nbval(target, tmp, cell_timeout=cell_timeout, total_timeout=total_timeout,
                                      sanitize_file=sanitize_file)

    by_id = {r.get("cell_id"): r for r in records}
    check_ids = {cell.get("id") for cell in checks}
    for cell in checks:
        name, points = exercise_of(cell)
        record = by_id.get(cell.get("id"))
        if record is None:
            message = f"the check cell did not run{': ' + problem if problem else ''}"
            report.exercises.append(ExerciseResult(name, cell.get("id"), False, 0, points, message))
        elif record["outcome"] == "passed":
            report.exercises.append(ExerciseResult(name, cell.get("id"), True, points, points, None))
        else:
            report.exercises.append(ExerciseResult(name, cell.get("id"), False, 0, points, _message(record)))
    for record in records:
        if record.get("cell_id") not in check_ids and record["outcome"] == "failed":
            report.other_failures.append({"cell_index": record["cell_num"], "cell_id": record.get("cell_id"),
                                          "message": _message(record)})
    if problem and not records:
        report.error = problem
    return report


def _message(record: dict) -> str:
    ename = record.get("ename", "Failed")
    if ename == "OutputMismatch":
        expected, got = record.get("expected", {}), record.get("got", {})
        parts = ["the check ran, but its output is not the expected one"]
        for stream in ("stdout", "stderr"):
            if expected.get(stream, "") != got.get(stream, ""):
                parts.append(f"{stream}: expected {expected.get(stream, '')!r}, got {got.get(stream, '')!r}")
        return "\n".join(parts)
    evalue = record.get("evalue", "")
    return f"{ename}: {evalue}" if evalue else ename


def _run_nbval(notebook: Path, tmp: Path, *, cell_timeout, total_timeout, sanitize_file):
    """Run pytest --nbval-lax on ``notebook``; return (per-cell records, a problem or None)."""
    results = tmp / "results.json"
    ini = tmp / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    ipython_dir = tmp / "ipython"
    ipython_dir.mkdir()
    sanitize_file = sanitize_file if sanitize_file is not None else default_sanitize_file()
    command = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(notebook.parent),
               "-p", "no:cacheprovider", "-p", "course_lib.grading._nbval_plugin",
               "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout}",
               "-q", "--no-header", "-rN", "--tb=no", str(notebook)]
    if sanitize_file is not None:
        command[-1:-1] = ["--nbval-sanitize-with", str(Path(sanitize_file).resolve())]
    env = dict(os.environ)
    env.update(COURSE_DEVICE="cpu", COURSE_GRADING_RESULTS=str(results), IPYTHONDIR=str(ipython_dir),
               PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    if total_timeout is None:
        # a safety net only: the per-cell limit is what stops a stuck cell
        total_timeout = min(7200, 60 + cell_timeout * max(1, len(nbformat.read(notebook, as_version=4).cells)))
    problem = None
    # a session of its own, so that a time-out stops pytest and the kernel it started, and nothing else
    process = subprocess.Popen(command, cwd=notebook.parent, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=total_timeout)
        if process.returncode not in (0, 1):
            problem = f"pytest --nbval-lax exited with status {process.returncode}:\n" + output.strip()[-3000:]
    except subprocess.TimeoutExpired:
        _kill_group(process)
        problem = f"the notebook ran longer than {total_timeout:g} s in all and was stopped"
    records = json.loads(results.read_text(encoding="utf-8")) if results.is_file() else []
    return records, problem


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, 9)
    except (ProcessLookupError, PermissionError, AttributeError):
        process.kill()
    process.communicate()
