"""lessons/ is generated from solutions/: no drift, no leaked solution line, and authoring's own rules.

The tests over the course's notebooks are parametrized over whatever ``solutions/*.ipynb`` exist,
plus the fixture notebook ``tests/fixtures/solutions/90_fixture.ipynb`` (so they run from day one).
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_lib import authoring
from course_lib.authoring import AuthoringError, make_lesson, solution_blocks, strip_solutions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PAIRS = [(path, ROOT / "lessons") for path in sorted((ROOT / "solutions").glob("*.ipynb"))] + [
    (FIXTURES / "solutions" / "90_fixture.ipynb", FIXTURES / "lessons")]
PAIR_IDS = [str(solution.relative_to(ROOT)) for solution, _ in PAIRS]

# lines too generic to prove a leak when they show up in a lesson
TRIVIAL = re.compile(r"^(|#.*|pass|return|return \w+|else:|try:|finally:|break|continue|[)\]}]+[,:]?|\"\"\"|''')$")


def _read(path):
    return nbformat.read(path, as_version=4)


def _sources(nb):
    return ["".join(c.source) if isinstance(c.source, list) else c.source for c in nb.cells]


# ---------------------------------------------------------------------------------------------
# the course's notebooks (and the fixture)


@pytest.mark.parametrize("solution, lessons", PAIRS, ids=PAIR_IDS)
def test_lesson_is_exactly_what_authoring_writes(solution, lessons):
    lesson = lessons / solution.name
    assert lesson.is_file(), f"{lesson} is missing: run `python -m course_lib.authoring`"
    assert lesson.read_text(encoding="utf-8") == authoring.lesson_text(solution), (
        f"{lesson} differs from what {solution} generates: run `python -m course_lib.authoring` "
        f"(lessons/ is never edited by hand)")


def test_every_lesson_has_a_solution():
    assert authoring.check(ROOT / "solutions", ROOT / "lessons") == []
    assert authoring.check(FIXTURES / "solutions", FIXTURES / "lessons") == []


def leaked_lines(solution, lesson) -> list[str]:
    """Non-trivial lines of solution blocks that show up in the lesson (its sources or outputs).

    A line that the solution notebook also has outside its solution blocks (in the skeleton around a
    block, in the text, in another cell) is not secret, so it does not count.
    """
    inside, outside = set(), set()
    for index, (cell, source) in enumerate(zip(solution.cells, _sources(solution))):
        if cell.cell_type != "code":
            outside.update(line.strip() for line in source.splitlines())
            continue
        blocks = solution_blocks(source, f"cell {index + 1}")
        block_lines = {line for block in blocks for line in block}
        inside.update(line.strip() for line in block_lines)
        outside.update(line.strip() for line in source.splitlines() if line not in block_lines)
    secret = {line for line in inside - outside if not TRIVIAL.match(line)}
    shown = set()
    for cell, source in zip(lesson.cells, _sources(lesson)):
        shown.update(line.strip() for line in source.splitlines())
        for output in cell.get("outputs", []):
            text = output.get("text") or "".join(output.get("data", {}).get("text/plain", ""))
            text += "\n".join(output.get("traceback", []))
            shown.update(line.strip() for line in str(text).splitlines())
    return sorted(secret & shown)


@pytest.mark.parametrize("solution, lessons", PAIRS, ids=PAIR_IDS)
def test_no_solution_line_leaks_into_the_lesson(solution, lessons):
    leaked = leaked_lines(_read(solution), _read(lessons / solution.name))
    assert not leaked, f"lines of solution blocks of {solution.name} appear in the lesson: {leaked}"


def test_the_leak_test_finds_a_leak():
    solution = _read(FIXTURES / "solutions" / "90_fixture.ipynb")
    lesson = _read(FIXTURES / "lessons" / "90_fixture.ipynb")
    assert leaked_lines(solution, lesson) == []
    lesson.cells[-1].source += "\n        x = x - lr * (A @ x - b)"  # a solution line, pasted elsewhere
    lesson.cells[0].source += "\n    return 2 / (mu + L)"  # in a markdown cell too
    assert leaked_lines(solution, lesson) == ["return 2 / (mu + L)", "x = x - lr * (A @ x - b)"]


@pytest.mark.parametrize("solution, lessons", PAIRS, ids=PAIR_IDS)
def test_lesson_keeps_cell_ids_and_shows_no_output_not_even_a_success_line(solution, lessons):
    source, lesson = _read(solution), _read(lessons / solution.name)
    assert [c.id for c in lesson.cells] == [c.id for c in source.cells]
    assert [c.cell_type for c in lesson.cells] == [c.cell_type for c in source.cells]
    n_checks = 0
    for original, cell in zip(source.cells, lesson.cells):
        if cell.cell_type != "code":
            assert cell.source == original.source
        elif "check" in cell.metadata.get("tags", []):
            n_checks += 1
            assert cell.source == original.source
            assert any("checks passed" in o.get("text", "") for o in original.outputs)  # the grader's expected line
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None  # no success line before it is earned
    assert n_checks > 0, f"{solution.name} has no check cell"


# ---------------------------------------------------------------------------------------------
# strip_solutions


def test_a_block_becomes_the_stub_at_its_indentation():
    source = (
        "class Adam(torch.optim.Optimizer):\n"
        "    def step(self, closure=None):\n"
        "        loss = None\n"
        "        ### BEGIN SOLUTION\n"
        "        secret = 1\n"
        "        more_secret = 2\n"
        "        ### END SOLUTION\n"
        "        return loss\n"
    )
    assert strip_solutions(source) == (
        "class Adam(torch.optim.Optimizer):\n"
        "    def step(self, closure=None):\n"
        "        loss = None\n"
        "        # YOUR CODE HERE\n"
        "        raise NotImplementedError()\n"
        "        return loss\n"
    )


def test_several_blocks_and_no_trailing_newline():
    source = ("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\n"
              "def g(x):\n  ### BEGIN SOLUTION\n  return 2 * x\n  ### END SOLUTION")
    assert strip_solutions(source) == ("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n\n"
                                       "def g(x):\n  # YOUR CODE HERE\n  raise NotImplementedError()")
    assert solution_blocks(source) == [["    return x"], ["  return 2 * x"]]


def test_source_without_blocks_is_unchanged():
    source = "x = 1\n# a comment about the solution\nprint('### BEGIN SOLUTION')\n"
    assert strip_solutions(source) == source


@pytest.mark.parametrize("source, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", r"unterminated ### BEGIN SOLUTION \(line 2\)"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n", r"line 3: ### BEGIN SOLUTION inside the block"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", r"line 3: ### END SOLUTION without"),
    ("def f():\n    ### BEGIN SOLUTIONS\n    return 1\n    ### END SOLUTION\n", r"line 2: .* looks like a solution marker"),
    ("def f():\n    ## BEGIN SOLUTION\n    return 1\n    ## END SOLUTION\n", r"line 2: .* looks like a solution marker"),
])
def test_malformed_markers_are_errors(source, message):
    with pytest.raises(AuthoringError, match=message):
        strip_solutions(source, "nb.ipynb, cell 3")


# ---------------------------------------------------------------------------------------------
# make_lesson


def _solution_notebook():
    """A small executed solution notebook, as an author leaves it."""
    exercise = new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                             id="ex", execution_count=2, metadata={"tags": ["exercise"], "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}},
                             outputs=[])
    check = new_code_cell("from course_lib.grading import check_f\ncheck_f(f)", id="ex-check", execution_count=7,
                          metadata={"tags": ["check", "nbval-check-output"],
                                    "grading": {"exercise": "1 f", "points": 2}, "collapsed": False},
                          outputs=[new_output("stream", name="stdout", text="f: all 3 checks passed\n")])
    explore = new_code_cell("print(f(3))", id="explore", execution_count=9,
                            outputs=[new_output("stream", name="stdout", text="6\n")],
                            metadata={"scrolled": True})
    result = new_code_cell("f(1)", id="result", execution_count=10,
                           outputs=[new_output("execute_result", data={"text/plain": "2"}, execution_count=10)])
    nb = new_notebook(cells=[new_markdown_cell("# Title", id="title"),
                             new_code_cell("import torch", id="imports", execution_count=1), exercise, check,
                             explore, result])
    nb.metadata = {"kernelspec": {"name": "my-env", "display_name": "My env", "language": "python"},
                   "language_info": {"name": "python", "version": "3.11.7"}, "widgets": {"state": {}},
                   "course": {"keep": "me"}}
    return nb


def test_make_lesson_stubs_exercises_and_clears_every_output():
    lesson = make_lesson(_solution_notebook(), "nb.ipynb")
    cells = {c.id: c for c in lesson.cells}
    assert cells["ex"].source == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert cells["explore"].outputs == [] and cells["explore"].execution_count is None
    assert cells["result"].outputs == [] and cells["result"].execution_count is None
    assert cells["imports"].execution_count is None
    check = cells["ex-check"]
    assert check.outputs == [] and check.execution_count is None  # the lesson claims nothing before it runs
    assert check.metadata["deletable"] is False and check.metadata["editable"] is False
    assert check.metadata["grading"] == {"exercise": "1 f", "points": 2}


def test_make_lesson_normalizes_metadata():
    lesson = make_lesson(_solution_notebook(), "nb.ipynb")
    assert lesson.metadata["kernelspec"]["name"] == "python3"
    assert "version" not in lesson.metadata["language_info"]
    assert "widgets" not in lesson.metadata
    assert lesson.metadata["course"] == {"keep": "me"}
    cells = {c.id: c for c in lesson.cells}
    assert "execution" not in cells["ex"].metadata
    assert "collapsed" not in cells["ex-check"].metadata and "scrolled" not in cells["explore"].metadata


def test_make_lesson_is_deterministic_and_refuses_a_lesson_as_its_source():
    nb = _solution_notebook()
    text = nbformat.writes(make_lesson(nb, "nb.ipynb"))
    rerun = copy.deepcopy(nb)  # the same notebook executed again elsewhere: other counts, timings, Python
    for cell in rerun.cells:
        if cell.cell_type == "code":
            cell.execution_count = (cell.execution_count or 0) + 40
            cell.metadata["execution"] = {"iopub.status.busy": "2030-01-01T00:00:00Z"}
    rerun.metadata["language_info"]["version"] = "3.12.1"
    assert nbformat.writes(make_lesson(rerun, "nb.ipynb")) == text
    lesson = make_lesson(nb, "nb.ipynb")
    with pytest.raises(AuthoringError, match="no stored output"):  # a lesson is never a source: no success lines
        make_lesson(lesson, "nb.ipynb")


def test_make_lesson_does_not_change_its_input():
    nb = _solution_notebook()
    before = nbformat.writes(nb)
    make_lesson(nb, "nb.ipynb")
    assert nbformat.writes(nb) == before


def _broken(change):
    nb = _solution_notebook()
    change({c.id: c for c in nb.cells}, nb)
    return nb


@pytest.mark.parametrize("change, message", [
    (lambda c, nb: c["ex"].update(source="def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"),
     r"nb\.ipynb, cell 3 \(id 'ex'\): unterminated ### BEGIN SOLUTION"),
    (lambda c, nb: c["ex"].metadata.update(tags=[]), r"cell 3 \(id 'ex'\): a cell with a solution block needs the tag"),
    (lambda c, nb: c["ex-check"].metadata.update(tags=["check"]), r"cell 4 \(id 'ex-check'\): .*missing \['nbval-check-output'\]"),
    (lambda c, nb: c["ex-check"].metadata.pop("grading"), r"cell 4 \(id 'ex-check'\): a check cell needs the metadata"),
    (lambda c, nb: c["ex-check"].metadata.update(grading={"exercise": "x", "points": "2"}), r"cell 4 .*grading"),
    (lambda c, nb: c["ex-check"].update(outputs=[], execution_count=None), r"cell 4 .*no stored output"),
    (lambda c, nb: c["ex-check"].update(outputs=[new_output("error", ename="AssertionError", evalue="x",
                                                            traceback=[])]), r"cell 4 .*an error"),
    (lambda c, nb: c["ex-check"].update(source="### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n"),
     r"cell 4 .*cannot hold a solution block"),
    (lambda c, nb: c["explore"].update(id="ex"), r"cell 5 \(id 'ex'\): id 'ex' is also the id of cell 3"),
    (lambda c, nb: nb.update(nbformat_minor=4), r"nb\.ipynb: nbformat 4\.4 has no cell ids"),
])
def test_bad_solution_notebooks_are_errors_naming_notebook_and_cell(change, message):
    with pytest.raises(AuthoringError, match=message):
        make_lesson(_broken(change), "nb.ipynb")


# ---------------------------------------------------------------------------------------------
# the command line


def _run(*args):
    """``python -m course_lib.authoring ARGS``, in process (the module's entry point is tested once below)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = authoring.main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_command_line_writes_then_checks(tmp_path):
    solutions, lessons = tmp_path / "solutions", tmp_path / "lessons"
    solutions.mkdir()
    nbformat.write(_solution_notebook(), solutions / "01_a.ipynb")
    nbformat.write(_solution_notebook(), solutions / "02_b.ipynb")
    dirs = ("--solutions", solutions, "--lessons", lessons)

    missing = _run("--check", *dirs)
    assert missing.returncode == 1 and "01_a.ipynb is missing" in missing.stderr

    written = _run(*dirs)
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in lessons.iterdir()) == ["01_a.ipynb", "02_b.ipynb"]
    assert _run("--check", *dirs).returncode == 0
    assert _run(*dirs).stdout == ""  # nothing to rewrite

    (lessons / "02_b.ipynb").write_text((lessons / "02_b.ipynb").read_text().replace("YOUR CODE HERE", "mine"))
    (lessons / "03_stale.ipynb").write_text((lessons / "01_a.ipynb").read_text())
    drift = _run("--check", *dirs)
    assert drift.returncode == 1
    assert "02_b.ipynb differs" in drift.stderr and "03_stale.ipynb has no solution" in drift.stderr
    assert "01_a.ipynb" not in drift.stderr

    rewritten = _run(*dirs)
    assert "wrote" in rewritten.stdout and "02_b.ipynb" in rewritten.stdout and "removed" in rewritten.stdout
    assert _run("--check", *dirs).returncode == 0


