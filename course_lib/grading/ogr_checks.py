r"""Checks of notebook 09 (online second order, Duda's OGR): the three pieces of the method.

``check_online_parabola(online_parabola)``: ``online_parabola(thetas, grads, beta)`` returns ``(lam, p)``, two
``(T,)`` tensors: after samples ``0..t``, the exponentially weighted least-squares slope
:math:`\lambda_t = \mathrm{Cov}(g,\theta)/\mathrm{Var}(\theta)` and the fitted minimum
:math:`p_t = m_\theta - m_g/\lambda_t`; entry 0 is ``nan`` (one point fixes no slope). Reference: the weighted
regression computed directly from its weights (:math:`\beta(1-\beta)^{t-k}` for sample :math:`k \ge 1`,
:math:`(1-\beta)^t` for sample 0), not by a recurrence.

``check_hessian_from_moments(hessian_from_moments)``: ``hessian_from_moments(sigma, cov)`` returns the symmetric
:math:`H` with :math:`H\Sigma + \Sigma H = C + C^\top`. Reference: the Kronecker-form linear system
:math:`(I \otimes \Sigma + \Sigma \otimes I)\,\mathrm{vec}(H) = \mathrm{vec}(C + C^\top)` solved by
``torch.linalg.solve``.

``check_ogr_step(ogr_step)``: ``ogr_step(theta, mean_param, mean_grad, hessian, div, cut)`` returns
:math:`\theta - V\mathrm{diag}(1/\max(|\lambda_i|\,\mathrm{div}, \mathrm{cut}))V^\top(m_g + H(\theta - m_\theta))`.
Reference: :func:`course_lib.second_order.ogr.saddle_free_step`, and, on diagonal Hessians, the formula
coordinate by coordinate.
"""

from __future__ import annotations

import math

import torch

from ..second_order.ogr import saddle_free_step
from ._common import compare_tensor, fail, fmt, generator, learner_error, quiet_and_isolated, succeed

F64 = torch.float64

__all__ = ["check_online_parabola", "check_hessian_from_moments", "check_ogr_step",
           "reference_online_parabola", "reference_hessian_from_moments"]


# --------------------------------------------------------------------------- 1-D: the online parabola

def reference_online_parabola(thetas: torch.Tensor, grads: torch.Tensor, beta: float):
    """The weighted least-squares line through ``(theta_k, g_k)``, k <= t, for every t, from explicit weights."""
    T = len(thetas)
    lam = torch.full((T,), math.nan, dtype=F64)
    p = torch.full((T,), math.nan, dtype=F64)
    for t in range(1, T):
        k = torch.arange(t + 1, dtype=F64)
        w = beta * (1 - beta) ** (t - k)
        w[0] = (1 - beta) ** t
        th, g = thetas[:t + 1].to(F64), grads[:t + 1].to(F64)
        mt, mg = (w * th).sum(), (w * g).sum()
        var = (w * (th - mt) ** 2).sum()
        cov = (w * (g - mg) * (th - mt)).sum()
        if var > 0:
            lam[t] = cov / var
            p[t] = mt - mg / lam[t]
    return lam, p


def _parabola_cases():
    gen = generator(90)
    walk = torch.cumsum(0.3 * torch.randn(25, generator=gen, dtype=F64), 0) + 1.0
    noisy_theta = torch.linspace(-1.0, 2.0, 30, dtype=F64)
    noisy_grad = 3.0 * (noisy_theta - 0.5) + 0.2 * torch.randn(30, generator=gen, dtype=F64)
    gd = [2.0]
    for _ in range(11):
        gd.append(gd[-1] - 0.1 * 4.0 * (gd[-1] + 1.0))  # gradient descent on 2 (x + 1)^2
    gd = torch.tensor(gd, dtype=F64)
    cases = [
        ("an exact parabola g = 2 (theta - 1) at a random walk of points, beta = 0.5", walk, 2.0 * (walk - 1.0), 0.5),
        ("negative curvature g = -1.5 (theta + 0.3), beta = 0.4", walk, -1.5 * (walk + 0.3), 0.4),
        ("noisy gradients of slope 3 around p = 0.5, beta = 0.2", noisy_theta, noisy_grad, 0.2),
        ("the points of a gradient-descent run on 2 (x + 1)^2, beta = 0.6", gd, 4.0 * (gd + 1.0), 0.6),
        ("two samples only, beta = 0.5", torch.tensor([0.0, 1.0], dtype=F64), torch.tensor([-2.0, 1.0], dtype=F64),
         0.5),
        ("a non-linear gradient g = theta^3 - theta, beta = 0.5 (the slope of the recent secant)", walk,
         walk ** 3 - walk, 0.5),
    ]
    return cases


