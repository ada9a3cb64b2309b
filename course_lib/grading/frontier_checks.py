r"""Checks of notebook 11 (the frontier): Lion, Newton-Schulz orthogonalization, schedule-free averaging.

``check_lion(Lion)``: a learner's Lion class (``Lion(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)``)
against :class:`PaperLion` below, the paper's Algorithm 2 written out line by line, with the machinery and
the six standard cases of :func:`~course_lib.grading.check_optimizer` (defaults, odd shapes incl. a 0-dim
tensor, two parameter groups, weight decay, a parameter without gradient, 100 steps), parameters and
``state["exp_avg"]`` compared after every step.

In all three checks the learner's code runs inside :func:`~course_lib.grading._common.own_code_only`: a Lion
that builds or steps an optimizer of ``torch.optim`` or ``course_lib.optim`` inside (rather than inheriting
from one, which is refused before any case runs), a ``newton_schulz`` that calls ``course_lib.optim.muon``'s
or ``torch.optim``'s iteration, or a ``schedule_free_sgd`` that steps ``course_lib.optim.ScheduleFreeSGD`` or
the ``schedulefree`` package fails with "an existing implementation", as :func:`check_optimizer` does.

``check_newton_schulz(newton_schulz)``: ``newton_schulz(G, coefficients=(a, b, c), steps=5, eps=1e-7)``
(float64 in and out) must return :math:`U\,p^{\circ k}(\Sigma/\|G\|_F)\,V^\top` where :math:`G = U \Sigma V^\top`
(thin SVD) and :math:`p(s) = a s + b s^3 + c s^5`: the iteration acts on the singular values only. The
reference is that closed form, computed with an SVD (not with the iteration).

``check_schedule_free_sgd(schedule_free_sgd)``: ``schedule_free_sgd(grad_fn, x0, lr, momentum, steps)`` returns
the ``(steps + 1, d)`` averaged iterates :math:`x_0, \dots, x_T` (``x0`` first) of schedule-free SGD with equal
weights; the reference is the authors' package ``schedulefree`` (``SGDScheduleFree`` read in ``eval()`` mode after
every step).
"""

from __future__ import annotations

import torch

import inspect

from ._common import (compare_iterates, compare_tensor, fail, fmt, generator, learner_error, own_code_only,
                      quiet_and_isolated, succeed)
from .optimizers import OptimizerSpec, _borrowed_from, _decay, _describe, _run_case, _standard

__all__ = ["PaperLion", "check_lion", "check_newton_schulz", "check_schedule_free_sgd", "LION_SPEC",
           "MUON_COEFFICIENTS"]

F64 = torch.float64
MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
CUBIC_COEFFICIENTS = (1.5, -0.5, 0.0)


class PaperLion(torch.optim.Optimizer):
    """Lion exactly as Chen et al. (2023) write it in Algorithm 2; the reference of ``check_optimizer(.., "lion")``.

    Kept apart from course_lib.optim.Lion on purpose (an independent reference): plain expressions,
    no in-place tricks. Decoupled weight decay, ``maximize`` negates the gradient; state ``exp_avg``.
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                m = state.get("exp_avg", torch.zeros_like(p))
                c = beta1 * m + (1 - beta1) * g
                p.copy_(p - lr * (torch.sign(c) + wd * p))
                state["exp_avg"] = beta2 * m + (1 - beta2) * g
        return loss


LION_SPEC = OptimizerSpec(
    "Lion", "Lion as in Chen et al. (2023), Algorithm 2", lambda params, **kwargs: PaperLion(params, **kwargs),
    _standard(0.01, odd=dict(lr=0.02, betas=(0.8, 0.95)), groups=dict(lr=0.05, betas=(0.5, 0.9)),
              decay=_decay(dict(lr=0.01, weight_decay=0.5)),
              many=dict(lr=0.003, betas=(0.95, 0.98), weight_decay=0.1)),
    torch_state=True, needs=("lr", "betas", "weight_decay"))


def check_lion(cls) -> None:
    """The learner's Lion class against the paper's equations: parameters and ``state["exp_avg"]``, every step.

    The class must not be or inherit from an existing optimizer, and creating or stepping it must not run one
    (``own_code_only``, the same guard as :func:`check_optimizer`).
    """
    __tracebackhide__ = True  # noqa: F841
    spec = LION_SPEC
    if not inspect.isclass(cls) or not issubclass(cls, torch.optim.Optimizer):
        fail(f"Lion: check_lion needs your class, a subclass of torch.optim.Optimizer; got {cls!r}")
    borrowed = _borrowed_from(cls)
    if borrowed is not None:
        fail(f"Lion: {cls.__name__} is or inherits from {borrowed}, an existing implementation; "
             f"write the update rule yourself in a subclass of torch.optim.Optimizer")
    with quiet_and_isolated(default_dtype=F64):
        for number, case in enumerate(spec.cases, start=1):
            prefix = (f"{spec.title}, case {number} of {len(spec.cases)} ({case.title}: "
                      f"{_describe(case, cls.__name__)})")
            _run_case(cls, spec, case, prefix, compare_state=True, own_only=True)
    succeed(spec.title, len(spec.cases))


# ----------------------------------------------------------------------------- Newton-Schulz

def svd_orthogonalization(matrix: torch.Tensor, coefficients, steps: int, eps: float = 1e-7) -> torch.Tensor:
    """The closed form of ``steps`` odd-polynomial iterations: ``U p^k(S / ||G||_F) V^T``."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    a, b, c = coefficients
    s = s / matrix.norm().clamp(min=eps)
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return (u * s) @ vh


