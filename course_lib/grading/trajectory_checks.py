r"""Checks of notebook 12 (what the trajectory decides: the edge of stability, deep matrix factorization).

``check_power_sharpness(power_sharpness)``: ``power_sharpness(matvec, v0, iters)`` runs ``iters`` steps of
power iteration, :math:`h = Hv,\ \lambda = v^\top h,\ v \leftarrow h/\|h\|` from :math:`v = v_0/\|v_0\|`, and
returns the last :math:`\lambda`. In exact arithmetic that is
:math:`\lambda^{(k)} = v_0^\top H^{2k-1} v_0 / v_0^\top H^{2k-2} v_0` for ``iters`` :math:`= k`, the closed
form the check compares with (from the eigendecomposition of :math:`H`).

``check_effective_rank(effective_rank)``: Roy & Vetterli's :math:`\exp(-\sum_i p_i \ln p_i)`,
:math:`p_i = \sigma_i/\sum_j\sigma_j`, on spectra whose value is known.

``check_svt(svt)``: ``svt(X, tau)`` :math:`= U\operatorname{diag}((\sigma_i - \tau)_+)V^\top`, on matrices built
from a known SVD: diagonal ones, and rotated ones (random orthogonal :math:`U`, :math:`V`), on which
thresholding the entries instead of the singular values fails with a hint that says so.

``check_factor_gradient_step(factor_gradient_step)``: one gradient step on every factor of
:math:`\tfrac12\|P_\Omega(W_N \cdots W_1 - M)\|_F^2`, against autograd.
"""

from __future__ import annotations

import math

import torch

from ._common import compare_number, compare_tensor, fail, fmt, generator, learner_error, quiet_and_isolated, succeed

F64 = torch.float64


def _randn(*shape, seed):
    return torch.randn(*shape, generator=generator(seed), dtype=F64)


def _orthogonal(n, seed):
    q, _ = torch.linalg.qr(_randn(n, n, seed=seed))
    return q


# ---------------------------------------------------------------------------------------------- power iteration

def _power_closed_form(hessian: torch.Tensor, v0: torch.Tensor, iters: int) -> float:
    r""":math:`v_0^\top H^{2k-1} v_0 / v_0^\top H^{2k-2} v_0` from :math:`H = Q\Lambda Q^\top` (powers scaled by
    :math:`|\lambda|_{\max}` so that nothing overflows)."""
    values, vectors = torch.linalg.eigh(hessian)
    c2 = (vectors.T @ v0) ** 2
    top = values.abs().max()
    scaled = values / top
    numerator = (c2 * scaled ** (2 * iters - 1)).sum()
    denominator = (c2 * scaled ** (2 * iters - 2)).sum()
    return float(top * numerator / denominator)


def _tiny_net_hessian():
    """A 2-4-2 tanh net on 6 points, squared loss: the Hessian of its 22 parameters, explicitly."""
    x = _randn(6, 2, seed=301)
    y = _randn(6, 2, seed=302)
    sizes = (2 * 4, 4, 4 * 2, 2)
    theta0 = 0.7 * _randn(sum(sizes), seed=303)

    def loss(theta):
        w1, b1, w2, b2 = torch.split(theta, sizes)
        h = torch.tanh(x @ w1.reshape(4, 2).T + b1)
        return 0.5 * ((h @ w2.reshape(2, 4).T + b2 - y) ** 2).sum(1).mean()

    h = torch.autograd.functional.hessian(loss, theta0)
    return (h + h.T) / 2


def _power_cases():
    rotated = _orthogonal(4, 311)
    return (
        ("diag(3, 1) from (1, 1), 1 iteration: (3 + 1) / 2", torch.diag(torch.tensor([3.0, 1.0], dtype=F64)),
         torch.tensor([1.0, 1.0], dtype=F64), 1),
        ("diag(3, 1) from (1, 1), 2 iterations: (27 + 1) / (9 + 1)", torch.diag(torch.tensor([3.0, 1.0], dtype=F64)),
         torch.tensor([1.0, 1.0], dtype=F64), 2),
        ("a rotated 4 x 4 quadratic, eigenvalues 10, 9, 2, 0.5, from a start of norm 1000, 40 iterations",
         rotated @ torch.diag(torch.tensor([10.0, 9.0, 2.0, 0.5], dtype=F64)) @ rotated.T,
         1000.0 * _randn(4, seed=312), 40),
        ("diag(-4, 1, 0.5): the largest magnitude is negative, 25 iterations",
         torch.diag(torch.tensor([-4.0, 1.0, 0.5], dtype=F64)), _randn(3, seed=313), 25),
        ("5 x 5 diagonal with two close top eigenvalues (not yet converged after 8 iterations)",
         torch.diag(torch.tensor([5.0, 4.8, 1.0, 0.3, 0.1], dtype=F64)), _randn(5, seed=314), 8),
        ("the Hessian of a small tanh network (22 parameters), 60 iterations", _tiny_net_hessian(),
         _randn(22, seed=315), 60),
    )