def check_online_parabola(online_parabola) -> None:
    """Six sequences: exact parabolas of both signs, noisy and non-linear gradients, a GD run, two samples."""
    __tracebackhide__ = True  # noqa: F841
    title = "Online parabola"
    with quiet_and_isolated():
        cases = _parabola_cases()
        for number, (name, thetas, grads, beta) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = f"online_parabola(thetas, grads, beta={fmt(beta)}) with {len(thetas)} samples"
            exp_lam, exp_p = reference_online_parabola(thetas, grads, beta)
            try:
                result = online_parabola(thetas.clone(), grads.clone(), beta)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                fail(f"{prefix}: {call} should return a pair (lam, p) of tensors of shape ({len(thetas)},), "
                     f"got {type(result).__name__}")
            for what, got, expected in (("lam", result[0], exp_lam), ("p", result[1], exp_p)):
                problem = compare_tensor(got, expected, what, rtol=1e-8)
                if problem:
                    fail(f"{prefix}: {call}: {problem}\n  Hint: start from the first sample (m_theta = theta_0, "
                         f"m_g = g_0, Var = Cov = 0, lam[0] = p[0] = nan); then delta = x - m (old means), "
                         f"m += beta * delta, Var = (1 - beta) * (Var + beta * delta_theta^2), "
                         f"Cov = (1 - beta) * (Cov + beta * delta_g * delta_theta); lam = Cov / Var, "
                         f"p = m_theta - m_g / lam")
    succeed(title, len(cases))


# --------------------------------------------------------------------------- d dimensions: the Hessian solve

def reference_hessian_from_moments(sigma: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """:math:`H\\Sigma + \\Sigma H = C + C^T` as one linear system in vec(H) (Kronecker form)."""
    d = sigma.shape[0]
    eye = torch.eye(d, dtype=F64)
    system = torch.kron(eye, sigma) + torch.kron(sigma, eye)
    vec = torch.linalg.solve(system, (cov + cov.T).reshape(-1))
    h = vec.reshape(d, d)
    return (h + h.T) / 2


def _spd(d, gen, low=0.1, high=3.0):
    q = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64)).Q
    s = low + (high - low) * torch.rand(d, generator=gen, dtype=F64)
    return q @ torch.diag(s) @ q.T


def _sym(d, eigenvalues, gen):
    q = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64)).Q
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T


def _hessian_cases():
    gen = generator(91)
    cases = []
    s1 = torch.tensor([[0.7]], dtype=F64)
    cases.append(("d = 1: lambda = Cov / Var", s1, torch.tensor([[-1.4]], dtype=F64)))
    s2 = _spd(2, gen)
    h2 = _sym(2, [1.0, -1.0], gen)
    cases.append(("d = 2, exact C = H Sigma with eigenvalues +1 and -1 (a turned saddle)", s2, h2 @ s2))
    s3 = torch.diag(torch.tensor([2.0, 0.5, 1e-2], dtype=F64))
    h3 = _sym(3, [4.0, 0.3, -2.0], gen)
    cases.append(("d = 3, diagonal Sigma with a small variance 1e-2", s3, h3 @ s3))
    s4 = _spd(4, gen)
    cases.append(("d = 4, C not of the form H Sigma (noisy data): least-squares symmetric H", s4,
                  torch.randn(4, 4, generator=gen, dtype=F64)))
    s5 = _spd(5, gen, 0.05, 5.0)
    h5 = _sym(5, [10.0, 3.0, 0.0, -0.5, -7.0], gen)
    cases.append(("d = 5, exact, one zero curvature", s5, h5 @ s5))
    return cases


