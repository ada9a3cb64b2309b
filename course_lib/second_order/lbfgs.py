r"""L-BFGS's two-loop recursion, and conjugate gradient: curvature from gradients and products only.

**L-BFGS** (Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp. 1980; Liu &
Nocedal 1989; Nocedal & Wright, *Numerical Optimization*, Algorithm 7.4) keeps the last :math:`m`
pairs :math:`s_i = \theta_{i+1} - \theta_i`, :math:`y_i = g_{i+1} - g_i` and applies the BFGS inverse
Hessian approximation :math:`H_k` built from them to the gradient without ever forming it:

.. math::

    &z \leftarrow g;\quad \text{for } i = k-1, \dots, k-m:\ \ \rho_i = 1/(y_i^\top s_i),\
       \alpha_i = \rho_i s_i^\top z,\ z \leftarrow z - \alpha_i y_i \\
    &r \leftarrow \gamma_k z, \qquad \gamma_k = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}} \\
    &\text{for } i = k-m, \dots, k-1:\ \ \zeta_i = \rho_i y_i^\top r,\ r \leftarrow r + (\alpha_i - \zeta_i)\, s_i \\
    &\text{direction } d = -r = -H_k g .

:math:`O(mn)` time and memory per step. :func:`lbfgs_direction` is the recursion;
:class:`torch.optim.LBFGS` does the same (its ``old_stps``/``old_dirs`` are the :math:`s`/:math:`y`,
``H_diag`` is :math:`\gamma_k`).

**Conjugate gradient** solves :math:`Hx = b` for symmetric positive definite :math:`H` with one
product :math:`Hp` per iteration (Hestenes & Stiefel 1952); with Hessian-vector products it gives the
Newton direction without the Hessian, the inner loop of Hessian-free optimization (Martens, ICML 2010).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["lbfgs_direction", "conjugate_gradient"]


def lbfgs_direction(grad: torch.Tensor, s_list: Sequence[torch.Tensor], y_list: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""The L-BFGS search direction :math:`-H_k g` by the two-loop recursion; pairs oldest first.

    With no pairs the direction is :math:`-g` (:math:`H_0 = I`). :math:`H_0 = \gamma_k I` with
    :math:`\gamma_k` from the newest pair.
    """
    if len(s_list) != len(y_list):
        raise ValueError(f"s_list and y_list must have the same length, got {len(s_list)} and {len(y_list)}")
    q = grad.clone()
    if not s_list:
        return -q
    rhos = [1.0 / torch.dot(y, s) for s, y in zip(s_list, y_list)]
    alphas = [None] * len(s_list)
    for i in reversed(range(len(s_list))):
        alphas[i] = rhos[i] * torch.dot(s_list[i], q)
        q = q - alphas[i] * y_list[i]
    s, y = s_list[-1], y_list[-1]
    r = (torch.dot(s, y) / torch.dot(y, y)) * q
    for i in range(len(s_list)):
        beta = rhos[i] * torch.dot(y_list[i], r)
        r = r + (alphas[i] - beta) * s_list[i]
    return -r


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, iters: int | None = None,
                       tol: float = 1e-10, x0: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    r"""Solve :math:`Hx = b` by conjugate gradient; returns ``(x, iterations)``.

    :math:`r_0 = b - Hx_0`, :math:`p_0 = r_0`; each iteration
    :math:`\alpha = r^\top r / p^\top H p`, :math:`x \mathrel{+}= \alpha p`, :math:`r \mathrel{-}= \alpha Hp`,
    :math:`p = r + (r_\text{new}^\top r_\text{new} / r^\top r)\, p`, until
    :math:`\|r\| \le` ``tol`` :math:`\|b\|`. In exact arithmetic at most as many iterations as :math:`H` has
    distinct eigenvalues (so at most :math:`n`); in floating point this finite termination is lost and
    the residual decreases at a rate set by the condition number. On non-positive curvature (:math:`p^\top Hp \le 0`) it stops, as
    Hessian-free optimization does.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = torch.dot(r, r)
    limit = b.numel() if iters is None else int(iters)
    b_norm = float(torch.linalg.vector_norm(b))
    for k in range(limit):
        if float(rr) ** 0.5 <= tol * max(b_norm, 1e-300):
            return x, k
        hp = matvec(p)
        curvature = torch.dot(p, hp)
        if float(curvature) <= 0:
            return x, k
        alpha = rr / curvature
        x = x + alpha * p
        r = r - alpha * hp
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, limit
