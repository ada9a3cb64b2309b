r"""Checks of notebook 07 (deep linear networks).

``check_balancedness(balancedness)``: ``balancedness(weights)`` with ``weights = [W_1, ..., W_N]`` returns
:math:`\max_j \|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F` as a number (0 for one layer).

``check_balanced_factors(balanced_factors)``: ``balanced_factors(A, dims)`` returns ``[W_1, ..., W_N]`` with
``W_j`` of shape ``(dims[j], dims[j-1])``, product ``W_N ... W_1 = A`` and balancedness zero (round-off).

``check_end_to_end_update(end_to_end_update)``: ``end_to_end_update(W, grad, lr, depth)`` returns
:math:`W - \eta \sum_{j=1}^N [WW^\top]^{(j-1)/N}\, \nabla\, [W^\top W]^{(N-j)/N}`; the reference takes the powers
from an SVD of :math:`W` (an independent route to the same matrices).

``check_saxe_mode_strength(saxe_mode_strength)``: ``saxe_mode_strength(t, s, u0, tau)`` against a fine
Runge-Kutta integration of :math:`\tau \dot u = 2u(s - u)`.
"""

from __future__ import annotations

import math

import torch

from ._common import compare_number, compare_tensor, fail, fmt, generator, learner_error, quiet_and_isolated, succeed

F64 = torch.float64


def _randn(*shape, seed):
    return torch.randn(*shape, generator=generator(seed), dtype=F64)


def _gap(weights):
    worst = 0.0
    for w, w_next in zip(weights[:-1], weights[1:]):
        worst = max(worst, torch.linalg.matrix_norm(w_next.T @ w_next - w @ w.T).item())
    return worst


def _shapes(weights):
    return [tuple(w.shape) for w in weights]


# ---------------------------------------------------------------------------------------------- balancedness

def _balancedness_cases():
    scalars = [torch.tensor([[10.0]], dtype=F64), torch.tensor([[0.075]], dtype=F64)]
    q, _ = torch.linalg.qr(_randn(3, 3, seed=71))
    return (
        ("two scalar layers w1 = 10, w2 = 0.075: |w2^2 - w1^2|", scalars, abs(0.075 ** 2 - 100.0)),
        ("one layer: nothing to compare, 0", [_randn(3, 2, seed=70)], 0.0),
        ("two square layers", [_randn(3, 3, seed=72), _randn(3, 3, seed=73)], None),
        ("rectangular layers 2 -> 4 -> 3 (W_{j+1}^T W_{j+1} and W_j W_j^T are 4 x 4)",
         [_randn(4, 2, seed=74), _randn(3, 4, seed=75)], None),
        ("four layers: the largest of three gaps",
         [_randn(3, 2, seed=76), 3 * _randn(5, 3, seed=77), _randn(4, 5, seed=78), _randn(1, 4, seed=79)], None),
        ("orthogonal layers (balanced: 0 up to round-off)", [q, q.T, q], None),
    )


def check_balancedness(balancedness) -> None:
    """Six weight lists: scalars, one layer, square, rectangular, deep (the max matters), orthogonal."""
    __tracebackhide__ = True  # noqa: F841
    title = "Balancedness"
    cases = _balancedness_cases()
    with quiet_and_isolated():
        for number, (name, weights, expected) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            if expected is None:
                expected = _gap(weights)
            call = f"balancedness(weights with shapes {_shapes(weights)})"
            try:
                got = balancedness([w.clone() for w in weights])
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_number(got, expected, "the value", rtol=1e-10, atol=1e-12)
            if problem:
                fail(f"{prefix}: {call}: {problem}\n  Hint: for each consecutive pair (W_j, W_{{j+1}}) take the "
                     f"Frobenius norm of W_{{j+1}}^T W_{{j+1}} - W_j W_j^T, and return the largest")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------- balanced factors

