"""Notebook 07's checks: the correct code passes with one fixed line; each planted bug is caught."""

import pytest
import torch

from course_lib import linear_nets as ln
from course_lib.grading import (check_balanced_factors, check_balancedness, check_end_to_end_update,
                                check_saxe_mode_strength)


# ---------------------------------------------------------------------------------------------- balancedness

def bal_ok(weights):
    return max((torch.linalg.matrix_norm(b.T @ b - a @ a.T).item() for a, b in zip(weights, weights[1:])),
               default=0.0)


def bal_wrong_order(weights):  # W_{j+1} W_{j+1}^T - W_j^T W_j: wrong sides
    return max((torch.linalg.matrix_norm(b @ b.T - a.T @ a).item() if b.shape[0] == a.shape[1] else 1.0
                for a, b in zip(weights, weights[1:])), default=0.0)


def bal_sum(weights):  # sum instead of max
    return sum(torch.linalg.matrix_norm(b.T @ b - a @ a.T).item() for a, b in zip(weights, weights[1:]))


def bal_first_pair(weights):
    if len(weights) < 2:
        return 0.0
    return torch.linalg.matrix_norm(weights[1].T @ weights[1] - weights[0] @ weights[0].T).item()


def bal_spectral(weights):  # operator norm instead of Frobenius
    return max((torch.linalg.matrix_norm(b.T @ b - a @ a.T, ord=2).item() for a, b in zip(weights, weights[1:])),
               default=0.0)


def bal_squared(weights):
    return max((torch.linalg.matrix_norm(b.T @ b - a @ a.T).item() ** 2 for a, b in zip(weights, weights[1:])),
               default=0.0)


def test_balancedness_correct_passes(capsys):
    check_balancedness(bal_ok)
    check_balancedness(ln.balancedness)
    assert capsys.readouterr().out == "Balancedness: all 6 checks passed\n" * 2


@pytest.mark.parametrize("bug", [bal_wrong_order, bal_sum, bal_first_pair, bal_spectral, bal_squared])
def test_balancedness_bugs_caught(bug):
    with pytest.raises(AssertionError, match="Balancedness, case"):
        check_balancedness(bug)


def test_balancedness_unsolved_raises_not_implemented():
    def stub(weights):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError):
        check_balancedness(stub)


# ---------------------------------------------------------------------------------------------- balanced factors

def factors_ok(a, dims):
    return ln.balanced_factors(a, dims)


def factors_all_in_first(a, dims):  # product right, not balanced
    n = len(dims) - 1
    k = min(dims[0], dims[-1])
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    weights = []
    for j in range(1, n + 1):
        w = torch.zeros(dims[j], dims[j - 1], dtype=a.dtype)
        if n == 1:
            return [a.clone()]
        if j == 1:
            w[:k] = s[:, None] * vh
        elif j == n:
            w[:, :k] = u
        else:
            w[:k, :k] = torch.eye(k, dtype=a.dtype)
        weights.append(w)
    return weights


def factors_sqrt_always(a, dims):  # s^(1/2) per layer whatever the depth
    n = len(dims) - 1
    if n == 1:
        return [a.clone()]
    k = min(dims[0], dims[-1])
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    r = s.sqrt()
    weights = []
    for j in range(1, n + 1):
        w = torch.zeros(dims[j], dims[j - 1], dtype=a.dtype)
        if j == 1:
            w[:k] = r[:, None] * vh
        elif j == n:
            w[:, :k] = u * r
        else:
            w[:k, :k] = torch.diag(r)
        weights.append(w)
    return weights


def factors_reversed(a, dims):  # last layer first
    return ln.balanced_factors(a, dims)[::-1]


def factors_no_u(a, dims):  # forgets U: wrong product unless U = I
    n = len(dims) - 1
    weights = ln.balanced_factors(a, dims)
    if n == 1:
        return weights
    u, _, _ = torch.linalg.svd(a, full_matrices=False)
    k = u.shape[1]
    last = weights[-1].clone()
    last[:, :k] = last[:, :k] @ torch.diag(1.0 / torch.linalg.vector_norm(u, dim=0))
    last[:, :k] = torch.abs(last[:, :k])
    weights[-1] = last
    return weights


def test_balanced_factors_correct_passes(capsys):
    check_balanced_factors(factors_ok)
    assert capsys.readouterr().out == "Balanced factors: all 7 checks passed\n"


@pytest.mark.parametrize("bug", [factors_all_in_first, factors_sqrt_always, factors_reversed, factors_no_u])
def test_balanced_factors_bugs_caught(bug):
    with pytest.raises(AssertionError, match="Balanced factors, case"):
        check_balanced_factors(bug)


def test_balanced_factors_returning_a_tensor_is_caught():
    with pytest.raises(AssertionError, match="list of"):
        check_balanced_factors(lambda a, dims: a)


