"""The grading works: every check passes correct code and fails planted bugs, and the grader cannot be fooled
by editing or deleting check cells.

* Check functions, in process (fast): a correct solution of every exercise (written from scratch in
  ``tests/fixtures/learner_code.py``, independently of course_lib) passes with exactly its success line;
  each planted bug fails with a message naming the case, the step and expected against got.
* ``restore_check_cells`` (fast): edited, deleted, re-id'd and forged check cells.
* The grader end to end (slow, runs notebooks): on the fixture notebook ``tests/fixtures`` and on every
  ``solutions/*.ipynb`` of the course: a solution passes; an unsolved lesson (three of the course's, see
  FORGED) fails at its check cells and only with NotImplementedError, even when its check cells were
  overwritten with their success lines or deleted; a planted bug costs exactly its exercise's points.
* Strict and lab behaviour of a check: under pytest, nbval and the grader an unsolved exercise raises
  NotImplementedError; in a learner's lab the check prints "Not solved yet: ..." and Run All goes on.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

import course_lib.grading as grading
from course_lib.grading import (OPTIMIZER_CHECKS, check_gradient_descent, check_hvp, check_minibatch_sgd,
                                check_momentum_rate, check_optimal_momentum, check_optimizer, check_step_size_theory,
                                grade_notebook, restore_check_cells)
from course_lib.grading.grader import check_cells, exercise_of
from course_lib.grading.optimizers import run_optimizer_cases
from tiers import course_params

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE = "90_fixture.ipynb"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
CELL_TIMEOUT = 300


def _load_learner_code():
    spec = importlib.util.spec_from_file_location("learner_code", FIXTURES / "learner_code.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


L = _load_learner_code()
DETAIL = (r"case \d+ of \d+ \(.*\).*(step \d+: .*expected .*, got |raised |returned None|has shape|did not raise; "
          r"expected ValueError|expected torch's message)")


def _assert_fails(check, *args, pattern=DETAIL, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args, **kwargs)
    message = str(info.value)
    assert re.search(pattern, message, re.S), f"message does not match {pattern!r}:\n{message}"
    assert "checks passed" not in message
    return message


# ---------------------------------------------------------------------------------------------
# check functions: correct code passes with exactly one fixed line


SUCCESS_LINES = {  # stored as expected outputs in the lessons: changing one means re-executing solutions/
    "gd": "GD optimizer: all 7 checks passed", "sgd": "SGD: all 8 checks passed",
    "sgd_momentum": "SGD with momentum: all 8 checks passed", "adagrad": "Adagrad: all 7 checks passed",
    "adadelta": "Adadelta: all 7 checks passed", "rmsprop": "RMSprop: all 8 checks passed",
    "adam": "Adam: all 7 checks passed", "adamw": "AdamW: all 7 checks passed",
    "amsgrad": "AMSGrad: all 7 checks passed", "adamax": "Adamax: all 7 checks passed",
    "nadam": "NAdam: all 7 checks passed", "adafactor": "Adafactor: all 7 checks passed",
    "adabound": "AdaBound: all 8 checks passed",
}


def test_every_optimizer_name_has_a_correct_solution_and_a_success_line():
    assert set(L.CORRECT) == set(OPTIMIZER_CHECKS) == set(SUCCESS_LINES)
    for name, spec in OPTIMIZER_CHECKS.items():
        assert len(spec.cases) >= 5, name
        assert any(case.second_group for case in spec.cases), f"{name}: no case with two parameter groups"
        assert any(() in case.shapes for case in spec.cases), f"{name}: no 0-dim parameter"
        assert max(case.steps for case in spec.cases) >= 100, f"{name}: no case with many steps"
        if "weight_decay" in spec.needs:
            assert any(case.kwargs.get("weight_decay") for case in spec.cases), f"{name}: no weight decay"
        for keyword in spec.needs:  # every hyperparameter is set away from its default somewhere
            assert any(keyword in case.kwargs or keyword in (case.second_group or {}) for case in spec.cases), \
                f"{name}: {keyword} is never set"


@pytest.mark.parametrize("name", sorted(L.CORRECT))
def test_correct_optimizer_passes_with_one_fixed_line(name, capsys):
    rng_before = torch.random.get_rng_state()
    dtype_before = torch.get_default_dtype()
    check_optimizer(L.CORRECT[name], name)
    assert capsys.readouterr() == (SUCCESS_LINES[name] + "\n", "")
    assert torch.equal(torch.random.get_rng_state(), rng_before), "a check must not move the global RNG"
    assert torch.get_default_dtype() == dtype_before


def _course_optimizer(name):
    import course_lib.optim as optim
    from course_lib.optim._base import Optimizer as Base

    cls = getattr(optim, {"gd": "SGD", "sgd": "SGD", "sgd_momentum": "SGD", "adagrad": "Adagrad",
                          "adadelta": "Adadelta", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
                          "amsgrad": "AMSGrad", "adamax": "Adamax", "nadam": "NAdam", "adafactor": "Adafactor",
                          "adabound": "AdaBound"}[name])
    if cls.update is Base.update and "step" not in vars(cls):
        pytest.skip(f"course_lib.optim.{cls.__name__} is not written yet")
    return cls


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CHECKS))
def test_course_lib_optimizers_pass_the_learners_checks(name, capsys):
    """The library the lessons explore with is held to the same standard as the learners."""
    run_optimizer_cases(_course_optimizer(name), name)
    assert capsys.readouterr().out == SUCCESS_LINES[name] + "\n"


@pytest.mark.parametrize("check, args, line", [
    (check_hvp, (L.hvp,), "Hessian-vector product: all 6 checks passed"),
    (check_gradient_descent, (L.gradient_descent,), "Gradient descent: all 5 checks passed"),
    (check_step_size_theory, (L.convergence_rate, L.best_learning_rate), "Step-size theory: all 6 checks passed"),
    (check_minibatch_sgd, (L.minibatch_sgd,), "Mini-batch SGD: all 5 checks passed"),
    (check_momentum_rate, (L.momentum_rate,), "Momentum rate: all 8 checks passed"),
    (check_optimal_momentum, (L.optimal_momentum,), "Optimal momentum: all 6 checks passed"),
    # not a bug: lr* and beta* are symmetric in mu and L, so a learner who swaps them still passes
    (check_optimal_momentum, (L.optimal_momentum_mu_and_l_swapped,), "Optimal momentum: all 6 checks passed"),
], ids=["hvp", "gradient_descent", "step_size_theory", "minibatch_sgd", "momentum_rate", "optimal_momentum",
        "optimal_momentum-mu-L-swapped"])
def test_correct_functions_pass_with_one_fixed_line(check, args, line, capsys):
    rng_before = torch.random.get_rng_state()
    check(*args)
    assert capsys.readouterr() == (line + "\n", "")
    assert torch.equal(torch.random.get_rng_state(), rng_before)


# ---------------------------------------------------------------------------------------------
# check functions: planted bugs fail, saying where


@pytest.mark.parametrize("name, cls, bug, pattern", L.OPTIMIZER_BUGS,
                         ids=[f"{name}-{bug}" for name, _, bug, _ in L.OPTIMIZER_BUGS])
def test_planted_optimizer_bug_is_caught(name, cls, bug, pattern, capsys):
    check_optimizer(cls, name)  # the same class without the bug passes the same check
    capsys.readouterr()
    message = _assert_fails(check_optimizer, L.with_bug(cls, bug), name, pattern=pattern)
    assert re.search(DETAIL, message, re.S), message
    assert capsys.readouterr().out == "", "a failing check prints nothing (no partial score)"


def test_weight_decay_after_momentum_is_caught_by_the_parameters_too():
    buggy = L.with_bug(L.SGDMomentum, "decay_after_momentum")
    message = _assert_fails(check_optimizer, buggy, "sgd_momentum")
    assert "state['momentum_buffer']" in message  # with torch's state keys it shows at step 1 ...
    message = _assert_fails(check_optimizer, buggy, "sgd_momentum", compare_state=False)
    assert re.search(r"step 2: parameter", message)  # ... and in the parameters one step later


def test_state_keys_are_compared_only_when_asked():
    message = _assert_fails(check_optimizer, L.AdamWrongStateKeys, "adam", pattern=r"has no key 'exp_avg'")
    assert "yours has ['m', 'step', 'v']" in message
    check_optimizer(L.AdamWrongStateKeys, "adam", compare_state=False)


@pytest.mark.parametrize("cls, name, pattern", [
    (L.WrappedAdam, "adam", r"case 1 of 7 .*creating the optimizer ran torch\.optim\.adam\.Adam\.__init__"),
    # subclasses only torch.optim.Optimizer and copies torch's state: the inheritance guard cannot see it
    (L.WrappedAdamax, "adamax", r"case 1 of 7 .*step 1: step\(closure\) ran torch\.optim\.adamax\.Adamax\.__init__"),
], ids=["adam", "adamax"])
def test_a_class_that_runs_a_torch_optimizer_inside_fails_saying_so(cls, name, pattern):
    message = _assert_fails(check_optimizer, cls, name, pattern=pattern)
    assert "an existing implementation" in message and "write the update rule yourself" in message


def test_tiny_difference_hint_names_eps_only_where_eps_matters():
    for cls, name in ((L.with_bug(L.AdamW, "decay_without_lr"), "adamw"),
                      (L.with_bug(L.SGD, "weight_decay_sign"), "sgd")):
        message = _assert_fails(check_optimizer, cls, name)
        assert "eps" not in message.split("differs", 1)[1], message


@pytest.mark.parametrize("cls, pattern", [
    (L.NotAnOptimizer, r"must subclass torch\.optim\.Optimizer"),
    (L.BorrowedAdam, r"inherits from torch\.optim\.adam\.Adam"),
    (torch.optim.Adam, r"is or inherits from torch\.optim\.adam\.Adam"),
], ids=["not-an-optimizer", "subclass-of-torch-adam", "torch-adam-itself"])
def test_optimizer_check_needs_an_own_subclass_of_optimizer(cls, pattern):
    _assert_fails(check_optimizer, cls, "adam", pattern=pattern)


def test_optimizer_check_rejects_course_lib_classes():
    import course_lib.optim
    _assert_fails(check_optimizer, course_lib.optim.SGD, "sgd", pattern=r"course_lib\.optim\.sgd\.SGD")


def test_optimizer_check_needs_a_class_and_a_known_name():
    _assert_fails(check_optimizer, L.Adam([torch.zeros(1, requires_grad=True)]), "adam",
                  pattern=r"needs the class itself")
    with pytest.raises(ValueError, match="unknown optimizer check 'adamm'.*adam"):
        check_optimizer(L.Adam, "adamm")


def test_constructor_without_the_needed_keywords_fails_with_a_hint():
    _assert_fails(check_optimizer, L.GD, "sgd", pattern=r"raised TypeError.*Hint: the constructor must accept "
                                                         r"the keyword arguments lr, weight_decay, maximize")


@pytest.mark.parametrize("check, args, pattern", [
    (check_hvp, (L.hvp_returns_gradient,), r"case 1 of 6 .*H\(x\) v differs .*expected .*got"),
    (check_hvp, (L.hvp_ignores_v,), r"case 1 of 6 .*H\(x\) v differs"),
    (check_hvp, (L.hvp_without_create_graph,), r"raised RuntimeError.*Hint: .*create_graph=True"),
    (check_hvp, (L.hvp_needs_grad_input,), r"raised RuntimeError.*Hint: x is a plain tensor"),
    (check_hvp, (L.hvp_finite_differences,), r"case 1 of 6 .*evaluated f at a point other than x .*finite differences"),
    (check_gradient_descent, (L.gradient_descent_off_by_one,), r"shape \(10, 2\), expected \(11, 2\): row 0 is x0"),
    (check_gradient_descent, (L.gradient_descent_wrong_gradient,), r"iterate x_1 \(row 1\) differs .*expected 1.9, got 2.1"),
    (check_gradient_descent, (L.gradient_descent_float32,), r"dtype torch\.float32"),
    (check_gradient_descent, (L.gradient_descent_in_place,), r"changed its input x0 in place"),
    (check_step_size_theory, (L.convergence_rate_without_abs, L.best_learning_rate), r"case 3 of 6 .*expected 2, got 0\.7"),
    (check_step_size_theory, (L.convergence_rate, L.best_learning_rate_two_over_l), r"best_learning_rate\(mu=1, L=10\): expected 0\.1818\d+, got 0\.2"),
    (check_step_size_theory, (L.convergence_rate, L.best_learning_rate_one_over_sum), r"best_learning_rate.*got 0\.0909"),
    (check_minibatch_sgd, (L.minibatch_sgd_no_reshuffle,), r"case 2 of 5 .*2 epochs\).*the final w differs"),
    (check_minibatch_sgd, (L.minibatch_sgd_divides_by_batch_size,), r"case 2 of 5 \(n=10, batch_size=4: the last batch has 2 rows"),
    (check_minibatch_sgd, (L.minibatch_sgd_ignores_generator,), r"case 1 of 5 .*Hint: .*did not draw exactly one"),
    (check_minibatch_sgd, (L.minibatch_sgd_in_order,), r"case 1 of 5 .*the final w differs"),
    (check_momentum_rate, (L.momentum_rate_always_sqrt_beta,),
     r"case 2 of 8 \(real roots.*momentum_rate\(lr=0\.1, beta=0\.5, lam=0\.2\): expected 0\.958\d+, got 0\.707\d+"),
    (check_momentum_rate, (L.momentum_rate_ignores_beta,), r"case 1 of 8 \(complex roots.*expected 0\.9, got 0\.5"),
    (check_momentum_rate, (L.momentum_rate_without_abs,), r"case 3 of 8 \(beta = 0.*expected 0\.2, got 0\n"),
    (check_momentum_rate, (L.momentum_rate_minus_beta,),
     r"case 1 of 8 .*Hint: .*\[\[1 \+ beta - lr\*lam, -beta\], \[1, 0\]\]"),
    (check_momentum_rate, (L.momentum_rate_complex,), r"case 1 of 8 .*returned a complex number"),
    (check_optimal_momentum, (L.optimal_momentum_beta_not_squared,),
     r"case 1 of 6 \(kappa = 100\): optimal_momentum\(mu=1, L=100\): beta expected 0\.669\d+, got 0\.8181\d+"
     r".*Hint: .*beta\* is its square"),
    (check_optimal_momentum, (L.optimal_momentum_lr_not_squared,),
     r"case 1 of 6 .*lr expected 0\.0330\d+, got 0\.1818\d+.*Hint: the best step is the square"),
    (check_optimal_momentum, (L.optimal_momentum_gd_step,),
     r"case 1 of 6 .*lr expected 0\.0330\d+, got 0\.0198\d+.*Hint: lr = 2/\(mu \+ L\) is gradient descent's"),
    (check_optimal_momentum, (L.optimal_momentum_beta_first,), r"case 1 of 6 .*Hint: you returned \(beta, lr\)"),
    (check_optimal_momentum, (L.optimal_momentum_without_roots,), r"case 1 of 6 .*beta expected 0\.669\d+, got 0\.96"),
    (check_optimal_momentum, (L.optimal_momentum_one_number,), r"case 1 of 6 .*must return a pair of numbers"),
], ids=["hvp-gradient", "hvp-ignores-v", "hvp-no-create-graph", "hvp-needs-grad-input", "hvp-finite-differences",
        "gd-off-by-one",
        "gd-wrong-gradient", "gd-float32", "gd-in-place", "rate-without-abs", "best-lr-2-over-L",
        "best-lr-1-over-sum", "minibatch-no-reshuffle", "minibatch-divides-by-batch-size",
        "minibatch-ignores-generator", "minibatch-in-order", "momentum-rate-sqrt-beta", "momentum-rate-ignores-beta",
        "momentum-rate-without-abs", "momentum-rate-minus-beta", "momentum-rate-complex",
        "optimal-momentum-beta-not-squared", "optimal-momentum-lr-not-squared", "optimal-momentum-gd-step",
        "optimal-momentum-beta-first", "optimal-momentum-without-roots", "optimal-momentum-one-number"])
def test_planted_function_bug_is_caught(check, args, pattern, capsys):
    _assert_fails(check, *args, pattern=pattern)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("check, n_args", [
    (check_hvp, 1), (check_gradient_descent, 1), (check_step_size_theory, 2), (check_minibatch_sgd, 1),
    (check_momentum_rate, 1), (check_optimal_momentum, 1), (lambda cls: check_optimizer(cls, "adam"), 0),
], ids=["hvp", "gradient_descent", "step_size_theory", "minibatch_sgd", "momentum_rate", "optimal_momentum",
        "optimizer"])
def test_unsolved_exercise_raises_not_implemented_error_unchanged(check, n_args):
    args = [L.not_implemented] * n_args if n_args else [L.Stub]
    with pytest.raises(NotImplementedError) as info:
        check(*args)
    assert type(info.value) is NotImplementedError


def _lab(monkeypatch):
    """As in a learner's lab: neither pytest's PYTEST_VERSION nor COURSE_STRICT_CHECKS in the environment."""
    monkeypatch.delenv("PYTEST_VERSION", raising=False)
    monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)


@pytest.mark.parametrize("check, n_args", [
    (check_hvp, 1), (check_momentum_rate, 1), (check_step_size_theory, 2),
    (lambda cls: check_optimizer(cls, "adam"), 0), (grading.check_svt, 1), (grading.check_lion, 0),
], ids=["hvp", "momentum_rate", "step_size_theory", "optimizer", "svt", "lion"])
def test_in_a_lab_an_unsolved_exercise_is_reported_and_the_notebook_goes_on(check, n_args, monkeypatch, capsys):
    _lab(monkeypatch)
    args = [L.not_implemented] * n_args if n_args else [L.Stub]
    assert check(*args) is None
    out = capsys.readouterr().out
    assert out.startswith("Not solved yet: ") and "NotImplementedError" in out and "passed" not in out, out
    assert out.count("\n") == 1  # one plain line, in place


@pytest.mark.parametrize("flag", ["1", "yes"])
def test_course_strict_checks_makes_an_unsolved_exercise_raise_outside_pytest_too(flag, monkeypatch):
    _lab(monkeypatch)
    monkeypatch.setenv("COURSE_STRICT_CHECKS", flag)
    with pytest.raises(NotImplementedError):
        check_hvp(L.not_implemented)


def test_in_a_lab_wrong_code_and_library_errors_still_raise(monkeypatch):
    _lab(monkeypatch)
    with pytest.raises(AssertionError):  # attempted but wrong: the check's message, as always
        check_momentum_rate(lambda lr, beta, lam: 0.5)

    def calls_a_library_stub(f, x, v):  # a NotImplementedError raised inside torch is a real error
        return torch.autograd.Function.apply(x)

    with pytest.raises(NotImplementedError):
        check_hvp(calls_a_library_stub)


# ---------------------------------------------------------------------------------------------
# restoring check cells (no notebook runs)


def _fixture(kind="solutions"):
    return nbformat.read(FIXTURES / kind / FIXTURE, as_version=4)


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def _forge(nb, cell_id):
    """Overwrite a check cell with a print of its success line, and store that line as its output."""
    cell = _cell(nb, cell_id)
    line = "".join(o.get("text", "") for o in cell.outputs) or "all checks passed\n"
    cell.source = f"print({line.strip()!r})"
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=line)]
    return nb


def _delete(nb, cell_id):
    nb.cells = [c for c in nb.cells if c.get("id") != cell_id]
    return nb


def test_restore_puts_back_edited_and_deleted_check_cells_at_their_place():
    reference = _fixture()
    submission = _forge(_delete(_fixture("lessons"), "ex2-check"), "ex1-check")
    restored, notes = restore_check_cells(submission, reference)
    assert [c.id for c in restored.cells] == [c.id for c in reference.cells]
    for cell in check_cells(reference):
        assert _cell(restored, cell.id) == cell
    assert any("'ex1-check'" in n and "modified" in n for n in notes)
    assert any("'ex2-check'" in n and "missing" in n for n in notes)
    assert "NotImplementedError" in _cell(restored, "ex2").source  # the learner's cells are theirs


def test_restore_handles_changed_ids_forged_check_cells_and_duplicates():
    reference = _fixture()
    submission = _fixture("lessons")
    _forge(submission, "ex3-check")
    _cell(submission, "ex3-check")["id"] = "my-own-id"  # a check cell under a new id: dropped, original back
    duplicate = copy.deepcopy(_cell(submission, "ex1-check"))
    submission.cells.insert(0, duplicate)  # the same check cell twice: only the one at its place stays
    extra = nbformat.v4.new_code_cell("x = 1", id="mine")
    submission.cells.append(extra)
    restored, notes = restore_check_cells(submission, reference)
    ids = [c.id for c in restored.cells]
    assert "my-own-id" not in ids and ids.count("ex1-check") == 1 and ids[-1] == "mine"
    assert ids.index("ex3-check") == ids.index("ex3") + 1
    assert any("removed cell" in n and "my-own-id" in n for n in notes)


def test_restore_clears_the_learners_outputs_so_only_check_cells_are_compared():
    submission = _fixture()  # a learner who ran everything: outputs everywhere
    _cell(submission, "explore1").metadata["tags"] = ["nbval-check-output"]
    restored, _ = restore_check_cells(submission, _fixture())
    for cell in restored.cells:
        if cell.cell_type == "code" and "check" not in cell.metadata.get("tags", []):
            assert cell.outputs == [] and cell.execution_count is None
            assert "nbval-check-output" not in cell.metadata.get("tags", [])


def test_restore_works_on_a_notebook_without_cell_ids():
    submission = _fixture("lessons")
    submission.nbformat_minor = 4
    for cell in submission.cells:
        del cell["id"]
    restored, _ = restore_check_cells(submission, _fixture())
    nbformat.validate(restored)
    sources = ["".join(c.source) for c in restored.cells]
    for cell in check_cells(_fixture()):
        assert sources.count(cell.source) == 1
    # each check cell comes back right after its exercise (found by its unchanged markdown)
    assert [c.id for c in restored.cells].index("ex2-check") > sources.index(_cell(_fixture(), "ex2-text").source)


# ---------------------------------------------------------------------------------------------
# the grader, end to end (runs notebooks)


def _grade(nb_or_path, tmp_path, solutions_dir, name):
    if isinstance(nb_or_path, Path):
        path = nb_or_path
    else:
        path = tmp_path / name
        nbformat.write(nb_or_path, path)
    return grade_notebook(path, solutions_dir=solutions_dir, cell_timeout=CELL_TIMEOUT)


@pytest.mark.slow
def test_fixture_solution_passes_through_the_command_line(tmp_path):
    output = tmp_path / "results" / "grade.json"
    # the lessons carry the same check cells as the solutions: a course that does not publish its
    # solutions can grade against its lessons
    result = subprocess.run([sys.executable, "-m", "course_lib.grading", str(FIXTURES / "solutions" / FIXTURE),
                             "--solutions", str(FIXTURES / "lessons"), "--json", "--output", str(output)],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert json.loads(output.read_text()) == document
    assert document["passed"] is True and (document["points"], document["max_points"]) == (6, 6)
    assert len(document["notebooks"]) == 1  # one shape, however many notebooks
    document = document["notebooks"][0]
    assert [(e["exercise"], e["points"]) for e in document["exercises"]] == [
        ("90.1 Gradient descent iterates", 2), ("90.2 GD optimizer", 3), ("90.3 Step size and conditioning", 1)]
    assert document["restored"] == [] and document["other_failures"] == [] and document["error"] is None
    assert document["tampering"] == [] and document["problems"] == []


@pytest.mark.slow
def test_fixture_lesson_with_forged_and_deleted_check_cells_still_fails(tmp_path):
    lesson = _fixture("lessons")
    _forge(lesson, "ex1-check")
    _delete(lesson, "ex2-check")
    _forge(lesson, "ex3-check")
    _cell(lesson, "ex3-check")["id"] = "renamed"
    report = _grade(lesson, tmp_path, FIXTURES / "solutions", FIXTURE)
    assert not report.passed and report.points == 0 and report.max_points == 6
    assert [r.passed for r in report] == [False, False, False]
    for result in report:  # unsolved, so every check stops at the stub, and nothing else goes wrong
        assert result.message == "NotImplementedError", result
    assert report.other_failures == []
    assert len(report.restored) == 4  # two modified, one missing, one foreign 'check' cell removed


@pytest.mark.slow
def test_fixture_with_planted_bugs_loses_exactly_those_exercises(tmp_path):
    submission = _fixture()
    exercise = _cell(submission, "ex2")
    exercise.source = exercise.source.replace('-p.grad if group["maximize"] else p.grad', "p.grad")
    _delete(submission, "ex1-check")  # deleting a check cell of a correct exercise changes nothing
    _forge(submission, "ex2-check")  # ... and forging the one of the buggy exercise does not help
    submission.cells.append(nbformat.v4.new_code_cell("1 / 0", id="oops"))
    # a wrong exercise whose code prints the success line itself: the verdict is the check's, not the output's
    _cell(submission, "ex3").source = _cell(submission, "ex3").source.replace(
        "return 2 / (mu + L)", "print('Step-size theory: all 6 checks passed')\n    return 2 / L")
    report = _grade(submission, tmp_path, FIXTURES / "solutions", FIXTURE)
    assert [(r.exercise, r.passed, r.points) for r in report] == [
        ("90.1 Gradient descent iterates", True, 2), ("90.2 GD optimizer", False, 0),
        ("90.3 Step size and conditioning", False, 0)]
    assert (report.points, report.max_points, report.passed) == (2, 6, False)
    assert report[2].message.startswith("AssertionError: Step-size theory, case 5 of 6 (best_learning_rate)")
    message = report[1].message
    assert message.startswith("AssertionError: GD optimizer, case 4 of 7 (maximize=True")
    assert "step 1: parameter 0 of group 0" in message and "expected" in message
    assert [f["cell_id"] for f in report.other_failures] == ["oops"]
    assert "ZeroDivisionError" in report.other_failures[0]["message"]
    table = report.table()
    assert re.search(r"90\.2 GD optimizer\s+FAIL\s+0 / 3", table) and re.search(r"total\s+FAIL\s+2 / 6", table)


def test_grader_reports_a_notebook_it_does_not_know(tmp_path, capsys):
    stray = tmp_path / "99_mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), stray)
    report = grade_notebook(stray, solutions_dir=FIXTURES / "solutions")
    assert report.error and "no reference notebook" in report.error and not report.passed
    from course_lib.grading.__main__ import main

    assert main([str(stray), "--solutions", str(FIXTURES / "solutions")]) == 2
    assert "no reference notebook" in capsys.readouterr().out
    # a folder stands for every notebook of the course: a stray one is skipped, a missing one fails by name
    assert main([str(tmp_path), "--solutions", str(FIXTURES / "solutions")]) == 1
    output = capsys.readouterr().out
    assert f"missing: {FIXTURE} (its exercises earn 0)" in output and "skipped" in output and "99_mine" in output


def test_grader_fails_every_exercise_of_an_unreadable_notebook(tmp_path):
    broken = tmp_path / FIXTURE
    broken.write_text("{ not json")
    report = grade_notebook(broken, solutions_dir=FIXTURES / "solutions")
    assert len(report) == 3 and not any(r.passed for r in report) and report.points == 0
    assert "could not be read" in report[0].message


def test_grading_metadata_names_the_exercises():
    names = [exercise_of(cell) for cell in check_cells(_fixture())]
    assert names == [("90.1 Gradient descent iterates", 2), ("90.2 GD optimizer", 3),
                     ("90.3 Step size and conditioning", 1)]


def test_check_cells_stay_light():
    """Importing the checks must not import the grader (nbformat, subprocess) into every lesson's kernel."""
    code = "import sys, course_lib.grading; print('course_lib.grading.grader' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False"
    assert grading.grade_notebook is grade_notebook


