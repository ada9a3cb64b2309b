"""Notebook 11's checks: the correct code passes with one fixed line; each planted bug is caught."""

import pytest
import torch

from course_lib.grading import check_lion, check_newton_schulz, check_schedule_free_sgd
from course_lib.grading.frontier_checks import _package_run as package_run, schedule_free_path

pytest.importorskip("schedulefree")


# ----------------------------------------------------------------------------- Lion

def make_lion(bug=None, defaults=((0.9, 0.99), 0.0)):
    class Lion(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-4, betas=defaults[0], weight_decay=defaults[1]):
            super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
                if bug == "betas_swapped":
                    b1, b2 = b2, b1
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    state = self.state[p]
                    if "exp_avg" not in state:
                        state["exp_avg"] = torch.zeros_like(p)
                    m = state["exp_avg"]
                    if bug == "momentum_first":
                        m.mul_(b2).add_(g, alpha=1 - b2)
                        c = b1 * m + (1 - b1) * g
                    else:
                        c = b1 * m + (1 - b1) * g
                    if bug == "l2_inside_sign":
                        c = c + wd * p
                    update = c if bug == "no_sign" else torch.sign(c)
                    if bug == "decay_not_scaled_by_lr":
                        p.mul_(1 - wd)
                    elif bug != "l2_inside_sign":
                        p.mul_(1 - lr * wd)
                    p.add_(update, alpha=-lr)
                    if bug != "momentum_first":
                        m.mul_(b2).add_(g, alpha=1 - b2)
            return loss

    return Lion


def test_lion_check_passes_correct_code(capsys):
    check_lion(make_lion())
    assert capsys.readouterr().out == "Lion: all 6 checks passed\n"


@pytest.mark.parametrize("bug", ["momentum_first", "no_sign", "l2_inside_sign", "betas_swapped",
                                 "decay_not_scaled_by_lr"])
def test_lion_check_catches(bug):
    with pytest.raises(AssertionError, match="Lion, case"):
        check_lion(make_lion(bug))


def test_lion_check_catches_adam_defaults():
    with pytest.raises(AssertionError, match="default hyperparameters"):
        check_lion(make_lion(defaults=((0.9, 0.999), 0.0)))


def test_lion_check_refuses_the_library_class():
    from course_lib.optim import Lion
    with pytest.raises(AssertionError, match="existing implementation"):
        check_lion(Lion)


# ----------------------------------------------------------------------------- Newton-Schulz

def newton_schulz(G, coefficients=(3.4445, -4.7750, 2.0315), steps=5, eps=1e-7, *, bug=None):
    a, b, c = coefficients
    if bug == "in_place":
        X = G
        X /= X.norm().clamp(min=eps)
    elif bug == "no_normalization":
        X = G.clone()
    elif bug == "spectral_norm":
        X = G / torch.linalg.matrix_norm(G, ord=2).clamp(min=eps)
    elif bug == "no_eps":
        X = G / G.norm()
    else:
        X = G / G.norm().clamp(min=eps)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    for _ in range(steps):
        A = X.T @ X if bug == "gram_wrong_side" else X @ X.T
        if bug == "swapped_bc":
            B = c * A + b * A @ A
        else:
            B = b * A + c * A @ A
        X = a * X + B @ X
    return X.T if tall else X


def test_newton_schulz_check_passes_correct_code(capsys):
    check_newton_schulz(newton_schulz)
    assert capsys.readouterr().out == "Newton-Schulz orthogonalization: all 10 checks passed\n"


def test_newton_schulz_check_passes_the_gram_matrix_on_the_right_for_tall_inputs(capsys):
    def right_gram(G, coefficients=(3.4445, -4.7750, 2.0315), steps=5, eps=1e-7):
        a, b, c = coefficients
        X = G / G.norm().clamp(min=eps)
        for _ in range(steps):
            A = X.T @ X
            X = a * X + X @ (b * A + c * A @ A)
        return X
    check_newton_schulz(right_gram)
    assert capsys.readouterr().out.startswith("Newton-Schulz orthogonalization: all")