_FACTOR_CASES = (
    # (name, dims, rank or None)
    ("depth 2, square 3 -> 3 -> 3", [3, 3, 3], None),
    ("depth 3, wide hidden layers 3 -> 5 -> 5 -> 2", [3, 5, 5, 2], None),
    ("depth 4, scalar output 4 -> 2 -> 2 -> 2 -> 1", [4, 2, 2, 2, 1], None),
    ("depth 3, scalar input 1 -> 3 -> 3 -> 4", [1, 3, 3, 4], None),
    ("depth 2, a rank-one target 4 -> 3 -> 3", [4, 3, 3], 1),
    ("depth 1: the matrix itself", [3, 2], None),
    ("depth 5, scalars 1 -> 1 -> ... -> 1", [1] * 6, None),
)


def check_balanced_factors(balanced_factors) -> None:
    """Seven end-to-end matrices split into layers: shapes, product and balancedness."""
    __tracebackhide__ = True  # noqa: F841
    title = "Balanced factors"
    cases = _FACTOR_CASES
    with quiet_and_isolated():
        for number, (name, dims, rank) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            if rank is None:
                a = _randn(dims[-1], dims[0], seed=80 + number)
            else:
                a = _randn(dims[-1], rank, seed=80 + number) @ _randn(rank, dims[0], seed=90 + number)
            if dims == [1] * 6:
                a = torch.tensor([[-2.0]], dtype=F64)  # a negative scalar: the sign goes into one layer
            call = f"balanced_factors(A of shape {tuple(a.shape)}, dims={dims})"
            try:
                got = balanced_factors(a.clone(), list(dims))
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            expected_shapes = [(dims[j + 1], dims[j]) for j in range(len(dims) - 1)]
            if not isinstance(got, (list, tuple)) or not all(isinstance(w, torch.Tensor) for w in got):
                fail(f"{prefix}: {call} returned {type(got).__name__}; expected a list of {len(expected_shapes)} tensors")
            if _shapes(got) != expected_shapes:
                fail(f"{prefix}: {call} returned layers of shapes {_shapes(got)}, expected {expected_shapes} "
                     f"(W_j has shape (dims[j], dims[j-1]), first layer first)")
            product = got[0]
            for w in got[1:]:
                product = w @ product
            problem = compare_tensor(product, a, "the product W_N ... W_1", atol=1e-10)
            if problem:
                fail(f"{prefix}: {call}: {problem}\n  Hint: with A = U diag(s) V^T, the layers carry U, s^(1/N) "
                     f"each, and V^T, so that their product is A")
            gap = _gap([w.to(F64) for w in got])
            if not gap < 1e-10:
                fail(f"{prefix}: {call}: balancedness {gap:.6g}, expected 0 (below 1e-10)\n  Hint: every layer must "
                     f"carry the same singular values s^(1/N), and consecutive layers must share the same basis: "
                     f"W_{{j+1}}^T W_{{j+1}} = W_j W_j^T")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------- end-to-end update

def _power_from_svd(left_vectors, singular_values, exponent, size):
    """[W W^T]^exponent (or [W^T W]^exponent with the right vectors) from the SVD of W; 0^0 = 1, I for 0."""
    if exponent == 0:
        return torch.eye(size, dtype=F64)
    tol = 1e-10 * max(float(singular_values.max()), 1e-300) ** 2
    squared = singular_values ** 2
    powered = torch.where(squared > tol, squared.clamp_min(1e-300) ** exponent, torch.zeros_like(squared))
    return (left_vectors * powered[None, :]) @ left_vectors.T


def _reference_update(w, grad, lr, depth):
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    total = torch.zeros_like(grad)
    for j in range(1, depth + 1):
        left = _power_from_svd(u, s, (j - 1) / depth, w.shape[0])
        right = _power_from_svd(vh.T, s, (depth - j) / depth, w.shape[1])
        total = total + left @ grad @ right
    return w - lr * total


def _update_cases():
    rank_one = _randn(3, 1, seed=61) @ _randn(1, 3, seed=62)
    return (
        ("depth 1: plain gradient descent", _randn(3, 3, seed=50), _randn(3, 3, seed=51), 0.1, 1),
        ("depth 2, W = diag(4, 1): direction G W + W G", torch.diag(torch.tensor([4.0, 1.0], dtype=F64)),
         torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64), 0.1, 2),
        ("depth 3, a random square W", _randn(3, 3, seed=52), _randn(3, 3, seed=53), 0.05, 3),
        ("depth 4, rectangular W (2 x 4): W W^T is 2 x 2, W^T W is 4 x 4", _randn(2, 4, seed=54),
         _randn(2, 4, seed=55), 0.02, 4),
        ("depth 3, rank-one W: zero the small eigenvalues before the fractional powers", rank_one,
         _randn(3, 3, seed=63), 0.05, 3),
        ("depth 3, a single output (a row vector)", _randn(1, 5, seed=56), _randn(1, 5, seed=57), 0.1, 3),
    )


