r"""Checks of notebook 05 (convex and non-convex surfaces), against closed forms and brute force.

* ``check_hessian_2d(hessian_2d)``: ``hessian_2d(f, point)`` returns the ``(2, 2)`` Hessian of a function
  ``f`` of points ``(..., 2)`` at one ``point`` (a float64 tensor of shape ``(2,)``); compared with
  Hessians written out by hand for five functions (a quadratic with a cross term, Rosenbrock, Himmelblau at
  a saddle, a product :math:`\sin x\,e^{y}`, a cubic at a point where only the mixed derivative is
  non-zero).
* ``check_assign_basins(assign_basins)``: ``assign_basins(final_points, minima, tol)`` returns, for each row
  of ``final_points`` ``(B, 2)``, the index (``torch.long``) of the nearest of the ``minima`` ``(M, 2)`` when
  its Euclidean distance is at most ``tol``, else ``-1`` (also for rows that are not finite); compared with
  a loop over the points, on cases with ties broken toward the lower index, distances just inside and
  just outside ``tol``, non-finite rows, one minimum, and 10,000 random points.
"""

from __future__ import annotations

import math

import torch

from ._common import (
    compare_tensor,
    fail,
    generator,
    learner_error,
    quiet_and_isolated,
    shape_str,
    succeed,
)

__all__ = ["check_assign_basins", "check_hessian_2d"]

F64 = torch.float64


def _call(prefix, fn, *args, hint=""):
    __tracebackhide__ = True
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 (the learner's code may raise anything)
        learner_error(prefix, err, hint)


# ---------------------------------------------------------------------------------------------
# Hessians in 2-D


def _hessian_cases():
    def quad(p):
        x, y = p[..., 0], p[..., 1]
        return 1.5 * x * x - 2.0 * x * y + 4.0 * y * y + x - y

    def rosenbrock(p):
        x, y = p[..., 0], p[..., 1]
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def himmelblau(p):
        x, y = p[..., 0], p[..., 1]
        return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

    def product(p):
        return torch.sin(p[..., 0]) * torch.exp(p[..., 1])

    def cubic(p):
        x, y = p[..., 0], p[..., 1]
        return x * x * y + x ** 3 / 3

    def h_rosenbrock(x, y):
        return [[2 - 400 * (y - 3 * x * x), -400 * x], [-400 * x, 200]]

    def h_himmelblau(x, y):
        return [[12 * x * x + 4 * y - 42, 4 * (x + y)], [4 * (x + y), 12 * y * y + 4 * x - 26]]

    def h_product(x, y):
        return [[-math.sin(x) * math.exp(y), math.cos(x) * math.exp(y)],
                [math.cos(x) * math.exp(y), math.sin(x) * math.exp(y)]]

    sx, sy = 0.0866775045553963, 2.88425470117478  # a saddle of Himmelblau's function
    return [
        ("1.5x^2 - 2xy + 4y^2 + x - y at (0.3, -0.7)", quad, (0.3, -0.7), [[3.0, -2.0], [-2.0, 8.0]]),
        ("Rosenbrock (1-x)^2 + 100(y-x^2)^2 at (-1.2, 1.0)", rosenbrock, (-1.2, 1.0), h_rosenbrock(-1.2, 1.0)),
        ("Himmelblau at its saddle (0.0867, 2.884)", himmelblau, (sx, sy), h_himmelblau(sx, sy)),
        ("sin(x) exp(y) at (0.4, -0.3)", product, (0.4, -0.3), h_product(0.4, -0.3)),
        ("x^2 y + x^3/3 at (0.5, -0.5), where only the mixed derivative is non-zero", cubic, (0.5, -0.5),
         [[0.0, 1.0], [1.0, 0.0]]),
    ]


def check_hessian_2d(hessian_2d) -> None:
    """``hessian_2d(f, point)`` -> the ``(2, 2)`` Hessian of ``f`` at ``point``, on 5 functions with known Hessians."""
    __tracebackhide__ = True
    cases = _hessian_cases()
    with quiet_and_isolated():
        for k, (name, f, point, expected) in enumerate(cases, 1):
            p = torch.tensor(point, dtype=F64)
            before = p.clone()
            got = _call(f"case {k} of {len(cases)} ({name}): hessian_2d(f, point)", hessian_2d, f, p,
                        hint="make a copy that requires grad, take the gradient with create_graph=True, "
                             "then differentiate each of its two entries again")
            if not torch.equal(p, before) or p.requires_grad:
                fail(f"case {k} of {len(cases)} ({name}): hessian_2d changed its input point "
                     f"(work on point.detach().clone().requires_grad_(True))")
            if not isinstance(got, torch.Tensor):
                fail(f"case {k} of {len(cases)} ({name}): hessian_2d should return a tensor, got {type(got).__name__}")
            problem = compare_tensor(got, torch.tensor(expected, dtype=F64), "the Hessian", rtol=1e-8)
            if problem:
                fail(f"case {k} of {len(cases)} ({name}): {problem}")
    succeed("Hessian in 2-D", len(cases))


# ---------------------------------------------------------------------------------------------
# basins: which minimum did a run reach?


def _reference_basins(points, minima, tol):
    labels = []
    for p in points.tolist():
        if not all(math.isfinite(v) for v in p):
            labels.append(-1)
            continue
        best, best_d = -1, math.inf
        for i, m in enumerate(minima.tolist()):
            d = math.hypot(p[0] - m[0], p[1] - m[1])
            if d < best_d:
                best, best_d = i, d
        labels.append(best if best_d <= tol else -1)
    return torch.tensor(labels, dtype=torch.long)


def _basin_cases():
    himmelblau = torch.tensor([[3.0, 2.0], [-2.80511808695274, 3.13131251825057],
                               [-3.77931025337775, -3.28318599128617], [3.58442834033049, -1.8481265269644]], dtype=F64)
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=F64)
    gen = generator(5)
    cases = [
        ("points at and near Himmelblau's four minima, tol 0.01",
         torch.cat([himmelblau + 0.003, himmelblau - torch.tensor([0.02, 0.0], dtype=F64)]), himmelblau, 0.01),
        ("distances just inside and just outside tol = 0.5 (0.45, 0.55, 0.6, 0.7)",
         torch.tensor([[0.45, 0.0], [0.0, 0.55], [0.6, 0.0], [0.0, -0.7], [1.0, 0.3]], dtype=F64),
         torch.tensor([[0.0, 0.0], [5.0, 5.0]], dtype=F64), 0.5),
        ("ties: points exactly halfway between minima go to the lower index, tol 1",
         torch.tensor([[0.5, 0.0], [0.5, 1.0], [0.0, 0.5], [0.5, 0.5], [1.0, 0.5]], dtype=F64), square, 1.0),
        ("rows that diverged (nan, inf) get -1, tol 10",
         torch.tensor([[float("nan"), 0.0], [0.0, float("inf")], [0.1, 0.1], [-float("inf"), 1.0]], dtype=F64),
         square, 10.0),
        ("one minimum, tol 2", torch.tensor([[1.0, 1.0], [3.0, 0.0], [-1.5, -1.4]], dtype=F64),
         torch.tensor([[0.0, 0.0]], dtype=F64), 2.0),
        ("10,000 random points, the four Himmelblau minima, tol 1.5",
         10 * torch.rand(10_000, 2, generator=gen, dtype=F64) - 5, himmelblau, 1.5),
    ]
    return cases