@pytest.mark.parametrize("bug", ["in_place", "no_normalization", "spectral_norm", "no_eps", "gram_wrong_side",
                                 "swapped_bc"])
def test_newton_schulz_check_catches(bug):
    with pytest.raises(AssertionError, match="Newton-Schulz orthogonalization, case"):
        check_newton_schulz(lambda G, coefficients, steps: newton_schulz(G, coefficients, steps, bug=bug))


# ----------------------------------------------------------------------------- schedule-free

def schedule_free_sgd(grad_fn, x0, lr, momentum, steps, *, bug=None):
    x, z = x0.clone(), x0.clone()
    xs = [] if bug == "no_x0" else [x.clone()]
    for t in range(1, steps + 1):
        y = (1 - momentum) * z + momentum * x
        point = {"grad_at_x": x, "grad_at_z": z}.get(bug, y)
        z = z - lr * grad_fn(point)
        c = 1 / (t + 1) if bug == "paper_indexing" else 1 / t
        x = (1 - c) * x + c * z
        xs.append((z if bug == "returns_z" else x).clone())
    return torch.stack(xs)


def test_schedule_free_check_passes_correct_code(capsys):
    check_schedule_free_sgd(schedule_free_sgd)
    assert capsys.readouterr().out == "Schedule-free SGD: all 5 checks passed\n"


@pytest.mark.parametrize("bug", ["grad_at_x", "grad_at_z", "paper_indexing", "returns_z", "no_x0"])
def test_schedule_free_check_catches(bug):
    with pytest.raises(AssertionError, match="Schedule-free SGD, case"):
        check_schedule_free_sgd(lambda *args: schedule_free_sgd(*args, bug=bug))


def test_unsolved_exercises_raise_not_implemented_error():
    def unsolved(*args, **kwargs):
        raise NotImplementedError()

    class Unsolved(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
            super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

        def step(self, closure=None):
            raise NotImplementedError()

    for check, arg in ((check_newton_schulz, unsolved), (check_schedule_free_sgd, unsolved),
                       (check_lion, Unsolved)):
        with pytest.raises(NotImplementedError):
            check(arg)


def test_the_library_lion_passes_the_learners_check(capsys):
    from course_lib.grading.frontier_checks import LION_SPEC, _run_case
    from course_lib.optim import Lion
    for number, case in enumerate(LION_SPEC.cases, start=1):
        torch.set_default_dtype(torch.float64)
        try:
            # own_only=False: the library's Lion is the reference implementation the guard would refuse
            _run_case(Lion, LION_SPEC, case, f"case {number}", compare_state=True, own_only=False)
        finally:
            torch.set_default_dtype(torch.float32)


def test_checks_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    check_lion(make_lion())
    check_newton_schulz(newton_schulz)
    check_schedule_free_sgd(schedule_free_sgd)
    assert torch.equal(torch.random.get_rng_state(), state)


# ----------------------------------------------------------------------------- no existing implementation inside

def delegating_lion(make_inner):
    """A Lion whose step runs another optimizer built over the same parameters (not a subclass of it)."""
    class Lion(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
            super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))
            self.inner = make_inner(self.param_groups, lr=lr, betas=betas, weight_decay=weight_decay)
            self.state = self.inner.state  # exp_avg is where the check looks for it

        def step(self, closure=None):
            return self.inner.step(closure)

    return Lion


def library_lion(groups, **kwargs):
    from course_lib.optim import Lion
    return Lion(groups, **kwargs)


def lazy_library_lion(groups, **kwargs):
    """Built on the first step, not in the constructor: the guard around step(closure) catches it."""
    from course_lib.optim import Lion

    class Lazy:
        def __init__(self):
            self.optimizer = None
            self.state = {}

        def step(self, closure=None):
            if self.optimizer is None:
                self.optimizer = Lion(groups, **kwargs)
                self.optimizer.state = self.state
            return self.optimizer.step(closure)

    return Lazy()