# ---------------------------------------------------------------------------------------------
# the course's notebooks


def _forged_lesson(solution: Path):
    """The unsolved lesson with half of its check cells overwritten by their success lines, the others deleted."""
    lesson_path = ROOT / "lessons" / solution.name
    if not lesson_path.is_file():
        return None
    lesson = nbformat.read(lesson_path, as_version=4)
    for number, cell in enumerate(check_cells(lesson)):
        (_forge if number % 2 == 0 else _delete)(lesson, cell.id)
    return lesson


# Forged lessons graded end to end: three notebooks with different kinds of exercise (optimizer classes,
# functions, network-level second-order code). That an unsolved exercise breaks only its own check cell
# is shown for every lesson by test_browser.py (Run All in JupyterLab) or test_lessons_run_all.py; that
# the grader fails it with NotImplementedError follows from the strict checks tested above.
FORGED = ("02_momentum.ipynb", "08_second_order.ipynb", "11_frontier.ipynb")
# `make test` grades one solution and one forged lesson end to end (tiers.EVERY_RUN); the others are
# `whole_course` (CI and `make test-all`): each solution's check outputs are already compared by strict nbval in
# both numeric passes


@pytest.fixture(scope="module")
def course_reports(request, tmp_path_factory):
    """The solutions and forged lessons that this run's selected tests ask for, graded side by side (one kernel
    each): ``{("solution" | "forged lesson", name): report}``."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = set()
    for item in request.session.items:
        if getattr(item, "callspec", None) is None or "course_reports" not in getattr(item, "fixturenames", ()):
            continue
        kind = "forged lesson" if "forged" in item.originalname else "solution"
        wanted.add((kind, item.callspec.params["solution"].name))
    jobs = {}
    for solution in SOLUTIONS:
        if ("solution", solution.name) in wanted:
            jobs[("solution", solution.name)] = solution
        forged = _forged_lesson(solution) if ("forged lesson", solution.name) in wanted else None
        if forged is not None:
            path = tmp_path_factory.mktemp("forged") / solution.name
            nbformat.write(forged, path)
            jobs[("forged lesson", solution.name)] = path
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(grade_notebook, path, solutions_dir=ROOT / "solutions",
                                    cell_timeout=CELL_TIMEOUT) for key, path in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("solution", course_params(SOLUTIONS))
def test_solution_graded_as_a_submission_passes(solution, course_reports):
    report = course_reports[("solution", solution.name)]
    assert report.passed, report.table()
    assert report.points == report.max_points > 0
    assert report.restored == [] and report.other_failures == []
    assert report.tampering == [] and report.problems == []  # the course's own code is not taken for tampering


@pytest.mark.slow
@pytest.mark.parametrize("solution", course_params([ROOT / "solutions" / name for name in FORGED]))
def test_unsolved_lesson_fails_only_with_not_implemented_error_even_with_forged_check_cells(solution,
                                                                                           course_reports):
    assert ("forged lesson", solution.name) in course_reports, \
        f"lessons/{solution.name} is missing: run `python -m course_lib.authoring`"
    report = course_reports[("forged lesson", solution.name)]
    assert len(report) == len(check_cells(nbformat.read(solution, as_version=4))) > 0
    assert len(report.restored) == len(report)  # every check cell was forged or deleted, and put back
    for result in report:
        assert not result.passed and result.points == 0
        assert result.message == "NotImplementedError", f"{result.exercise}: {result.message}"
    assert report.other_failures == [], "an unsolved exercise must break only its own check cell"


# ---------------------------------------------------------------------------------------------
# the sanitize file nbval uses (tests/nbval_sanitize.cfg)


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8"))
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_file_pairs_all_parse():
    from nbval.plugin import get_sanitize_patterns

    text = (ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    patterns = get_sanitize_patterns(text)
    assert len(patterns) == sum(line.startswith("regex: ") for line in text.splitlines()) >= 10
    for regex, _ in patterns:
        re.compile(regex)


@pytest.mark.parametrize("first, second", [
    ("<function f at 0x7f3a2c1d0e50>", "<function f at 0x55d1e0a3b7c0>"),
    ("saved to /tmp/tmpab12cd/plot.png", "saved to /tmp/pytest-of-ci/pytest-3/x/plot.png"),
    ("saved to /var/folders/zz/abc/T/tmpq/plot.png", "saved to /tmp/tmpq/plot.png"),
    ("in /home/ana/course/lessons", "in /Users/bob/course/lessons"),
    ("tensor([1.], device='cuda:0')", "tensor([1.], device='cpu')"),
    ("device(type='cuda', index=0)", "device(type='cpu')"),
    ("moved to cuda:1", "moved to mps:0"),
    ("GPU: NVIDIA H100 80GB HBM3", "GPU: Tesla T4"),
    ("one step took 12.5 ms", "one step took 850 µs"),
    ("done in 1.2s", "done in 3 seconds"),
    ("Wall time: 1.53 s", "Wall time: 250 ms"),
    ("100%|##########| 200/200 [00:01<00:00, 153.27it/s]", "100%|##########| 200/200 [00:03<00:00, 61.02it/s]"),
])
def test_sanitize_makes_run_dependent_text_equal(first, second):
    assert _sanitize(first) == _sanitize(second), (_sanitize(first), _sanitize(second))


@pytest.mark.parametrize("text", [
    "Adam: all 7 checks passed", "loss after 100 steps: 0.1234", "x* = [1.0, 0.25]", "3 minima, 2 saddles",
    "rate at the best step: 0.9802", "lr = 0.01, 200 samples, cpu", "kappa = 1e+04",
])
def test_sanitize_leaves_course_output_alone(text):
    assert _sanitize(text) == text


# ---------------------------------------------------------------------------------------------
# the grader against attacks, crashes and lost work (each test grades one small notebook)


def _insert_after(nb, cell_id, new_id, source):
    index = next(i for i, c in enumerate(nb.cells) if c.get("id") == cell_id)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, id=new_id))
    return nb


_FAKE_GRADING = '''
import sys, types
import course_lib.grading as g
fake = types.ModuleType("course_lib.grading")
fake.check_gradient_descent = lambda f: print("Gradient descent: all 5 checks passed")
g.check_gradient_descent = fake.check_gradient_descent
sys.modules["course_lib.grading"] = fake
'''

_WRONG_GD_AND_SGD = '''
class GD(torch.optim.Optimizer):
    def __init__(self, params, lr, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=group["lr"])  # wrong sign
        return loss


class FakeSGD(GD):  # the reference, made as wrong as the learner's class
    def __init__(self, params, lr, maximize=False, foreach=None, **kwargs):
        super().__init__(params, lr, maximize)


torch.optim.SGD = FakeSGD
'''

_CUSTOM_EXC = '''
def _handler(shell, etype, evalue, tb, tb_offset=None):
    print("Step-size theory: all 6 checks passed")

get_ipython().set_custom_exc((BaseException,), _handler)
'''


@pytest.mark.slow
def test_attacks_from_earlier_cells_are_undone_and_named(tmp_path):
    """Replaced check functions and sys.modules, a wrong torch.optim.SGD as the reference, set_custom_exc, and a
    cell that rewrites the course's reference: every exercise still fails, each attack is named."""
    solutions = tmp_path / "course"
    solutions.mkdir()
    reference = solutions / FIXTURE
    reference.write_bytes((FIXTURES / "solutions" / FIXTURE).read_bytes())
    lesson = _fixture("lessons")
    _insert_after(lesson, "imports", "attack-grading", _FAKE_GRADING)
    _cell(lesson, "ex2").source = _WRONG_GD_AND_SGD
    _insert_after(lesson, "ex2-check", "attack-exc", _CUSTOM_EXC)
    _insert_after(lesson, "explore2", "attack-course", f"open({str(reference)!r}, 'a').write(' ')")
    report = _grade(lesson, tmp_path, solutions, FIXTURE)
    assert [r.passed for r in report] == [False, False, False] and report.points == 0, report.table()
    assert report[0].message == "NotImplementedError"
    assert report[1].message.startswith("AssertionError: GD optimizer, case 1 of 7"), report[1].message
    assert report[2].message == "NotImplementedError"
    assert "sys.modules['course_lib.grading'] was replaced" in report[0].tampering
    assert "torch.optim.SGD was replaced" in report[1].tampering
    assert "IPython's custom exception handler was set (set_custom_exc)" in report[2].tampering
    assert "torch.optim.SGD was replaced" in report.tampering and "tampering" in report.to_dict()
    assert report.error and "changed the course copy" in report.error
    assert any(FIXTURE in p for p in report.problems)
    assert "torch.optim.SGD was replaced" in report.table(verbose=True)


