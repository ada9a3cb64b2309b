"""The grader: put the original check cells back, run the notebook under nbval in a guarded kernel, score.

``grade_notebook(path)`` (and ``python -m course_lib.grading``):

1. reads the course first: every reference notebook of ``solutions/`` (the course's own check cells with
   their expected success lines) is read into memory and hashed, and so is the grading code
   (``course_lib/grading/*.py``), before any learner code runs (:class:`Course`). After each notebook the
   grader hashes them again: learner code that rewrote the course copy is reported, and nothing more is
   graded from that copy;
2. restores every check cell of the submission from the reference (:func:`restore_check_cells`): matched
   by cell id, else by its unchanged source (a notebook saved as nbformat 4.4, or cells pasted into a new
   notebook, has lost its ids); an edited check cell is overwritten; a deleted one is re-inserted after
   the cell that precedes it in the reference, and in any case after the cells that define the names it
   uses (the exercise it checks); cells tagged ``check`` that the reference does not have are dropped;
   the outputs of all other cells are cleared;
3. runs the result with ``pytest --nbval-lax`` in a temporary directory, with ``COURSE_DEVICE=cpu``,
   ``COURSE_STRICT_CHECKS=1`` (an unsolved exercise raises, as under any pytest) and a per-cell time limit,
   in a kernel guarded by :mod:`course_lib.grading._guard`: each restored check cell calls the guard,
   which runs the cell's original code with the course's own check functions, a pristine ``torch.optim``,
   ``builtins``, ``sys.modules`` and IPython exception path, whatever earlier cells did, and sends its
   verdict over a channel authenticated with a per-run secret (an HMAC key the notebook's code is never
   given). Changes the guard undid are reported by name (*tampering*);
4. watches the kernel: a kernel that dies is reported at once, with the cell it died in, and the checks
   after it as not run; a cell that runs past the time limit is named with the limit;
5. scores: an exercise passes when the guard's authenticated verdict for its check cell says so (the
   check raised nothing and its last printed line is the expected success line; a learner's debug prints
   before it are shown, not held against them); it then earns its points, else none.

Why this design: a check cell's output can be forged by any code that ran before it (print the success
line, replace the check function, a custom exception handler, a wrong ``torch.optim.Adam`` as the
reference), so the grader neither trusts that output nor the state the learner's code left. Putting the
state back before each check defeats replacing and patching; the authenticated verdict defeats forging
output, skipping or rewriting the check cell. What remains (code written to dig the secret out of the
kernel's memory) needs deliberate effort against this grader's code; the notebook as run (``--keep``)
shows it to a teacher.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

__all__ = ["ExerciseResult", "GradeReport", "Course", "grade_notebook", "restore_check_cells", "check_cells",
           "missing_report", "REPO_ROOT", "DEFAULT_CELL_TIMEOUT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CELL_TIMEOUT = 300
CHECK_TAG = "check"
GUARD_ENTRY = "__course_grading_check__"


@dataclass
class ExerciseResult:
    exercise: str
    cell_id: str
    passed: bool
    points: int
    max_points: int
    message: str | None = None
    status: str = "passed"  # passed, failed, not run, not submitted
    cell: str | None = None  # the check cell, by id and position
    tampering: list = field(default_factory=list)
    output: str | None = None  # what the learner's code printed besides the success line


@dataclass
class GradeReport:
    """The grade of one notebook; iterating over it gives its :class:`ExerciseResult`\\ s."""

    notebook: str
    reference: str | None
    exercises: list[ExerciseResult] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    other_failures: list[dict] = field(default_factory=list)
    error: str | None = None
    problems: list[str] = field(default_factory=list)  # the kernel died, a time limit, the course copy changed
    tampering: list[str] = field(default_factory=list)  # what the guard found changed, over all check cells
    missing: bool = False

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
        return self.error is None and not self.missing and all(r.passed for r in self.exercises)

    def to_dict(self) -> dict:
        return {
            "notebook": self.notebook,
            "reference": self.reference,
            "exercises": [asdict(r) for r in self.exercises],
            "points": self.points,
            "max_points": self.max_points,
            "passed": self.passed,
            "missing": self.missing,
            "restored": list(self.restored),
            "other_failures": list(self.other_failures),
            "problems": list(self.problems),
            "tampering": list(self.tampering),
            "error": self.error,
        }

    def table(self, width: int = 100, verbose: bool = False) -> str:
        """The human-readable report: one row per exercise, its message wrapped below it, then the total.

        ``verbose``: every line of every message (else at most a few lines each).
        """
        lines = [f"{self.notebook}"]
        if self.error:
            lines += _wrap(f"ERROR: {self.error}", width, "  ")
        for problem in self.problems:
            lines += _wrap(f"PROBLEM: {problem}", width, "  ")
        name_width = min(max([len("exercise")] + [len(r.exercise) for r in self.exercises]), 60)
        rule = f"  {'-' * name_width}  ------  -------"
        lines.append(f"  {'exercise':<{name_width}}  result  points")
        lines.append(rule)
        for r in self.exercises:
            result = "pass" if r.passed else ("MISS" if r.status == "not submitted" else "FAIL")
            lines.append(f"  {r.exercise[:name_width]:<{name_width}}  {result:<6}  {r.points:>2} / {r.max_points}")
            details = []
            if not r.passed and r.message:
                if r.cell:
                    details.append(f"check cell {r.cell}")
                details += _layout(r.message)
            if r.tampering:
                details.append("tampering undone before the check: " + "; ".join(r.tampering))
            if r.output:
                details.append("your code printed (shown, not graded):")
                details += ["  " + line for line in r.output.splitlines()]
            shown = []
            for text in details:
                shown += _wrap(text, width, "      ", "        ")
            if not verbose and len(shown) > 8:
                shown = shown[:8] + ["      ... (--verbose shows the whole message)"]
            lines += shown
        lines.append(rule)
        lines.append(f"  {'total':<{name_width}}  {'pass' if self.passed else 'FAIL':<6}  "
                     f"{self.points:>2} / {self.max_points}")
        for note in self.restored:
            lines += _wrap(f"note: {note}", width, "  ", "    ")
        for failure in self.other_failures:
            text = f"note: cell {failure.get('cell')} (not graded) failed: {failure['message']}"
            wrapped = _wrap(text, width, "  ", "    ")
            lines += wrapped if verbose or len(wrapped) <= 3 else wrapped[:3] + ["    ..."]
        return "\n".join(lines)


def _layout(message: str) -> list[str]:
    """Split a check's message into the case, then expected against got, each on its own line."""
    out = []
    for line in message.strip().splitlines():
        line = line.strip()
        at = line.find("expected ")
        cut = line.rfind(": ", 0, at) if at > 0 else -1
        if cut > 0 and at - cut < 200:
            out += [line[:cut + 1], line[cut + 2:]]
        else:
            out.append(line)
    return out or [""]