def _matrix(rows, cols, seed, rank=None):
    gen = generator(seed)
    if rank is None:
        return torch.randn(rows, cols, generator=gen, dtype=F64)
    return torch.randn(rows, rank, generator=gen, dtype=F64) @ torch.randn(rank, cols, generator=gen, dtype=F64)


_NS_CASES = (
    # (name, matrix, coefficients, steps)
    ("a 4x4 matrix, Muon's quintic coefficients, 5 steps", _matrix(4, 4, 1), MUON_COEFFICIENTS, 5),
    ("a wide 3x7 matrix, quintic, 5 steps", _matrix(3, 7, 2), MUON_COEFFICIENTS, 5),
    ("a tall 8x3 matrix, quintic, 5 steps", _matrix(8, 3, 3), MUON_COEFFICIENTS, 5),
    ("a 1x5 row (orthogonalizing a row = normalizing it), quintic, 5 steps", _matrix(1, 5, 4), MUON_COEFFICIENTS, 5),
    ("a 6x5 matrix of rank 2 (zero singular values stay zero), quintic, 4 steps", _matrix(6, 5, 5, rank=2),
     MUON_COEFFICIENTS, 4),
    ("a 5x4 matrix, the cubic Newton-Schulz coefficients (1.5, -0.5, 0), 12 steps", _matrix(5, 4, 6),
     CUBIC_COEFFICIENTS, 12),
    ("a 3x3 matrix scaled by 1e3 (the normalization matters), cubic, 3 steps", 1e3 * _matrix(3, 3, 7),
     CUBIC_COEFFICIENTS, 3),
    ("one step of (a, b, c) = (2, -1, 0.5) on a 2x3 matrix", _matrix(2, 3, 8), (2.0, -1.0, 0.5), 1),
    ("zero steps: just the normalization G / ||G||_F", _matrix(3, 2, 9), MUON_COEFFICIENTS, 0),
    ("the zero matrix: stays zero (divide by max(||G||_F, eps))", torch.zeros(2, 3, dtype=F64), MUON_COEFFICIENTS, 5),
)


def check_newton_schulz(newton_schulz) -> None:
    """Ten matrices (square, wide, tall, a row, low rank, zero) and three coefficient sets vs the SVD closed form."""
    __tracebackhide__ = True  # noqa: F841
    title = "Newton-Schulz orthogonalization"
    with quiet_and_isolated():
        for number, (name, matrix, coefficients, steps) in enumerate(_NS_CASES, start=1):
            prefix = f"{title}, case {number} of {len(_NS_CASES)} ({name})"
            call = f"newton_schulz(G of shape {tuple(matrix.shape)}, coefficients={fmt(coefficients)}, steps={steps})"
            given = matrix.clone()
            with own_code_only(f"{prefix}: {call}"):
                try:
                    got = newton_schulz(given, coefficients=coefficients, steps=steps)
                except Exception as err:  # noqa: BLE001
                    learner_error(f"{prefix}: {call}", err)
            if not torch.equal(given, matrix):
                fail(f"{prefix}: {call} changed G in place; work on a copy (x = G / ...)")
            expected = svd_orthogonalization(matrix, coefficients, steps)
            problem = compare_tensor(got, expected, "the result", atol=1e-9)
            if problem:
                hint = ("X <- X / max(||X||_F, eps) first; then each step A = X X^T, X <- a X + (b A + c A A) X "
                        "(for a tall G, work on G^T and transpose back, or use X^T X on the right)")
                fail(f"{prefix}: {call}: {problem}\n  Hint: {hint}")
    succeed(title, len(_NS_CASES))