def check_power_sharpness(power_sharpness) -> None:
    """Six operators: diagonal, rotated, negative dominant eigenvalue, a small gap, a network's Hessian."""
    __tracebackhide__ = True  # noqa: F841
    title = "Sharpness by power iteration"
    cases = _power_cases()
    with quiet_and_isolated():
        for number, (name, hessian, v0, iters) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = _power_closed_form(hessian, v0 / v0.norm(), iters)
            calls = [0]

            def matvec(v, hessian=hessian):
                calls[0] += 1
                return hessian @ v

            call = f"power_sharpness(matvec, v0 of size {v0.numel()}, iters={iters})"
            try:
                got = power_sharpness(matvec, v0.clone(), iters)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            if calls[0] != iters:
                fail(f"{prefix}: {call} called matvec {calls[0]} times, expected {iters} (one product per "
                     f"iteration; the estimate v^T H v uses the product of that iteration)")
            problem = compare_number(got, expected, "the estimate", rtol=1e-8, atol=1e-10)
            if problem:
                fail(f"{prefix}: {call}: {problem} (exact: v0^T H^(2k-1) v0 / v0^T H^(2k-2) v0 with k = iters)\n"
                     f"  Hint: normalize v0 first; each iteration computes h = H v, the estimate v^T h, then "
                     f"v = h / ||h||; return the estimate of the last iteration (with its sign)")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------- effective rank

def _entropy_rank(sigma):
    p = [s / sum(sigma) for s in sigma if s > 0]
    return math.exp(-sum(q * math.log(q) for q in p))


def _erank_cases():
    u, v = _randn(5, 1, seed=321), _randn(4, 1, seed=322)
    rect = _randn(3, 5, seed=323)
    return (
        ("the 4 x 4 identity: 4 equal singular values", torch.eye(4, dtype=F64), 4.0),
        ("a rank-one 5 x 4 matrix u v^T", u @ v.T, 1.0),
        ("diag(3, 1): p = (3/4, 1/4)", torch.diag(torch.tensor([3.0, 1.0], dtype=F64)), _entropy_rank([3.0, 1.0])),
        ("diag(2, 0, 0): zero singular values add nothing (0 ln 0 = 0)",
         torch.diag(torch.tensor([2.0, 0.0, 0.0], dtype=F64)), 1.0),
        ("diag(-2, 1, 1): singular values are |entries|", torch.diag(torch.tensor([-2.0, 1.0, 1.0], dtype=F64)),
         _entropy_rank([2.0, 1.0, 1.0])),
        ("a random 3 x 5 matrix", rect, _entropy_rank(torch.linalg.svdvals(rect).tolist())),
        ("the same matrix times 1000 (scale does not matter)", 1000.0 * rect,
         _entropy_rank(torch.linalg.svdvals(rect).tolist())),
    )


def check_effective_rank(effective_rank) -> None:
    """Seven matrices: equal, rank one, known spectra, zeros, signs, rectangular, scaled."""
    __tracebackhide__ = True  # noqa: F841
    title = "Effective rank"
    cases = _erank_cases()
    with quiet_and_isolated():
        for number, (name, matrix, expected) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = f"effective_rank(matrix of shape {tuple(matrix.shape)})"
            try:
                got = effective_rank(matrix.clone())
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_number(got, expected, "the effective rank", rtol=1e-9, atol=1e-10)
            if problem:
                fail(f"{prefix}: {call}: {problem}\n  Hint: p_i = sigma_i / sum_j sigma_j (singular values, "
                     f"not their squares), entropy H = -sum p_i ln p_i over the p_i > 0, result exp(H)")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------- SVT

def _svt_cases():
    u = _orthogonal(4, 331)[:, :3]
    v = _orthogonal(3, 332)
    s = torch.tensor([4.0, 2.0, 0.5], dtype=F64)
    x = u @ torch.diag(s) @ v.T
    rotated_u, rotated_v = _orthogonal(5, 333), _orthogonal(5, 334)
    return (
        ("diag(5, 2, 0.5), tau = 1", torch.diag(torch.tensor([5.0, 2.0, 0.5], dtype=F64)), 1.0,
         torch.diag(torch.tensor([4.0, 1.0, 0.0], dtype=F64))),
        ("diag(-3, 1), tau = 0.5: the sign stays with the singular vectors",
         torch.diag(torch.tensor([-3.0, 1.0], dtype=F64)), 0.5, torch.diag(torch.tensor([-2.5, 0.5], dtype=F64))),
        ("tau = 0 leaves the matrix unchanged", x, 0.0, x),
        ("tau above the largest singular value gives 0", x, 4.5, torch.zeros(4, 3, dtype=F64)),
        ("a 4 x 3 matrix U diag(4, 2, 0.5) V^T, tau = 1.5", x, 1.5,
         u @ torch.diag(torch.tensor([2.5, 0.5, 0.0], dtype=F64)) @ v.T),
        ("a 5 x 5 matrix U diag(3, 2, 1, 0.4, 0.1) V^T with random orthogonal U and V, tau = 0.5",
         rotated_u @ torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.4, 0.1], dtype=F64)) @ rotated_v.T, 0.5,
         rotated_u @ torch.diag(torch.tensor([2.5, 1.5, 0.5, 0.0, 0.0], dtype=F64)) @ rotated_v.T),
    )