def library_newton_schulz(G, coefficients, steps):
    from course_lib.optim.muon import newton_schulz as library
    return library(G, coefficients, steps, dtype=None)  # float64 throughout: equal to the closed form


def library_schedule_free(grad_fn, x0, lr, momentum, steps):
    from course_lib.optim import ScheduleFreeSGD
    return schedule_free_path(ScheduleFreeSGD, grad_fn, x0, lr, momentum, steps)


def package_schedule_free(grad_fn, x0, lr, momentum, steps):
    return package_run(grad_fn, x0, lr, momentum, steps)  # the check's own reference, called by the learner


DELEGATING = [
    (check_lion, delegating_lion(library_lion), r"Lion, case 1 of 6 .*creating the optimizer ran "
                                                r"course_lib\.optim\.lion\.Lion\.__init__, an existing implementation"),
    (check_lion, delegating_lion(lazy_library_lion), r"Lion, case 1 of 6 .*, step 1: step\(closure\) ran "
                                                     r"course_lib\.optim\.lion\.Lion.*, an existing implementation"),
    (check_newton_schulz, library_newton_schulz, r"Newton-Schulz orthogonalization, case 1 of 10 .* ran "
                                                 r"course_lib\.optim\.muon\.newton_schulz, an existing implementation"),
    (check_schedule_free_sgd, library_schedule_free, r"Schedule-free SGD, case 1 of 5 .* ran course_lib\.optim\."
                                                     r"schedule_free\.ScheduleFreeSGD.*, an existing implementation"),
    (check_schedule_free_sgd, package_schedule_free, r"Schedule-free SGD, case 1 of 5 .* ran schedulefree\..*, "
                                                     r"an existing implementation"),
]
DELEGATING_IDS = ["Lion builds course_lib's Lion", "Lion steps course_lib's Lion", "course_lib's newton_schulz",
                  "course_lib's ScheduleFreeSGD", "the schedulefree package"]


@pytest.mark.parametrize("check, learner, pattern", DELEGATING, ids=DELEGATING_IDS)
def test_learner_code_that_runs_an_existing_implementation_fails(check, learner, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check(learner)


@pytest.mark.parametrize("check, learner, pattern", DELEGATING, ids=DELEGATING_IDS)
def test_the_delegating_code_is_otherwise_right(check, learner, pattern, monkeypatch, capsys):
    """Without the guard each delegating learner passes: what makes it fail above is the guard, not its numbers."""
    import contextlib

    from course_lib.grading import frontier_checks, optimizers

    def no_guard(what, active=True):
        return contextlib.nullcontext()

    monkeypatch.setattr(frontier_checks, "own_code_only", no_guard)
    monkeypatch.setattr(optimizers, "own_code_only", no_guard)
    check(learner)
    assert capsys.readouterr().out.endswith("checks passed\n")


def _solution_namespace():
    """The exercise cells of solutions/11_frontier.ipynb, run in one namespace (what a learner who solved them has)."""
    from pathlib import Path

    import nbformat

    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "solutions" / "11_frontier.ipynb", as_version=4)
    namespace = {"torch": torch}
    for cell in notebook.cells:
        if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", []):
            exec(compile(cell.source, f"<cell {cell.id}>", "exec"), namespace)  # noqa: S102 (the course's own code)
    return namespace


def test_the_solution_notebooks_code_passes_under_the_guard(capsys):
    namespace = _solution_namespace()
    check_lion(namespace["Lion"])
    check_newton_schulz(namespace["newton_schulz"])
    check_schedule_free_sgd(namespace["schedule_free_sgd"])
    assert capsys.readouterr().out == ("Lion: all 6 checks passed\n"
                                       "Newton-Schulz orthogonalization: all 10 checks passed\n"
                                       "Schedule-free SGD: all 5 checks passed\n")