@pytest.mark.slow
def test_a_dead_kernel_is_reported_as_such_and_later_checks_as_not_run(tmp_path):
    submission = _insert_after(_fixture(), "ex2", "crash", "import os\nos._exit(0)")
    # a limit far above what the notebook needs: a kernel death reported as a time-out would show it
    report = grade_notebook(_write(submission, tmp_path), solutions_dir=FIXTURES / "solutions", cell_timeout=120)
    crash = next(i for i, c in enumerate(submission.cells) if c.id == "crash") + 1
    assert [r.passed for r in report] == [True, False, False], report.table()
    assert f"the kernel died in cell `crash` (cell {crash} of {len(submission.cells)})" in " ".join(report.problems)
    for result in report[1:]:
        assert result.status == "not run"
        assert result.message.startswith("not run: the kernel died earlier, in cell `crash`"), result.message
    assert not any("limit" in p for p in report.problems)


@pytest.mark.slow
def test_a_time_limit_names_the_cell_and_the_limit(tmp_path):
    submission = _insert_after(_fixture(), "ex1-check", "stuck", "import time\nwhile True:\n    time.sleep(0.05)")
    report = grade_notebook(_write(submission, tmp_path), solutions_dir=FIXTURES / "solutions", cell_timeout=20)
    stuck = next(i for i, c in enumerate(submission.cells) if c.id == "stuck") + 1
    assert f"cell `stuck` (cell {stuck} of {len(submission.cells)}) ran past the 20 s limit" in report.problems
    assert [f["message"] for f in report.other_failures if f["cell_id"] == "stuck"] == ["ran past the 20 s limit"]
    assert report[0].passed  # the check before the stuck cell is not affected