def _soft_threshold_entries(matrix, tau):
    return torch.sign(matrix) * (matrix.abs() - tau).clamp_min(0)


def check_svt(svt) -> None:
    """Six matrices with known SVD: diagonal, signs, tau = 0, tau too large, rotated rectangular, rotated square
    (on a diagonal matrix thresholding the entries gives the right answer; on a rotated one it does not)."""
    __tracebackhide__ = True  # noqa: F841
    title = "Singular value thresholding"
    cases = _svt_cases()
    with quiet_and_isolated():
        for number, (name, matrix, tau, expected) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = f"svt(matrix of shape {tuple(matrix.shape)}, tau={fmt(tau)})"
            try:
                got = svt(matrix.clone(), tau)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_tensor(got, expected, "the result", atol=1e-10)
            if problem:
                entrywise = (isinstance(got, torch.Tensor) and got.shape == matrix.shape
                             and compare_tensor(got, _soft_threshold_entries(matrix, tau), "", atol=1e-10) is None)
                hint = ("your result is the soft thresholding of the entries, sign(x) max(|x| - tau, 0); that is "
                        "the proximal operator of the l1 norm, and agrees with SVT on diagonal matrices but not in "
                        "general. Threshold the singular values instead: " if entrywise else "")
                fail(f"{prefix}: {call}: {problem}\n  Hint: {hint}take the SVD X = U diag(s) V^T, shrink every "
                     f"singular value to max(s - tau, 0), and multiply back")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------- factor step

def _reference_step(factors, mask, target, lr):
    ws = [w.clone().requires_grad_(True) for w in factors]
    product = ws[0]
    for w in ws[1:]:
        product = w @ product
    loss = 0.5 * ((mask * (product - target)) ** 2).sum()
    grads = torch.autograd.grad(loss, ws)
    return [(w - lr * g).detach() for w, g in zip(ws, grads)]


def _factor_cases():
    half = (_randn(3, 3, seed=341) > 0).to(F64)
    return (
        ("depth 1: W - lr P(W - M)", [_randn(3, 3, seed=342)], half, _randn(3, 3, seed=343), 0.1),
        ("depth 2, scalars w1 = 2, w2 = 3, target 1: steps -lr w2 (w2 w1 - 1), -lr w1 (w2 w1 - 1)",
         [torch.tensor([[2.0]], dtype=F64), torch.tensor([[3.0]], dtype=F64)], torch.ones(1, 1, dtype=F64),
         torch.ones(1, 1, dtype=F64), 0.01),
        ("depth 3, 3 x 3 factors, half the entries observed", [_randn(3, 3, seed=344 + j) for j in range(3)], half,
         _randn(3, 3, seed=347), 0.05),
        ("depth 3, rectangular factors 4 -> 2 -> 5 -> 3", [_randn(2, 4, seed=348), _randn(5, 2, seed=349),
                                                             _randn(3, 5, seed=350)],
         (_randn(3, 4, seed=351) > 0).to(F64), _randn(3, 4, seed=352), 0.02),
        ("depth 4, every entry observed", [_randn(3, 3, seed=353 + j) for j in range(4)], torch.ones(3, 3, dtype=F64),
         _randn(3, 3, seed=357), 0.01),
    )


def check_factor_gradient_step(factor_gradient_step) -> None:
    """Five factorizations (depths 1-4, scalars, rectangular, partial and full masks) against autograd."""
    __tracebackhide__ = True  # noqa: F841
    title = "Factor gradient step"
    cases = _factor_cases()
    with quiet_and_isolated():
        for number, (name, factors, mask, target, lr) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = _reference_step(factors, mask, target, lr)
            given = [w.clone() for w in factors]
            call = (f"factor_gradient_step(factors with shapes {[tuple(w.shape) for w in factors]}, mask, target, "
                    f"lr={fmt(lr)})")
            try:
                with torch.no_grad():
                    got = factor_gradient_step(given, mask.clone(), target.clone(), lr)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            if not isinstance(got, (list, tuple)) or len(got) != len(factors):
                fail(f"{prefix}: {call} returned {type(got).__name__}"
                     f"{f' of length {len(got)}' if isinstance(got, (list, tuple)) else ''}; expected a list of "
                     f"{len(factors)} tensors, first factor first")
            for j, (w, e) in enumerate(zip(got, expected), start=1):
                problem = compare_tensor(w, e, f"the new W_{j}", atol=1e-10)
                if problem:
                    fail(f"{prefix}: {call}: {problem}\n  Hint: G_j = (W_N ... W_(j+1))^T [mask * (W_N ... W_1 - M)] "
                         f"(W_(j-1) ... W_1)^T, every G_j computed from the factors before the step")
    succeed(title, len(cases))