def test_command_line_error_names_notebook_and_cell(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(_broken(lambda c, nb: c["ex"].update(source="def f():\n    ### BEGIN SOLUTION\n")),
                   solutions / "05_broken.ipynb")
    result = _run("--solutions", solutions, "--lessons", tmp_path / "lessons")
    assert result.returncode == 2
    assert "05_broken.ipynb, cell 3 (id 'ex'): unterminated ### BEGIN SOLUTION" in result.stderr
    assert not (tmp_path / "lessons" / "05_broken.ipynb").exists()


def test_python_dash_m_checks_the_fixture():
    result = subprocess.run([sys.executable, "-m", "course_lib.authoring", "--check", "--solutions",
                             str(FIXTURES / "solutions"), "--lessons", str(FIXTURES / "lessons")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "lessons/ is up to date"


# ---------------------------------------------------------------------------------------------
# `python -m course_lib.authoring --execute`: stored outputs are the output of one command


def test_execute_rewrites_outputs_and_keeps_ids_tags_and_sources(tmp_path):
    source = _read(FIXTURES / "solutions" / "90_fixture.ipynb")
    stale = copy.deepcopy(source)
    for cell in stale.cells:
        if cell.cell_type == "code":
            cell.outputs = [new_output("stream", name="stdout", text="stale output\n")]
            cell.execution_count = 99
            cell.metadata["execution"] = {"iopub.status.busy": "2020-01-01T00:00:00Z"}
    stale.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    (tmp_path / "solutions").mkdir()
    nbformat.write(stale, tmp_path / "solutions" / "90_fixture.ipynb")

    written = authoring.execute(tmp_path / "solutions", progress=None)

    assert written == [str(tmp_path / "solutions" / "90_fixture.ipynb")]
    run = _read(tmp_path / "solutions" / "90_fixture.ipynb")
    assert [c.get("id") for c in run.cells] == [c.get("id") for c in source.cells]
    assert [c.metadata.get("tags") for c in run.cells] == [c.metadata.get("tags") for c in source.cells]
    assert _sources(run) == _sources(source)
    assert "widgets" not in run.metadata
    code = [c for c in run.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    for new, old in zip(code, [c for c in source.cells if c.cell_type == "code"]):
        assert "execution" not in new.metadata
        texts = ["".join(o.get("text", "")) for o in new.outputs if o.output_type == "stream"]
        assert "stale output\n" not in texts
        if "nbval-ignore-output" not in old.metadata.get("tags", []):
            assert texts == ["".join(o.get("text", "")) for o in old.outputs if o.output_type == "stream"]


def test_execute_writes_nothing_when_a_cell_raises(tmp_path):
    nb = new_notebook(cells=[new_code_cell("print('first')", id="a"), new_code_cell("1 / 0", id="b")])
    nb.metadata["kernelspec"] = dict(authoring.KERNELSPEC)
    (tmp_path / "solutions").mkdir()
    path = tmp_path / "solutions" / "91_broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    with pytest.raises(AuthoringError, match="91_broken.ipynb: a cell raised"):
        authoring.execute(tmp_path / "solutions", progress=None)
    assert path.read_bytes() == before


def test_consecutive_streams_are_stored_as_one():
    from nbformat.v4 import new_output

    outputs = [new_output("stream", name="stdout", text="a\n"), new_output("stream", name="stdout", text="b\n"),
               new_output("stream", name="stderr", text="warning\n"), new_output("stream", name="stdout", text="c\n"),
               new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
               new_output("stream", name="stdout", text="d\n")]
    joined = authoring.coalesce_streams(outputs)
    assert [(o["output_type"], o.get("name"), o.get("text")) for o in joined] == [
        ("stream", "stdout", "a\nb\n"), ("stream", "stderr", "warning\n"), ("stream", "stdout", "c\n"),
        ("execute_result", None, None), ("stream", "stdout", "d\n")]