# ---------------------------------------------------------------------------------------------- end-to-end update

def _pow(m, p, tol=1e-10):
    if p == 0:
        return torch.eye(m.shape[0], dtype=m.dtype)
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    vals = torch.where(vals > tol * vals.abs().max(), vals, torch.zeros_like(vals)).clamp_min(0)
    return (vecs * vals ** p) @ vecs.T


def update_ok(w, g, lr, n):
    total = sum(_pow(w @ w.T, (j - 1) / n) @ g @ _pow(w.T @ w, (n - j) / n) for j in range(1, n + 1))
    return w - lr * total


def update_swapped_sides(w, g, lr, n):  # powers of W^T W on the left... only works when shapes allow
    if w.shape[0] != w.shape[1]:
        return update_ok(w, g, lr, n)
    total = sum(_pow(w.T @ w, (j - 1) / n) @ g @ _pow(w @ w.T, (n - j) / n) for j in range(1, n + 1))
    return w - lr * total


def update_off_by_one(w, g, lr, n):  # exponents j/N and (N-j)/N
    total = sum(_pow(w @ w.T, j / n) @ g @ _pow(w.T @ w, (n - j) / n) for j in range(1, n + 1))
    return w - lr * total


def update_no_zeroing(w, g, lr, n):  # fractional powers of round-off eigenvalues
    def pw(m, p):
        if p == 0:
            return torch.eye(m.shape[0], dtype=m.dtype)
        vals, vecs = torch.linalg.eigh((m + m.T) / 2)
        return (vecs * vals.abs() ** p) @ vecs.T
    total = sum(pw(w @ w.T, (j - 1) / n) @ g @ pw(w.T @ w, (n - j) / n) for j in range(1, n + 1))
    return w - lr * total


def update_plain_gd_times_depth(w, g, lr, n):
    return w - lr * n * g


def update_zero_power_is_projection(w, g, lr, n):  # M^0 taken as the projection onto the range (0^0 = 0)
    def pw(m, p):
        vals, vecs = torch.linalg.eigh((m + m.T) / 2)
        vals = torch.where(vals > 1e-10 * vals.abs().max(), vals, torch.zeros_like(vals)).clamp_min(0)
        powered = torch.where(vals > 0, vals.clamp_min(1e-300) ** p, torch.zeros_like(vals))
        return (vecs * powered) @ vecs.T
    total = sum(pw(w @ w.T, (j - 1) / n) @ g @ pw(w.T @ w, (n - j) / n) for j in range(1, n + 1))
    return w - lr * total


def test_end_to_end_update_correct_passes(capsys):
    check_end_to_end_update(update_ok)
    check_end_to_end_update(ln.end_to_end_update)
    assert capsys.readouterr().out == "End-to-end update: all 6 checks passed\n" * 2


@pytest.mark.parametrize("bug", [update_swapped_sides, update_off_by_one, update_no_zeroing,
                                 update_plain_gd_times_depth, update_zero_power_is_projection])
def test_end_to_end_update_bugs_caught(bug):
    with pytest.raises(AssertionError, match="End-to-end update, case"):
        check_end_to_end_update(bug)


# ---------------------------------------------------------------------------------------------- Saxe

def saxe_ok(t, s, u0, tau):
    e = torch.exp(2 * s * t / tau)
    return s * e / (e - 1 + s / u0)


def saxe_missing_two(t, s, u0, tau):
    e = torch.exp(s * t / tau)
    return s * e / (e - 1 + s / u0)


def saxe_u0_over_s(t, s, u0, tau):
    e = torch.exp(2 * s * t / tau)
    return s * e / (e - 1 + u0 / s)


def saxe_tau_multiplies(t, s, u0, tau):
    e = torch.exp(2 * s * t * tau)
    return s * e / (e - 1 + s / u0)


def saxe_float32(t, s, u0, tau):
    return saxe_ok(t.float(), s, u0, tau)


def test_saxe_correct_passes(capsys):
    check_saxe_mode_strength(saxe_ok)
    check_saxe_mode_strength(ln.saxe_mode_strength)
    out = capsys.readouterr().out
    assert out == "Saxe mode strength: all 5 checks passed\n" * 2


@pytest.mark.parametrize("bug", [saxe_missing_two, saxe_u0_over_s, saxe_tau_multiplies, saxe_float32])
def test_saxe_bugs_caught(bug):
    with pytest.raises(AssertionError, match="Saxe mode strength, case"):
        check_saxe_mode_strength(bug)


def test_checks_do_not_move_the_global_rng():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    check_balancedness(bal_ok)
    check_balanced_factors(factors_ok)
    check_end_to_end_update(update_ok)
    check_saxe_mode_strength(ln.saxe_mode_strength)
    assert torch.equal(before, torch.random.get_rng_state())