def check_assign_basins(assign_basins) -> None:
    """``assign_basins(final_points, minima, tol)`` -> long ``(B,)``: nearest minimum within ``tol``, else -1."""
    __tracebackhide__ = True
    cases = _basin_cases()
    with quiet_and_isolated():
        for k, (name, points, minima, tol) in enumerate(cases, 1):
            prefix = f"case {k} of {len(cases)} ({name})"
            got = _call(f"{prefix}: assign_basins(final_points, minima, tol)", assign_basins,
                        points.clone(), minima.clone(), tol)
            if not isinstance(got, torch.Tensor):
                fail(f"{prefix}: assign_basins should return a tensor, got {type(got).__name__}")
            expected = _reference_basins(points, minima, tol)
            if tuple(got.shape) != tuple(expected.shape):
                fail(f"{prefix}: the labels have shape {shape_str(got.shape)}, expected {shape_str(expected.shape)} "
                     f"(one label per row of final_points)")
            if got.dtype != torch.long:
                fail(f"{prefix}: the labels have dtype {got.dtype}, expected torch.long (indices)")
            wrong = (got.cpu() != expected).nonzero().flatten()
            if len(wrong):
                i = int(wrong[0])
                fail(f"{prefix}: label of row {i} (point {points[i].tolist()}) differs: expected {int(expected[i])}, "
                     f"got {int(got[i])}; {len(wrong)} of {len(expected)} labels differ")
    succeed("Basin assignment", len(cases))