def check_hessian_from_moments(hessian_from_moments) -> None:
    """Five (Sigma, C) pairs, d = 1 to 5, exact and noisy, compared with the Kronecker-form solve."""
    __tracebackhide__ = True  # noqa: F841
    title = "Hessian from moments"
    with quiet_and_isolated():
        cases = _hessian_cases()
        for number, (name, sigma, cov) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            d = sigma.shape[0]
            call = f"hessian_from_moments(sigma, cov) with d = {d}"
            expected = reference_hessian_from_moments(sigma, cov)
            try:
                got = hessian_from_moments(sigma.clone(), cov.clone())
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_tensor(got, expected, "H", rtol=1e-7,
                                     atol=1e-9 * max(1.0, float(expected.abs().max())))
            if problem:
                fail(f"{prefix}: {call}: {problem}\n  Hint: Sigma = U diag(s) U^T (torch.linalg.eigh), "
                     f"R = U^T (C + C^T) U, H'_ij = R_ij / (s_i + s_j), H = U H' U^T")
    succeed(title, len(cases))


# --------------------------------------------------------------------------- the OGR step

def _step_cases():
    gen = generator(92)
    t = lambda *v: torch.tensor(v, dtype=F64)  # noqa: E731
    cases = [
        ("1-D, positive curvature 2, div = 1: jump to the fitted minimum", t(1.0), t(0.5), t(-1.0),
         t(2.0).reshape(1, 1), 1.0, 0.1),
        ("1-D, negative curvature -2: move away from the fitted maximum", t(1.0), t(0.5), t(-1.0),
         t(-2.0).reshape(1, 1), 1.0, 0.1),
        ("1-D, curvature 0.01 below cut = 0.1: the step is g_hat / cut", t(0.3), t(0.0), t(0.2),
         t(0.01).reshape(1, 1), 1.0, 0.1),
        ("2-D, diag(4, -1), div = 2: half a step", t(1.0, 0.5), t(0.8, 0.2), t(0.5, -0.1),
         torch.diag(t(4.0, -1.0)), 2.0, 0.1),
    ]
    h = _sym(2, [1.0, -1.0], gen)
    cases.append(("2-D turned saddle, eigenvalues +1 and -1", t(0.2, -0.4), t(0.1, 0.1), t(0.3, 0.2), h, 1.0, 0.1))
    h = _sym(4, [5.0, 0.05, -0.3, -3.0], gen)
    cases.append(("4-D indefinite with a tiny curvature, div = 2, cut = 0.2", torch.randn(4, generator=gen, dtype=F64),
                  torch.randn(4, generator=gen, dtype=F64), torch.randn(4, generator=gen, dtype=F64), h, 2.0, 0.2))
    return cases


def _diagonal_formula(theta, mean_param, mean_grad, hessian, div, cut):
    lam = torch.diagonal(hessian)
    g_hat = mean_grad + lam * (theta - mean_param)
    return theta - g_hat / torch.clamp(lam.abs() * div, min=cut)


def check_ogr_step(ogr_step) -> None:
    """Six steps: both signs of curvature, the cut, damping, turned and 4-D indefinite Hessians."""
    __tracebackhide__ = True  # noqa: F841
    title = "OGR step"
    with quiet_and_isolated():
        cases = _step_cases()
        for number, (name, theta, m_theta, m_g, hess, div, cut) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = (f"ogr_step(theta={fmt(theta)}, mean_param={fmt(m_theta)}, mean_grad={fmt(m_g)}, hessian, "
                    f"div={fmt(div)}, cut={fmt(cut)}) with eigenvalues {fmt(torch.linalg.eigvalsh(hess))}")
            g_hat = m_g + hess @ (theta - m_theta)
            expected = theta - saddle_free_step(hess, g_hat, div, cut)
            if torch.count_nonzero(hess - torch.diag(torch.diagonal(hess))) == 0:
                expected = _diagonal_formula(theta, m_theta, m_g, hess, div, cut)
            try:
                got = ogr_step(theta.clone(), m_theta.clone(), m_g.clone(), hess.clone(), div, cut)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            problem = compare_tensor(got, expected, "the new theta", reshape=True)
            if problem:
                fail(f"{prefix}: {call}: {problem}\n  Hint: g_hat = mean_grad + H (theta - mean_param); "
                     f"H = V diag(lam) V^T; theta - V diag(1 / max(|lam| * div, cut)) V^T g_hat")
    succeed(title, len(cases))