# ----------------------------------------------------------------------------- schedule-free SGD

def _quadratic(scales):
    scales = torch.tensor(scales, dtype=F64)
    return lambda x: scales * x


def _rosenbrock_grad(x):
    a, b = x[0], x[1]
    return torch.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


def _wavy(x):
    return x + 2.0 * torch.cos(3.0 * x)


_SF_CASES = (
    # (name, grad_fn, x0, lr, momentum, steps)
    ("a 2-D quadratic, curvatures 1 and 10", _quadratic([1.0, 10.0]), [1.0, -1.5], 0.05, 0.9, 30),
    ("the same with momentum (interpolation) 0.5", _quadratic([1.0, 10.0]), [1.0, -1.5], 0.05, 0.5, 30),
    ("one coordinate, a wavy non-convex gradient x + 2 cos 3x", _wavy, [2.0], 0.1, 0.9, 40),
    ("Rosenbrock from (-1, 1)", _rosenbrock_grad, [-1.0, 1.0], 1e-3, 0.9, 60),
    ("five coordinates of the wavy gradient, momentum 0.98", _wavy, [0.5, -1.0, 1.5, 2.5, -2.0], 0.05, 0.98, 25),
)


def _package_run(grad_fn, x0, lr, momentum, steps):
    import schedulefree  # the authors' package: a test-time reference

    return schedule_free_path(lambda params, **kw: schedulefree.SGDScheduleFree(params, foreach=False, **kw),
                              grad_fn, x0, lr, momentum, steps)


def schedule_free_path(make, grad_fn, x0, lr, momentum, steps):
    """The iterates ``x_0..x_steps`` (the evaluation point, as the exercise returns them) of the schedule-free
    optimizer ``make(params, lr=, momentum=)`` fed ``grad_fn`` at its training point."""
    p = x0.clone().requires_grad_(True)
    opt = make([p], lr=lr, momentum=momentum)
    xs = [x0.clone()]
    for _ in range(steps):
        opt.train()
        p.grad = grad_fn(p.detach().clone())
        opt.step()
        opt.eval()
        xs.append(p.detach().clone())
    return torch.stack(xs)


def check_schedule_free_sgd(schedule_free_sgd) -> None:
    """Five runs compared iterate by iterate with ``schedulefree.SGDScheduleFree`` in eval mode."""
    __tracebackhide__ = True  # noqa: F841
    title = "Schedule-free SGD"
    with quiet_and_isolated():
        for number, (name, grad_fn, x0, lr, momentum, steps) in enumerate(_SF_CASES, start=1):
            prefix = f"{title}, case {number} of {len(_SF_CASES)} ({name})"
            call = f"schedule_free_sgd(grad_fn, x0={fmt(x0)}, lr={fmt(lr)}, momentum={fmt(momentum)}, steps={steps})"
            x0 = torch.tensor(x0, dtype=F64)
            expected = _package_run(grad_fn, x0, lr, momentum, steps)
            with own_code_only(f"{prefix}: {call}"):
                try:
                    got = schedule_free_sgd(grad_fn, x0.clone(), lr, momentum, steps)
                except Exception as err:  # noqa: BLE001
                    learner_error(f"{prefix}: {call}", err)
            compare_iterates(got, expected, prefix, call,
                             "steps + 1 rows: x0 first, then the average x after each step",
                             lambda k, problem: f"{prefix}: {call}: step {k}: {problem}\n  Hint: the gradient is "
                             f"taken at y = (1 - momentum) z + momentum x; z <- z - lr g; then x <- (1 - c) x + c z "
                             f"with c = 1/t at step t (so the first step sets x = z)")
    succeed(title, len(_SF_CASES))