def _write(nb, tmp_path, name=FIXTURE):
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_honest_work_without_cell_ids_and_with_debug_prints_passes(tmp_path):
    """Saved as nbformat 4.4 (no ids), exercises written differently from the reference, a debug print."""
    submission = _fixture("lessons")
    solved = _fixture()
    for cell_id in ("ex1", "ex2", "ex3"):
        _cell(submission, cell_id).source = "# my solution\n" + _cell(solved, cell_id).source
    _cell(submission, "ex1").source = _cell(submission, "ex1").source.replace(
        "        iterates.append(x)", "        iterates.append(x)\n        print('debug: step done')", 1)
    submission.nbformat_minor = 4
    for cell in submission.cells:
        del cell["id"]
    path = tmp_path / FIXTURE
    path.write_text(nbformat.writes(submission, version=4), encoding="utf-8")
    report = grade_notebook(path, solutions_dir=FIXTURES / "solutions")
    assert report.passed and report.points == 6, report.table()
    assert report[0].output.startswith("debug: step done\ndebug: step done\n")  # 5 cases, 243 steps in all
    assert report[0].output.endswith("... (223 more lines)")
    assert "your code printed (shown, not graded): debug: step done" in " ".join(report.table().split())


def test_restore_matches_check_cells_by_source_and_puts_them_after_their_exercise():
    reference = _fixture()
    submission = _fixture("lessons")
    for cell in submission.cells:  # cells pasted into a new notebook: new ids, no tags on the check cells
        cell["id"] = "pasted-" + cell["id"]
        cell.metadata.pop("tags", None)
    ids = [c.id for c in submission.cells]  # and the check of 90.2 pasted above its exercise
    check = submission.cells.pop(ids.index("pasted-ex2-check"))
    submission.cells.insert(ids.index("pasted-ex2-text"), check)
    restored, notes = restore_check_cells(submission, reference)
    order = [c.id for c in restored.cells]
    assert order.count("ex2-check") == 1 and order.index("ex2-check") == order.index("pasted-ex2") + 1, order
    assert order.index("ex1-check") == order.index("pasted-ex1") + 1
    assert any("found by its source" in n for n in notes) and any("moved after cell 'pasted-ex2'" in n for n in notes)


