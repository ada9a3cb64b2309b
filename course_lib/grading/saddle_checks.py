"""Checks of notebook 06 (saddle points): classifying critical points, perturbed gradient descent.

``check_classify_critical_point(classify_critical_point)``: ``classify_critical_point(hessian, tol)`` returns
``"minimum"``, ``"maximum"``, ``"strict saddle"`` or ``"degenerate"`` (rule: :func:`course_lib.saddles.classify_critical_point`).

``check_perturbed_gd(perturbed_gd)``: ``perturbed_gd(grad_fn, x0, lr, radius, threshold, steps, generator)``
returns the ``(steps + 1, d)`` iterates of the rule in :func:`course_lib.saddles.perturbed_gd`; compared with
that reference run on a generator with the same seed.
"""

from __future__ import annotations

import torch

from .. import saddles
from ._common import compare_iterates, fail, fmt, generator, learner_error, quiet_and_isolated, succeed

F64 = torch.float64

_KINDS = ("minimum", "maximum", "strict saddle", "degenerate")


def _t(rows):
    return torch.tensor(rows, dtype=F64)


_CLASSIFY_CASES = (
    # (name, hessian, tol)
    ("a bowl, diag(2, 3)", _t([[2.0, 0.0], [0.0, 3.0]]), 1e-8),
    ("a hill, diag(-1, -4)", _t([[-1.0, 0.0], [0.0, -4.0]]), 1e-8),
    ("x^2 - y^2, diag(2, -2)", _t([[2.0, 0.0], [0.0, -2.0]]), 1e-8),
    ("a turned saddle, [[0, 1], [1, 0]] (eigenvalues -1, 1)", _t([[0.0, 1.0], [1.0, 0.0]]), 1e-8),
    ("the monkey saddle: a zero Hessian", torch.zeros(2, 2, dtype=F64), 1e-8),
    ("a flat direction, diag(1, 0)", _t([[1.0, 0.0], [0.0, 0.0]]), 1e-8),
    ("negative and zero, diag(-1, 0): a saddle or a maximum, the Hessian cannot tell", _t([[-1.0, 0.0], [0.0, 0.0]]),
     1e-8),
    ("three dimensions, eigenvalues -1, 0, 2: a direction of negative curvature and one of positive",
     _t([[-1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]), 1e-8),
    ("a small eigenvalue 1e-3 inside tol = 1e-2", _t([[1e-3, 0.0], [0.0, 2.0]]), 1e-2),
    ("an eigenvalue exactly at -tol, diag(-0.5, 3) with tol = 0.5", _t([[-0.5, 0.0], [0.0, 3.0]]), 0.5),
    ("a dense 3x3 minimum, A^T A + I", None, 1e-8),
)


def _dense_minimum() -> torch.Tensor:
    a = torch.randn(3, 3, generator=generator(6), dtype=F64)
    return a.T @ a + torch.eye(3, dtype=F64)


def check_classify_critical_point(classify_critical_point) -> None:
    """Eleven Hessians: minimum, maximum, strict saddles (turned, 3-D), degenerate ones, tolerances that decide."""
    __tracebackhide__ = True  # noqa: F841
    title = "Classify critical points"
    cases = _CLASSIFY_CASES
    with quiet_and_isolated():
        for number, (name, hessian, tol) in enumerate(cases, start=1):
            if hessian is None:
                hessian = _dense_minimum()
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = saddles.classify_critical_point(hessian, tol)
            eigenvalues = torch.linalg.eigvalsh(hessian)
            call = f"classify_critical_point(H, tol={fmt(tol)}) with H's eigenvalues {fmt(eigenvalues)}"
            try:
                got = classify_critical_point(hessian.clone(), tol)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            if got not in _KINDS:
                fail(f"{prefix}: {call} returned {got!r}; expected one of {', '.join(map(repr, _KINDS))}")
            if got != expected:
                fail(f"{prefix}: {call}: expected {expected!r}, got {got!r}\n  Hint: minimum if every eigenvalue "
                     f"> tol, maximum if every one < -tol, strict saddle if one < -tol and one > tol, "
                     f"otherwise degenerate (the strict inequalities matter)")
    succeed(title, len(cases))


def _quartic_saddle(x):
    return torch.stack([x[0], -x[1] + x[1] ** 3])


def _constant(x):
    return torch.tensor([0.3, -0.4], dtype=x.dtype)  # norm 0.5


def _bowl_3d(x):
    return torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype) * x


def _cubic_1d(x):
    return 3 * x ** 2


_PGD_CASES = (
    # (name, grad_fn, x0, lr, radius, threshold, steps, seed)
    ("quartic saddle from its stable manifold (1, 0)", _quartic_saddle, [1.0, 0.0], 0.1, 1e-2, 1e-3, 150, 0),
    ("quartic saddle from (0.5, 0.001): no kick ever needed", _quartic_saddle, [0.5, 1e-3], 0.1, 1e-2, 1e-5, 40, 1),
    ("gradient norm exactly equal to the threshold: every step is a kick", _constant, [0.0, 0.0], 0.1, 0.2, 0.5, 6, 2),
    ("a 3-D bowl: steps, then kicks near the minimum", _bowl_3d, [1.0, -1.0, 0.5], 0.2, 1e-3, 1e-2, 40, 3),
    ("1-D: the ball is an interval, r = radius * u^(1/1)", _cubic_1d, [0.0], 0.05, 0.5, 1e-2, 10, 4),
)


def check_perturbed_gd(perturbed_gd) -> None:
    """Five runs compared iterate by iterate with the reference on a generator with the same seed."""
    __tracebackhide__ = True  # noqa: F841
    title = "Perturbed gradient descent"
    cases = _PGD_CASES
    with quiet_and_isolated():
        for number, (name, grad_fn, x0, lr, radius, threshold, steps, seed) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = (f"perturbed_gd(grad_fn, x0={fmt(x0)}, lr={fmt(lr)}, radius={fmt(radius)}, "
                    f"threshold={fmt(threshold)}, steps={steps}, generator=<seed {seed}>)")
            expected = saddles.perturbed_gd(grad_fn, torch.tensor(x0, dtype=F64), lr, radius, threshold, steps,
                                            generator(seed))
            try:
                got = perturbed_gd(grad_fn, torch.tensor(x0, dtype=F64), lr, radius, threshold, steps,
                                   generator(seed))
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            def explain(k, problem):
                kicked = k > 0 and bool(torch.linalg.vector_norm(grad_fn(expected[k - 1])) <= threshold)
                what = "a kick (||g|| <= threshold)" if kicked else "a gradient step (||g|| > threshold)"
                return (f"{prefix}: {call}: step {k}, {what}: {problem}\n  Hint: kick with u = randn(d), "
                        f"u = u / ||u||, r = radius * rand(()) ** (1 / d), all from `generator`, in that order; "
                        f"a kick replaces the gradient step")

            compare_iterates(got, expected, prefix, call, "steps + 1 rows: x0 first, then one row per step", explain)
    succeed(title, len(cases))