def check_end_to_end_update(end_to_end_update) -> None:
    """Six updates (depths 1-4, rectangular, rank-deficient, single output) against an SVD-based reference."""
    __tracebackhide__ = True  # noqa: F841
    title = "End-to-end update"
    cases = _update_cases()
    with quiet_and_isolated():
        for number, (name, w, grad, lr, depth) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = _reference_update(w, grad, lr, depth)
            call = f"end_to_end_update(W of shape {tuple(w.shape)}, grad, lr={fmt(lr)}, depth={depth})"
            try:
                got = end_to_end_update(w.clone(), grad.clone(), lr, depth)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_tensor(got, expected, "the new W", atol=1e-9, rtol=1e-7)
            if problem:
                hint = ("the j-th term is [W W^T]^((j-1)/N) @ grad @ [W^T W]^((N-j)/N) for j = 1..N, and a power 0 "
                        "is the identity")
                if "rank-one" in name:
                    hint += ("; eigenvalues of W W^T that are round-off (below 1e-10 times the largest) must be set "
                             "to 0 before the fractional power")
                fail(f"{prefix}: {call}: {problem}\n  Hint: {hint}")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------- Saxe

def _rk4_logistic(times, s, u0, tau, substeps=400):
    """tau du/dt = 2u(s - u) integrated by classical Runge-Kutta, ``substeps`` per unit of tau / (2s)."""
    def f(u):
        return 2.0 * u * (s - u) / tau
    values, u, t_now = [], u0, 0.0
    for t in sorted(times):
        n = max(1, math.ceil((t - t_now) * substeps * 2 * s / tau))
        h = (t - t_now) / n
        for _ in range(n):
            k1 = f(u)
            k2 = f(u + h / 2 * k1)
            k3 = f(u + h / 2 * k2)
            k4 = f(u + h * k3)
            u += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        values.append(u)
        t_now = t
    return torch.tensor(values, dtype=F64)


_SAXE_CASES = (
    # (name, times, s, u0, tau)
    ("a strong mode s = 3 from u0 = 1e-3", [0.0, 0.5, 1.0, 1.15, 1.5, 3.0], 3.0, 1e-3, 1.0),
    ("a weak mode s = 0.5 learns later", [0.0, 2.0, 6.0, 6.2, 8.0, 20.0], 0.5, 1e-3, 1.0),
    ("time constant tau = 4 stretches time", [0.0, 1.0, 4.0, 8.0], 1.0, 1e-2, 4.0),
    ("a start above half, u0 = 0.8 s", [0.0, 0.3, 1.0], 2.0, 1.6, 1.0),
    ("long times: the sigmoid has settled at s", [20.0, 50.0], 2.0, 1e-3, 1.0),
)


def check_saxe_mode_strength(saxe_mode_strength) -> None:
    """Five modes (strong, weak, slow time constant, a start above half, long times) against Runge-Kutta."""
    __tracebackhide__ = True  # noqa: F841
    title = "Saxe mode strength"
    cases = _SAXE_CASES
    with quiet_and_isolated():
        for number, (name, times, s, u0, tau) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = _rk4_logistic(times, s, u0, tau)
            t = torch.tensor(times, dtype=F64)
            call = f"saxe_mode_strength(t={fmt(times)}, s={fmt(s)}, u0={fmt(u0)}, tau={fmt(tau)})"
            try:
                got = saxe_mode_strength(t.clone(), s, u0, tau)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_tensor(got, expected, "u(t)", rtol=1e-8, atol=1e-10)
            if problem:
                fail(f"{prefix}: {call}: {problem} (reference: Runge-Kutta on tau du/dt = 2u(s - u))\n  Hint: "
                     f"u(t) = s e^(2st/tau) / (e^(2st/tau) - 1 + s/u0), computed in the dtype of t (float64)")
    succeed(title, len(cases))