def test_a_folder_accounts_for_every_course_notebook(tmp_path, capsys):
    from course_lib.grading.__main__ import main

    solutions = tmp_path / "course"
    solutions.mkdir()
    for name in (FIXTURE, "91_fixture.ipynb"):
        (solutions / name).write_bytes((FIXTURES / "solutions" / FIXTURE).read_bytes())
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / FIXTURE).write_text("{ not json")  # graded (and failed) without starting a kernel
    assert main([str(folder), "--solutions", str(solutions), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [Path(n["notebook"]).name for n in document["notebooks"]] == [FIXTURE, "91_fixture.ipynb"]
    missing = document["notebooks"][1]
    assert missing["missing"] is True and missing["points"] == 0 and missing["max_points"] == 6
    assert all(e["status"] == "not submitted" for e in missing["exercises"])
    assert document["missing"] == ["91_fixture.ipynb"] and document["passed"] is False
    assert (document["points"], document["max_points"]) == (0, 12)


def test_table_wraps_messages_and_names_cells():
    from course_lib.grading.grader import ExerciseResult, GradeReport

    message = ("AssertionError: Adam, case 3 of 7 (two parameter groups: Adam([{'params': shapes [(3,), ()]}, "
               "{'params': shapes [(2, 2)], lr=0.05, betas=(0.5, 0.9)}], lr=0.01), 6 step(s)), step 2: parameter 0 "
               "of group 1 (shape (2, 2)) differs at index (0, 1): expected 0.123456789012, got 0.123456789999\n"
               "  Hint: " + "a long hint " * 30)
    report = GradeReport("04_adam_family.ipynb", None, [ExerciseResult(
        "04.1 Adam", "04-check-adam", False, 0, 3, message, status="failed",
        cell="`04-check-adam` (cell 19 of 59)")])
    table = report.table(width=100)
    assert all(len(line) <= 100 for line in table.splitlines()), table
    assert "check cell `04-check-adam` (cell 19 of 59)" in table
    lines = [line.strip() for line in table.splitlines()]
    assert "expected 0.123456789012, got 0.123456789999" in lines  # expected against got on a line of its own
    assert "--verbose" in table and "--verbose" not in report.table(width=100, verbose=True)
    def flat(text):
        return " ".join(text.split())
    assert flat(table).count("a long hint") < flat(report.table(width=100, verbose=True)).count("a long hint") == 30


def test_a_swats_that_borrows_the_course_implementation_fails_saying_so():
    from course_lib.optim import SWATS as CourseSWATS

    class Inherits(CourseSWATS):
        pass

    class Delegates(torch.optim.Optimizer):  # builds the course's SWATS inside and copies its steps
        def __init__(self, params, **kwargs):
            params = list(params)
            super().__init__(params, dict(lr=kwargs.get("lr", 1e-3)))
            self.inner = CourseSWATS(params, **kwargs)

        @property
        def switched_at(self):
            return self.inner.switched_at

        def step(self, closure=None):
            return self.inner.step(closure)

    for cls in (Inherits, Delegates):
        message = _assert_fails(grading.check_swats, cls, pattern=r"an existing implementation")
        assert "course_lib.optim" in message, message