def _wrap(text: str, width: int, indent: str, subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(text, width=max(40, width), initial_indent=indent,
                         subsequent_indent=subsequent if subsequent is not None else indent + "  ",
                         break_long_words=True, break_on_hyphens=False) or [indent]


# ---------------------------------------------------------------------------------------------
# the course, read before any learner code runs


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Course:
    """The reference notebooks and the grading code, read and hashed once, before any learner code runs."""

    def __init__(self, solutions_dir=None, names=None):
        self.solutions_dir = Path(solutions_dir) if solutions_dir is not None else default_solutions_dir()
        paths = sorted(self.solutions_dir.glob("*.ipynb")) if names is None else \
            [self.solutions_dir / name for name in names]
        self.references: dict[str, nbformat.NotebookNode] = {}
        self.problems: dict[str, str] = {}
        self.hashes: dict[str, str] = {}
        for path in paths:
            if not path.is_file():
                continue
            data = path.read_bytes()
            self.hashes[str(path)] = _sha(data)
            try:
                self.references[path.name] = nbformat.reads(data.decode("utf-8"), as_version=4)
            except Exception as err:  # noqa: BLE001
                self.problems[path.name] = f"the reference {path} could not be read: {err}"
        for path in sorted((REPO_ROOT / "course_lib" / "grading").rglob("*.py")):
            self.hashes[str(path)] = _sha(path.read_bytes())

    def notebooks(self) -> list[str]:
        """The names of the course's notebooks that have check cells, in order."""
        return [name for name, nb in self.references.items() if check_cells(nb)]

    def changed(self) -> list[str]:
        """The files of the course copy whose contents differ from what was read at the start."""
        changed = []
        for path, digest in self.hashes.items():
            try:
                now = _sha(Path(path).read_bytes())
            except OSError:
                now = None
            if now != digest:
                changed.append(os.path.relpath(path, REPO_ROOT) if path.startswith(str(REPO_ROOT)) else path)
        return changed


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


def expected_line(cell) -> str | None:
    """The success line a reference check cell printed (its stored stdout), or None if it has none."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def restore_check_cells(submission, reference):
    """A copy of ``submission`` whose check cells are exactly the reference's, and notes on what changed.

    A reference check cell is found in the submission by its id, else by its unchanged source (ids are lost
    when a notebook is saved as nbformat 4.4 or its cells are pasted into a new notebook). One that is
    missing goes back after the nearest preceding reference cell that the submission has (by id, else by
    identical source), or before the nearest following one, or at the end. Every check cell then stands
    after the cells that define the names it uses (its exercise): one placed earlier is moved. Cells tagged
    ``check`` that are not reference check cells are removed; every other cell keeps its source, loses its
    outputs.
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
                new = f"submission-cell-{index + 1}"
                while new in taken:
                    new += "-x"
                cell["id"] = new
                taken.add(new)

    # a check cell whose id is gone: found by its unchanged source
    present = {cell.get("id") for cell in nb.cells}
    by_source = {}
    for cell_id, cell in ref_checks.items():
        if cell_id not in present:
            by_source.setdefault(_source(cell).strip(), []).append(cell_id)
    for cell in nb.cells:
        if cell.get("cell_type") != "code" or cell.get("id") in ref_checks:
            continue
        candidates = by_source.get(_source(cell).strip())
        if candidates:
            cell_id = candidates.pop(0)
            notes.append(f"check cell {cell_id!r} ({exercise_of(ref_checks[cell_id])[0]}) was found by its source "
                         f"(its id was {cell.get('id')!r})")
            cell["id"] = cell_id
            cell.setdefault("metadata", {})["tags"] = list(ref_checks[cell_id].metadata.get("tags", []))

    kept, seen = [], set()
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if cell_id in ref_checks:
            if cell_id in seen:
                notes.append(f"removed a duplicate of check cell {cell_id!r} (cell {index + 1})")
                continue
            seen.add(cell_id)
            original = ref_checks[cell_id]
            if _differs(cell, original):
                notes.append(f"check cell {cell_id!r} ({exercise_of(original)[0]}) was modified; "
                             f"the original was put back")
            kept.append(copy.deepcopy(original))
        elif is_check_cell(cell):
            notes.append(f"removed cell {index + 1} tagged 'check' that is not a check cell of the reference "
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

    for cell_id in [c.get("id") for c in nb.cells if c.get("id") in ref_checks]:
        _after_dependencies(nb.cells, cell_id, notes)
    return nb, notes


def _needed_names(source: str) -> set[str]:
    """The global names a cell uses without defining them itself."""
    tree = _parse(source)
    if tree is None:
        return set()
    loaded = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    import builtins
    return loaded - _defined_names(source) - set(dir(builtins))


def _defined_names(source: str) -> set[str]:
    """The names a cell binds at its top level (def, class, assignments, imports, for targets, with ... as)."""
    tree = _parse(source)
    names: set[str] = set()
    if tree is None:
        return names

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
                continue
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.add(child.id)
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    break
            for attr in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, attr, None)
                if isinstance(inner, list):
                    visit([s for s in inner if isinstance(s, ast.stmt)] +
                          [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])

    visit(tree.body)
    return names


def _parse(source: str):
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _after_dependencies(cells, cell_id, notes) -> None:
    """Move the check cell ``cell_id`` after the first cell that defines a name it needs, if none comes before it."""
    index = next(i for i, c in enumerate(cells) if c.get("id") == cell_id)
    needed = _needed_names(_source(cells[index]))
    defined = [(i, _defined_names(_source(c))) for i, c in enumerate(cells)
               if c.get("cell_type") == "code" and i != index]
    target = index
    for name in needed:
        before = [i for i, names in defined if name in names and i < index]
        after = [i for i, names in defined if name in names and i > index]
        if not before and after:
            target = max(target, after[0])
    if target != index:
        cell = cells.pop(index)
        cells.insert(target, cell)  # after the pop, cells[target - 1] is the defining cell
        notes.append(f"check cell {cell_id!r} stood before the cell that defines what it checks; "
                     f"it was moved after cell {cells[target - 1].get('id')!r}")


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


def _guarded_notebook(nb, ref_checks: dict):
    """The notebook as run: each check cell calls the guard, which runs the original source in a clean state."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("id") in ref_checks:
            original = _source(ref_checks[cell.get("id")])
            cell["source"] = ("# The grader runs this check cell's original code in a clean state:\n"
                              + "".join(f"#     {line}\n" for line in original.splitlines())
                              + f"{GUARD_ENTRY}({cell.get('id')!r})")
            cell["outputs"], cell["execution_count"] = [], None
            tags = cell.get("metadata", {}).get("tags", [])
            cell["metadata"]["tags"] = [t for t in tags if t != "nbval-check-output"]
    return nb


# ---------------------------------------------------------------------------------------------
# running


def default_solutions_dir() -> Path:
    return REPO_ROOT / "solutions"


def default_sanitize_file() -> Path | None:
    path = REPO_ROOT / "tests" / "nbval_sanitize.cfg"
    return path if path.is_file() else None


def missing_report(name: str, reference, folder) -> GradeReport:
    """The report of a course notebook that a graded folder does not have: every exercise earns 0."""
    report = GradeReport(notebook=str(Path(folder) / name), reference=name, missing=True)
    report.problems.append(f"missing: {Path(folder) / name} is not in the submission; its exercises earn 0")
    for cell in check_cells(reference):
        exercise, points = exercise_of(cell)
        report.exercises.append(ExerciseResult(exercise, cell.get("id"), False, 0, points,
                                               f"not submitted: the folder has no {name}", status="not submitted"))
    return report


def grade_notebook(path, *, solutions_dir=None, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                   total_timeout: float | None = None, sanitize_file=None, keep_dir=None,
                   course: Course | None = None) -> GradeReport:
    """Grade one notebook against the reference of the same name in ``solutions_dir``.

    Returns a :class:`GradeReport` (iterate over it for the per-exercise results). Never raises for
    a bad submission: an unreadable notebook fails every exercise; a missing reference sets ``error``.
    ``keep_dir``: write the notebook as run there. ``course``: the course read at the start
    (:class:`Course`); by default the reference is read now.
    """
    path = Path(path)
    solutions_dir = Path(solutions_dir) if solutions_dir is not None else default_solutions_dir()
    if course is None:
        course = Course(solutions_dir, names=[path.name])
    reference_path = course.solutions_dir / path.name
    report = GradeReport(notebook=str(path), reference=str(reference_path))
    if path.name in course.problems:
        report.error = course.problems[path.name]
        return report
    reference = course.references.get(path.name)
    if reference is None:
        report.error = f"no reference notebook {reference_path} (the grader grades notebooks of the course only)"
        return report
    checks = check_cells(reference)
    if not checks:
        report.error = f"the reference {reference_path} has no check cells (cells tagged 'check')"
        return report
    changed = course.changed()
    if changed:
        report.error = ("not graded: the course copy was changed after the grader read it (" + ", ".join(changed[:5])
                        + "); grade from a copy that learner code cannot write")
        return report

    try:
        submission = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 (any unreadable file is the submission's problem)
        for cell in checks:
            name, points = exercise_of(cell)
            report.exercises.append(ExerciseResult(name, cell.get("id"), False, 0, points,
                                                   f"the notebook could not be read: {err}", status="failed"))
        return report

    restored, report.restored = restore_check_cells(submission, reference)
    ref_checks = {cell.get("id"): cell for cell in checks}
    as_run = _guarded_notebook(restored, ref_checks)
    submission_index = {c.get("id"): i + 1 for i, c in enumerate(submission.cells) if c.get("id")}
    n_cells = len(submission.cells)

    def label(cell_id):
        if cell_id in submission_index:
            return f"`{cell_id}` (cell {submission_index[cell_id]} of {n_cells})"
        position = next((i + 1 for i, c in enumerate(as_run.cells) if c.get("id") == cell_id), None)
        return f"`{cell_id}` (put back by the grader as cell {position} of {len(as_run.cells)})"

    with tempfile.TemporaryDirectory(prefix="course-grading-") as tmp:
        tmp = Path(tmp)
        work = tmp / "notebook"
        work.mkdir()
        target = work / path.name
        nbformat.write(as_run, target)
        if keep_dir is not None:
            Path(keep_dir).mkdir(parents=True, exist_ok=True)
            nbformat.write(as_run, Path(keep_dir) / path.name)
        guard_cells = {cell_id: {"source": _source(cell), "expected": expected_line(cell)}
                       for cell_id, cell in ref_checks.items()}
        run = _run_nbval(target, tmp, guard_cells, cell_timeout=cell_timeout, total_timeout=total_timeout,
                         sanitize_file=sanitize_file)

    changed = course.changed()
    if changed:
        report.problems.append("the notebook's code changed the course copy while it ran ("
                               + ", ".join(changed[:5]) + "); this grade was computed from the copy read "
                               "before it ran, and nothing more is graded from this copy")
        report.error = "the notebook's code changed the course copy"

    records = run["records"]
    by_id = {r.get("cell_id"): r for r in records}
    timed_out = [r for r in records if r.get("ename") == "Timeout"]
    died_in = run.get("died_in")
    if died_in is not None:
        report.problems.append(f"the kernel died in cell {label(died_in)}; the cells after it did not run")
    for r in timed_out:
        report.problems.append(f"cell {label(r.get('cell_id'))} ran past the {cell_timeout:g} s limit")
    if run.get("problem"):
        report.problems.append(run["problem"])
    if not run.get("ready") and died_in is None:
        report.problems.append("the grader's guard did not start in the kernel" +
                               (f": {run['guard_error']}" if run.get("guard_error") else ""))

    for cell in checks:
        cell_id = cell.get("id")
        name, points = exercise_of(cell)
        verdict = run["verdicts"].get(cell_id)
        record = by_id.get(cell_id)
        result = ExerciseResult(name, cell_id, False, 0, points, None, status="failed", cell=label(cell_id))
        if verdict is not None:
            result.tampering = list(verdict.get("tampering") or [])
            result.output = verdict.get("extra_output") or None
            if verdict.get("passed"):
                result.passed, result.points, result.status, result.message = True, points, "passed", None
            else:
                result.message = verdict.get("problem") or "the check failed"
        elif died_in == cell_id:
            result.message = "the kernel died while this check ran (os._exit, a crash, or out of memory?)"
        elif died_in is not None and (record is None or record.get("outcome") in ("pending", None)):
            result.status, result.message = "not run", f"not run: the kernel died earlier, in cell {label(died_in)}"
        elif record is not None and record.get("ename") == "Timeout":
            result.message = f"check cell {label(cell_id)} ran past the {cell_timeout:g} s limit"
        elif record is not None and record.get("outcome") == "failed":
            result.message = _message(record)
        else:
            result.status = "not run"
            result.message = "the check cell did not run" + (f": {run['problem']}" if run.get("problem") else "")
        if not result.passed and timed_out and result.message and "limit" not in result.message:
            result.message += f" (after cell {label(timed_out[0].get('cell_id'))} ran past the time limit)"
        report.exercises.append(result)
        for item in result.tampering:
            if item not in report.tampering:
                report.tampering.append(item)
    for record in records:
        if record.get("cell_id") not in ref_checks and record.get("outcome") == "failed":
            message = (f"ran past the {cell_timeout:g} s limit" if record.get("ename") == "Timeout"
                       else _message(record))
            report.other_failures.append({"cell_index": submission_index.get(record.get("cell_id")),
                                          "cell_id": record.get("cell_id"), "cell": label(record.get("cell_id")),
                                          "message": message})
    if died_in is not None and died_in not in ref_checks:
        report.other_failures.append({"cell_index": submission_index.get(died_in), "cell_id": died_in,
                                      "cell": label(died_in), "message": "the kernel died in this cell"})
    if run.get("problem") and not records:
        report.error = report.error or run["problem"]
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
    if ename == "NotRun":
        return "not run: an earlier cell ran past the time limit"
    evalue = record.get("evalue", "")
    return f"{ename}: {evalue}" if evalue else ename


_STARTUP = '''\
# Written by course_lib.grading: start the grader's guard before the notebook's first cell.
def __course_grading_start():
    import os
    config = os.environ.pop("COURSE_GRADING_GUARD", None)
    if not config:
        return
    try:
        from course_lib.grading import _guard
        _guard.install(config)
    except BaseException as err:
        channel = os.environ.get("COURSE_GRADING_CHANNEL")
        if channel:
            with open(channel, "a", encoding="utf-8") as f:
                f.write(__import__("json").dumps({"guard_error": f"{type(err).__name__}: {err}"}) + "\\n")
        raise
__course_grading_start()
del __course_grading_start
'''


def _run_nbval(notebook: Path, tmp: Path, guard_cells: dict, *, cell_timeout, total_timeout, sanitize_file):
    """Run pytest --nbval-lax on ``notebook`` in a guarded kernel, watching the kernel.

    Returns a dict: ``records`` (per cell, from the plugin), ``verdicts`` (per check cell, authenticated),
    ``ready`` (the guard started), ``died_in`` (the cell the kernel died in, or None), ``problem``.
    """
    results = tmp / "results.json"
    channel = tmp / "channel.jsonl"
    ini = tmp / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    ipython_dir = tmp / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-course-grading.py").write_text(_STARTUP, encoding="utf-8")
    nonce = secrets.token_bytes(32)
    config = tmp / "guard.json"
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        json.dump({"nonce": nonce.hex(), "channel": str(channel), "cells": guard_cells}, f)
    sanitize_file = sanitize_file if sanitize_file is not None else default_sanitize_file()
    command = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(notebook.parent),
               "-p", "no:cacheprovider", "-p", "course_lib.grading._nbval_plugin",
               "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout}",
               "-q", "--no-header", "-rN", "--tb=no", str(notebook)]
    if sanitize_file is not None:
        command[-1:-1] = ["--nbval-sanitize-with", str(Path(sanitize_file).resolve())]
    env = dict(os.environ)
    env.update(COURSE_DEVICE="cpu", COURSE_STRICT_CHECKS="1", COURSE_GRADING_RESULTS=str(results),
               IPYTHONDIR=str(ipython_dir), PYTHONDONTWRITEBYTECODE="1", COURSE_GRADING_GUARD=str(config), COURSE_GRADING_CHANNEL=str(channel))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    if total_timeout is None:
        # a safety net only: the per-cell limit is what stops a stuck cell
        total_timeout = min(7200, 60 + cell_timeout * max(1, len(nbformat.read(notebook, as_version=4).cells)))
    run = {"problem": None, "died_in": None, "ready": False, "guard_error": None}
    # a session of its own, so that a time-out stops pytest and the kernel it started, and nothing else
    # pytest's output goes to a file: a pipe would make the grader wait for every process holding it (a kernel
    # that is still shutting down) before it can read the end
    log_path = tmp / "pytest.log"
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=notebook.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
    deadline = time.monotonic() + total_timeout
    try:
        _watch(process, run, channel, nonce, results, deadline, total_timeout, cell_timeout)
    except BaseException:  # the grader itself interrupted: stop pytest and its kernel too
        _kill_group(process)
        raise
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if process.returncode not in (0, 1, None) and run["died_in"] is None and run["problem"] is None \
            and process.returncode >= 0:
        run["problem"] = f"pytest --nbval-lax exited with status {process.returncode}:\n" + output.strip()[-3000:]
    channel_data = _read_channel(channel, nonce)
    run.update(records=_read_records(results), verdicts=channel_data["verdicts"], ready=channel_data["ready"],
               guard_error=channel_data["guard_error"])
    return run


def _watch(process, run, channel, nonce, results, deadline, total_timeout, cell_timeout) -> None:
    """Wait for pytest; stop it at once if the kernel dies while a cell runs, or when the total time is up."""
    kernel_pid = None
    while process.poll() is None:
        time.sleep(0.2)
        if time.monotonic() > deadline:
            _kill_group(process)
            run["problem"] = f"the notebook ran longer than {total_timeout:g} s in all and was stopped"
            return
        if kernel_pid is None:
            kernel_pid = _read_channel(channel, nonce)["pid"]
            continue
        if not _alive(kernel_pid):
            running = [r for r in _read_records(results) if r.get("outcome") == "running"]
            if not running:
                continue  # the notebook is done: nbval stopped the kernel
            started = running[-1].get("started") or time.time()
            if time.time() - started >= cell_timeout - 1:
                continue  # nbval stopped a kernel that did not answer its interrupt: a time limit
            run["died_in"] = running[-1].get("cell_id")
            _kill_group(process)
            return


def _read_records(results: Path) -> list:
    try:
        return json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


def _read_channel(channel: Path, nonce: bytes) -> dict:
    """The authenticated records of the guard: its start (with the kernel's pid) and a verdict per check cell."""
    found = {"pid": None, "ready": False, "verdicts": {}, "guard_error": None}
    try:
        lines = channel.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if "guard_error" in entry and found["guard_error"] is None:
            found["guard_error"] = str(entry["guard_error"])[:500]
            continue
        text, mac = entry.get("record"), entry.get("mac")
        if not isinstance(text, str) or not isinstance(mac, str):
            continue
        good = hmac.new(nonce, text.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, mac):
            continue
        record = json.loads(text)
        if record.get("ready"):
            found["ready"], found["pid"] = True, record.get("pid")
        elif "cell" in record:
            found["verdicts"][record["cell"]] = record
    return found


def _alive(pid: int) -> bool:
    try:
        import psutil
    except ImportError:  # pragma: no cover (ipykernel needs psutil)
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, 9)
    except (ProcessLookupError, PermissionError, AttributeError):
        process.kill()
    process.wait()
