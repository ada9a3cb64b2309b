"""Notebook 05's checks: correct code passes with one fixed line, every planted bug is caught, and an
unsolved exercise raises NotImplementedError unchanged."""

from __future__ import annotations

import pytest
import torch

from course_lib.grading import check_assign_basins, check_hessian_2d

# --------------------------------------------------------------------------------------------- hessian_2d

def hessian_2d(f, point):
    p = point.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(p), p, create_graph=True)
    rows = [torch.autograd.grad(g[i], p, retain_graph=True)[0] for i in range(2)]
    return torch.stack(rows)


def hessian_no_create_graph(f, point):
    p = point.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(p), p)
    rows = [torch.autograd.grad(g[i], p, retain_graph=True)[0] for i in range(2)]
    return torch.stack(rows)


def hessian_diagonal_only(f, point):
    return torch.diag(torch.diagonal(hessian_2d(f, point)))


def hessian_gauss_newton(f, point):  # the outer product of the gradient, a common confusion
    p = point.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(p), p)
    return torch.outer(g, g)


def hessian_finite_differences(f, point, h=1e-3):  # forward differences of the gradient: O(h) error
    def grad(q):
        q = q.detach().clone().requires_grad_(True)
        return torch.autograd.grad(f(q), q)[0]
    g0 = grad(point)
    return torch.stack([(grad(point + h * e) - g0) / h for e in torch.eye(2, dtype=point.dtype)])


def hessian_float32(f, point):
    return hessian_2d(f, point.float())


def hessian_in_place(f, point):
    point.requires_grad_(True)
    (g,) = torch.autograd.grad(f(point), point, create_graph=True)
    H = torch.stack([torch.autograd.grad(g[i], point, retain_graph=True)[0] for i in range(2)])
    return H


def hessian_negated(f, point):
    return -hessian_2d(f, point)


# --------------------------------------------------------------------------------------------- assign_basins

def assign_basins(final_points, minima, tol):
    distance = (final_points[:, None, :] - minima[None, :, :]).norm(dim=-1)
    nearest, index = distance.min(dim=1)
    ok = torch.isfinite(final_points).all(dim=1) & (nearest <= tol)
    return torch.where(ok, index, torch.full_like(index, -1))


def basins_no_tol(final_points, minima, tol):
    distance = (final_points[:, None, :] - minima[None, :, :]).norm(dim=-1)
    index = distance.min(dim=1).indices
    return torch.where(torch.isfinite(final_points).all(dim=1), index, -1)


def basins_squared_distance(final_points, minima, tol):
    distance = (final_points[:, None, :] - minima[None, :, :]).pow(2).sum(-1)
    nearest, index = distance.min(dim=1)
    ok = torch.isfinite(final_points).all(dim=1) & (nearest <= tol)
    return torch.where(ok, index, -1)


def basins_wrong_dim(final_points, minima, tol):
    distance = (final_points[:, None, :] - minima[None, :, :]).norm(dim=-1)
    index = distance.min(dim=0).indices  # over the points, not the minima
    return index


def basins_ignore_nan(final_points, minima, tol):  # a diverged row becomes distance 0 to minimum 0
    distance = torch.cdist(final_points, minima).nan_to_num(0.0)
    nearest, index = distance.min(dim=1)
    return torch.where(nearest <= tol, index, -1)


def basins_last_index_on_ties(final_points, minima, tol):
    distance = (final_points[:, None, :] - minima[None, :, :]).norm(dim=-1).flip(1)
    nearest, index = distance.min(dim=1)
    index = len(minima) - 1 - index
    ok = torch.isfinite(final_points).all(dim=1) & (nearest <= tol)
    return torch.where(ok, index, -1)


def basins_l1_distance(final_points, minima, tol):
    distance = (final_points[:, None, :] - minima[None, :, :]).abs().sum(-1)
    nearest, index = distance.min(dim=1)
    ok = torch.isfinite(final_points).all(dim=1) & (nearest <= tol)
    return torch.where(ok, index, -1)


def basins_float_labels(final_points, minima, tol):
    return assign_basins(final_points, minima, tol).double()


def basins_list(final_points, minima, tol):
    return assign_basins(final_points, minima, tol).tolist()


def not_implemented(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------------------------- tests

def test_correct_code_passes_with_one_fixed_line(capsys):
    check_hessian_2d(hessian_2d)
    assert capsys.readouterr().out == "Hessian in 2-D: all 5 checks passed\n"
    check_assign_basins(assign_basins)
    assert capsys.readouterr().out == "Basin assignment: all 6 checks passed\n"


def test_course_lib_tools_agree_with_the_checks():
    """The library's batched Hessians (used in the notebook) pass the same check."""
    from course_lib.landscape import min_hessian_eigenvalues
    from course_lib.surfaces import get_surface
    himmelblau = get_surface("himmelblau")
    xs, ys, lam = min_hessian_eigenvalues(himmelblau, ((-1, 1), (-1, 1)), 5)
    direct = torch.linalg.eigvalsh(himmelblau.hessian(torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)))[..., 0]
    assert torch.allclose(lam, direct)


@pytest.mark.parametrize("bug, pattern", [
    (hessian_no_create_graph, r"case 1 of 5 .*raised RuntimeError"),
    (hessian_diagonal_only, r"case 1 of 5 .*Hessian differs at index \(0, 1\): expected -2, got 0"),
    (hessian_gauss_newton, r"case 1 of 5 .*Hessian differs"),
    (hessian_finite_differences, r"case 2 of 5 .*Rosenbrock.*Hessian differs"),
    (hessian_float32, r"case 2 of 5 .*dtype torch.float32"),
    (hessian_in_place, r"case 1 of 5 .*changed its input point"),
    (hessian_negated, r"case 1 of 5 .*expected 8, got -8"),
], ids=["no-create-graph", "diagonal-only", "gradient-outer-product", "finite-differences", "float32", "in-place",
        "negated"])
def test_planted_hessian_bug_is_caught(bug, pattern, capsys):
    with pytest.raises(AssertionError, match=pattern):
        check_hessian_2d(bug)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("bug, pattern", [
    (basins_no_tol, r"case 1 of 6 .*row 4 .*expected -1, got 0"),
    (basins_squared_distance, r"case 1 of 6 .*row 4 .*expected -1, got 0"),
    (basins_wrong_dim, r"case 1 of 6 .*shape \(4,\), expected \(8,\)"),
    (basins_ignore_nan, r"case 4 of 6 .*row 0 .*expected -1"),
    (basins_last_index_on_ties, r"case 3 of 6 .*row 0 .*expected 0, got 1"),
    (basins_l1_distance, r"case 6 of 6 .*10,000 random points.*labels differ"),
    (basins_float_labels, r"case 1 of 6 .*dtype torch.float64, expected torch.long"),
    (basins_list, r"case 1 of 6 .*should return a tensor, got list"),
], ids=["no-tol", "squared-distance", "wrong-dim", "nan-as-zero", "last-index-on-ties", "l1-distance",
        "float-labels", "list"])
def test_planted_basin_bug_is_caught(bug, pattern, capsys):
    with pytest.raises(AssertionError, match=pattern):
        check_assign_basins(bug)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("check", [check_hessian_2d, check_assign_basins])
def test_unsolved_exercise_raises_not_implemented_error_unchanged(check):
    with pytest.raises(NotImplementedError) as info:
        check(not_implemented)
    assert type(info.value) is NotImplementedError
