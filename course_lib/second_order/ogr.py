r"""OGR: online gradient regression (J. Duda), a second-order method that only ever sees gradients.

Near a minimum the gradient is linear in the parameters, :math:`g(\theta) \approx H(\theta - p)`. Duda's idea
is to *fit* that line to the recent gradients by least squares with exponentially weakening weights, and to
read the curvature :math:`H` and the minimum :math:`p` off the fit. No Hessian-vector product, no second
backward pass: only the ``(theta, g)`` pairs an optimizer sees anyway.

**The statistics** (``beta``: the weight of the newest sample, Duda uses 0.4-0.6). With
:math:`\Delta_\theta = \theta_t - m_\theta`, :math:`\Delta_g = g_t - m_g` taken against the *previous* means,

.. math::

    m_\theta &\leftarrow m_\theta + \beta\,\Delta_\theta, \qquad m_g \leftarrow m_g + \beta\,\Delta_g \\
    \Sigma &\leftarrow (1-\beta)\,(\Sigma + \beta\,\Delta_\theta\Delta_\theta^\top)
           = (1-\beta)\Sigma + \beta\,(\theta_t - m_\theta^{\rm new})(\theta_t - m_\theta^{\rm old})^\top \\
    C &\leftarrow (1-\beta)\,(C + \beta\,\Delta_g\Delta_\theta^\top)
       \qquad (C \approx \mathrm{Cov}(g, \theta),\ \Sigma = \mathrm{Cov}(\theta, \theta))

This is the *exact* exponentially weighted mean and covariance (weights :math:`\beta(1-\beta)^{t-k}`, the
oldest sample the rest, summing to one; Finch, "Incremental calculation of weighted mean and variance", 2009),
started from the first sample (:math:`m_\theta = \theta_0`, :math:`\Sigma = C = 0`). So if the gradients
really are linear, :math:`g = H(\theta - p)`, then :math:`C = H\Sigma` holds to rounding error at every step:
no start-up bias. (An EMA of :math:`(g - m_g)(\theta - m_\theta)^\top` with *both* means already updated,
:math:`(1-\beta)C + \beta(1-\beta)^2\Delta_g\Delta_\theta^\top`, is the same matrix times :math:`1-\beta`, as is
one with both means old; every ratio below is unchanged. Starting the averages at zero instead is what
creates a start-up bias.)

**1-D (per coordinate, ``rank=None``)**, Duda's "online parabola" (arXiv:1907.07063):

.. math::

    \lambda = \frac{\mathrm{Cov}(g, \theta)}{\mathrm{Var}(\theta)}, \qquad
    p = m_\theta - \frac{m_g}{\lambda}, \qquad
    \frac{\sigma_\theta}{\sigma_g} = \frac{1}{|\lambda|} \text{ (exactly, on a parabola: the Newton step size)}

**d dimensions**: :math:`H` symmetric with :math:`C = H\Sigma`; symmetrizing, :math:`H` solves the Lyapunov
equation :math:`H\Sigma + \Sigma H = C + C^\top`. In the eigenbasis of :math:`\Sigma = U\,\mathrm{diag}(s)\,U^\top`
it is solved entry by entry: :math:`H'_{ij} = (U^\top (C + C^\top) U)_{ij} / (s_i + s_j)`, :math:`H = U H' U^\top`.

**The step** (saddle-free and damped). With :math:`H = V\,\mathrm{diag}(\lambda)\,V^\top` and the regression's
gradient at the current point, :math:`\hat g = m_g + H(\theta - m_\theta)` (a momentum of the gradient,
carried to where we are; on a quadratic it *is* the gradient),

.. math::

    \theta \leftarrow \theta
        - V\,\mathrm{diag}\!\left(\frac{1}{\max(|\lambda_i|\cdot\mathrm{div},\ \mathrm{cut})}\right) V^\top \hat g

With ``div = 1`` and :math:`\lambda_i > 0` this jumps to the regression's minimum :math:`p`; where
:math:`\lambda_i < 0` it moves *away* from the fitted maximum, as far again as it is (saddle-free Newton,
Dauphin et al. 2014). ``cut`` bounds the step where the curvature is nearly zero. Where the curvature is not
known yet (the first step, directions in which the parameters have not moved), the step is plain gradient
descent with ``lr``.

**Subspace mode (``rank=d``)**: all parameters of a group are one vector of length :math:`D`. An orthonormal
basis :math:`B` (:math:`d \times D`) of "statistically relevant directions" is filled with the first
gradients (Gram-Schmidt) and then rotated toward each new normalized gradient :math:`\hat u = g/\|g\|` by an Oja
step, :math:`B \leftarrow \mathrm{orth}(B + \Gamma\,(B\hat u)\,\hat u^\top)` (``gamma`` :math:`=\Gamma`), so
it tracks the top principal directions of recent gradients. :math:`\mathrm{orth}` is Gram-Schmidt done through
the Cholesky factor :math:`L` of the :math:`d \times d` Gram matrix :math:`I + (2\Gamma + \Gamma^2)aa^\top`
(:math:`a = B\hat u`), which also gives the rotation :math:`P = L^{-1}(I + \Gamma aa^\top)` of the coordinates;
a QR every 64 steps washes out the rounding drift. The means stay
:math:`D`-vectors; :math:`\Sigma` and :math:`C` are kept as :math:`d \times d` matrices in the basis'
coordinates and carried over when the basis turns (:math:`\Sigma \leftarrow P\Sigma P^\top`,
:math:`P = B_{\rm new}B_{\rm old}^\top`).
The Hessian is modelled in the subspace; outside it (the complement) runs SGD with ``momentum`` and ``lr``.
With ``rank >= D`` the basis is the identity and this is the full d-dimensional method.

**Diagonalization.** Duda keeps the small subspace Hessian diagonal online with one QR-iteration step per
iteration. Here the :math:`d \times d` symmetric matrices are diagonalized exactly with ``torch.linalg.eigh``
(:math:`O(d^3)`, negligible next to the :math:`O(dD)` projections for the small :math:`d` this method is for).
Why: unshifted QR iteration converges at the rate :math:`|\lambda_{i+1}/\lambda_i|` and does *not separate*
eigenvalues of equal magnitude and opposite sign (a saddle :math:`\mathrm{diag}(1, -1)` turned by any angle is a
fixed point of it), which is exactly the case a saddle-free method must get right.

**Safeguards.** A move smaller than :math:`\sqrt{\epsilon_{\rm mach}}\,|\theta|` (per coordinate; in norm in
subspace mode) updates the means but not :math:`\Sigma` and :math:`C`: its displacement is mostly rounding
error, and on linear gradients skipping a sample leaves :math:`C = H\Sigma` exact. Eigen-directions of
:math:`\Sigma` below :math:`\epsilon_{\rm mach}\,\mathrm{tr}\,\Sigma` count as unexplored (gradient step with
``lr``). Note that the regression weights a sample by its squared displacement: after one big jump the estimate
stays close to the secant across it while later, smaller steps are taken, so convergence near a minimum is
linear rather than Newton-quadratic.

Cost per step: :math:`O(D)` in diagonal mode; :math:`O(dD + d^2 D + d^3)` in subspace mode (projections, the
basis turn as one :math:`d \times d` by :math:`d \times D` product, two small ``eigh``).

References: J. Duda, "Improving SGD convergence by online linear regression of gradients in multiple
statistically relevant directions", arXiv:1901.11457 (2019); J. Duda, "SGD momentum optimizer with step
estimation by online parabola model", arXiv:1907.07063 (2019); Y. Dauphin et al., "Identifying
and attacking the saddle point problem in high-dimensional non-convex optimization", NeurIPS 2014;
E. Oja, "Simplified neuron model as a principal component analyzer", J. Math. Biology 15, 1982.
"""

from __future__ import annotations

import torch

from ..optim._base import check, new_step_counter

__all__ = ["OGR", "ewm_update", "online_parabola", "curvature_1d", "hessian_from_moments", "saddle_free_step",
           "principal_cosines"]


# --------------------------------------------------------------------------- the pieces (also used by the checks)

def ewm_update(mean_param, mean_grad, param, grad, beta):
    r"""One exact exponentially weighted update; returns ``(delta_param, delta_grad)`` against the old means.

    Updates ``mean_param`` and ``mean_grad`` in place (:math:`m \leftarrow m + \beta\Delta`). The caller then
    updates its covariances with :math:`(1-\beta)(\cdot + \beta\,\Delta\Delta^\top)`.
    """
    delta_param, delta_grad = param - mean_param, grad - mean_grad
    mean_param.add_(delta_param, alpha=beta)
    mean_grad.add_(delta_grad, alpha=beta)
    return delta_param, delta_grad


def online_parabola(thetas, grads, beta=0.5):
    r"""The 1-D regression along a sequence: ``(lam, p)``, each ``(T,)``; entry ``t`` uses samples ``0..t``.

    :math:`\lambda_t = \mathrm{Cov}(g,\theta)/\mathrm{Var}(\theta)`, :math:`p_t = m_\theta - m_g/\lambda_t`, by the
    exact recurrence of the module docstring; entries where the variance is still zero are ``nan``.
    """
    thetas = torch.as_tensor(thetas)
    grads = torch.as_tensor(grads, dtype=thetas.dtype)
    lam = torch.full_like(thetas, float("nan"))
    p = torch.full_like(thetas, float("nan"))
    m_theta, m_grad = thetas[0].clone(), grads[0].clone()
    var, cov = torch.zeros_like(m_theta), torch.zeros_like(m_theta)
    for t in range(1, len(thetas)):
        d_theta, d_grad = ewm_update(m_theta, m_grad, thetas[t], grads[t], beta)
        var = (1 - beta) * (var + beta * d_theta * d_theta)
        cov = (1 - beta) * (cov + beta * d_grad * d_theta)
        if var > 0:
            lam[t] = cov / var
            p[t] = m_theta - m_grad / lam[t]
    return lam, p


def curvature_1d(cov_grad_param, var_param, floor=0.0):
    r""":math:`\lambda = \mathrm{Cov}(g,\theta)/\mathrm{Var}(\theta)` elementwise; ``nan`` where ``var <= floor``."""
    known = var_param > floor
    return torch.where(known, cov_grad_param / torch.where(known, var_param, torch.ones_like(var_param)),
                       torch.full_like(var_param, float("nan")))


def hessian_from_moments(sigma, cov, floor=0.0):
    r"""Solve :math:`H\Sigma + \Sigma H = C + C^\top` in the eigenbasis of :math:`\Sigma` (symmetric ``(d, d)``).

    Returns ``(H, s, U, H_rot)``: the estimate :math:`H = U H' U^\top`, the eigenvalues ``s`` and eigenvectors
    ``U`` of :math:`\Sigma`, and :math:`H'` in that eigenbasis. Entries with :math:`s_i + s_j \le` ``floor``
    (directions the parameters have not explored) are set to 0: the data say nothing about them.
    """
    s, u = torch.linalg.eigh((sigma + sigma.mT) / 2)
    rhs = u.mT @ (cov + cov.mT) @ u
    denom = s[:, None] + s[None, :]
    ok = denom > floor
    h_rot = torch.where(ok, rhs / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    return u @ h_rot @ u.mT, s, u, h_rot


def saddle_free_step(hessian, grad, div=1.0, cut=0.1):
    r"""The saddle-free, damped direction :math:`V\,\mathrm{diag}(1/\max(|\lambda_i|\,\mathrm{div},
    \mathrm{cut}))\,V^\top g` for a symmetric ``hessian`` :math:`= V\,\mathrm{diag}(\lambda)\,V^\top`.

    The new point is ``theta - saddle_free_step(hessian, g_hat, div, cut)``.
    """
    lam, vec = torch.linalg.eigh((hessian + hessian.mT) / 2)
    scale = 1.0 / torch.clamp(lam.abs() * div, min=cut)
    return vec @ (scale * (vec.mT @ grad))


def _moved(delta, param):
    """Whether a move is well above the rounding error of the parameters (else it carries no slope)."""
    return delta.abs() > torch.finfo(param.dtype).eps ** 0.5 * param.abs()


def principal_cosines(basis_a, basis_b):
    r"""Cosines of the principal angles between the row spaces of two ``(k, D)`` matrices (descending)."""
    qa = torch.linalg.qr(basis_a.mT).Q
    qb = torch.linalg.qr(basis_b.mT).Q
    return torch.linalg.svdvals(qa.mT @ qb).clamp(max=1.0)


# --------------------------------------------------------------------------- the optimizer

class OGR(torch.optim.Optimizer):
    r"""Online gradient regression (Duda, arXiv:1901.11457 and 1907.07063): see the module docstring.

    Arguments:
        lr: gradient-descent step size where the curvature is unknown (the first step, unexplored directions,
            the complement of the subspace). Default 1e-2.
        beta: weight of the newest sample in the regression's averages (0 < beta <= 1). Default 0.5.
        div: damping: the curvature is multiplied by ``div`` before inverting (``div = 2``: half a Newton
            step). Default 1.
        cut: the smallest curvature used, so the step along a direction is at most ``g / cut``. Default 0.1.
        rank: ``None`` (default): diagonal mode, each coordinate its own 1-D parabola. An integer ``d``: subspace
            mode, all parameters of a group one vector, the Hessian modelled in a ``d``-dimensional subspace.
        gamma: rate of the Oja rotation of the subspace toward new gradients (subspace mode). Default 0.1.
        momentum: heavy-ball momentum of the SGD on the subspace's complement. Default 0.9.
        maximize: maximize the objective instead.

    State: per parameter (diagonal mode) ``step``, ``mean_param``, ``mean_grad``, ``var_param``,
    ``cov_grad_param``; per group (subspace mode, kept on the group's first parameter) ``step``, ``basis``
    (d x D), ``mean_param``, ``mean_grad`` (D), ``sigma``, ``cov`` (d x d), ``momentum_buffer`` (D),
    and ``hessian`` (the last d x d estimate, for plots).
    ``step()`` needs no closure (a closure, when given, is called once to compute the gradient).
    """

    def __init__(self, params, lr=1e-2, beta=0.5, div=1.0, cut=0.1, rank=None, gamma=0.1, momentum=0.9,
                 *, maximize=False):
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 < beta <= 1.0, f"Invalid beta value: {beta}")
        check(0.0 < div, f"Invalid div value: {div}")
        check(0.0 < cut, f"Invalid cut value: {cut}")
        check(rank is None or (isinstance(rank, int) and rank >= 1), f"Invalid rank value: {rank}")
        check(0.0 <= gamma, f"Invalid gamma value: {gamma}")
        check(0.0 <= momentum < 1.0, f"Invalid momentum value: {momentum}")
        defaults = dict(lr=lr, beta=beta, div=div, cut=cut, rank=rank, gamma=gamma, momentum=momentum,
                        maximize=maximize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One OGR step; with a ``closure`` (zeroes grads, computes the loss, backward), return its loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("OGR does not support sparse gradients")
            if any(p.is_complex() for p in params):
                raise RuntimeError("OGR does not support complex parameters")
            if group["rank"] is None:
                for p in params:
                    self._diagonal_update(p, p.grad, group)
            else:
                self._subspace_update(params, group)
        return loss

    # ----------------------------------------------------------------------- 1-D per coordinate
    def _diagonal_update(self, param, grad, group):
        grad = -grad if group["maximize"] else grad
        state = self.state[param]
        beta = group["beta"]
        if len(state) == 0:
            state["step"] = new_step_counter()
            state["mean_param"] = param.detach().clone()
            state["mean_grad"] = grad.detach().clone()
            state["var_param"] = torch.zeros_like(param)
            state["cov_grad_param"] = torch.zeros_like(param)
        else:
            d_param, d_grad = ewm_update(state["mean_param"], state["mean_grad"], param, grad, beta)
            moved = _moved(d_param, param)  # moves at the rounding level leave Var and Cov as they are
            state["var_param"].copy_(torch.where(moved, (1 - beta) * (state["var_param"] + beta * d_param * d_param),
                                                 state["var_param"]))
            state["cov_grad_param"].copy_(torch.where(
                moved, (1 - beta) * (state["cov_grad_param"] + beta * d_grad * d_param), state["cov_grad_param"]))
        state["step"] += 1
        lam = curvature_1d(state["cov_grad_param"], state["var_param"])
        known = ~torch.isnan(lam)
        lam0 = torch.where(known, lam, torch.zeros_like(lam))
        g_hat = torch.where(known, state["mean_grad"] + lam0 * (param - state["mean_param"]), grad)
        scale = torch.where(known, 1.0 / torch.clamp(lam0.abs() * group["div"], min=group["cut"]),
                            torch.full_like(lam0, group["lr"]))
        param.sub_(scale * g_hat)

    # ----------------------------------------------------------------------- d-dimensional subspace
    def _subspace_update(self, params, group):
        theta = torch.cat([p.detach().reshape(-1) for p in params])
        grad = torch.cat([p.grad.reshape(-1) for p in params])
        if group["maximize"]:
            grad = -grad
        D, d = theta.numel(), min(group["rank"], theta.numel())
        full = d == D
        beta = group["beta"]
        state = self.state[params[0]]
        if len(state) > 0 and state["mean_param"].numel() != D:
            raise RuntimeError(f"OGR subspace mode: the parameters with gradients in this group changed size "
                               f"(D was {state['mean_param'].numel()}, now {D}); every parameter of a group in "
                               f"subspace mode needs a gradient at every step")
        if len(state) == 0:
            state["step"] = new_step_counter()
            state["basis"] = (torch.eye(D, dtype=theta.dtype, device=theta.device) if full
                              else theta.new_zeros(0, D))
            state["mean_param"] = theta.clone()
            state["mean_grad"] = grad.clone()
            state["sigma"] = theta.new_zeros(d, d)
            state["cov"] = theta.new_zeros(d, d)
            state["momentum_buffer"] = torch.zeros_like(theta)
            state["hessian"] = theta.new_zeros(d, d)
        state["step"] += 1
        basis = state["basis"]
        if not full:
            basis = self._turn_basis(state, basis, grad, group["gamma"], d)
        k = basis.shape[0]
        sigma, cov = state["sigma"][:k, :k], state["cov"][:k, :k]
        if state["step"] > 1:
            d_param, d_grad = ewm_update(state["mean_param"], state["mean_grad"], theta, grad, beta)
            if _moved(torch.linalg.vector_norm(d_param), torch.linalg.vector_norm(theta)):
                a, b = basis @ d_param, basis @ d_grad
                sigma.add_(beta * torch.outer(a, a)).mul_(1 - beta)
                cov.add_(beta * torch.outer(b, a)).mul_(1 - beta)
        # the subspace: saddle-free Newton where the parameters have moved, SGD where they have not
        coords_grad = basis @ grad
        step_coords = torch.zeros_like(coords_grad)
        if k > 0:
            # directions of Sigma below eigh's own error (eps * s_max) are not resolved: unknown curvature
            resolution = torch.finfo(theta.dtype).eps * float(sigma.diagonal().sum()) + torch.finfo(theta.dtype).tiny
            hess, s, u, h_rot = hessian_from_moments(sigma, cov, 2 * resolution)
            state["hessian"][:k, :k] = hess
            known = s > resolution
            z_grad = u.mT @ coords_grad  # in the eigenbasis of Sigma
            z_step = group["lr"] * z_grad
            if known.any():
                z_hat = u.mT @ (basis @ state["mean_grad"]) + h_rot @ (u.mT @ (basis @ (theta - state["mean_param"])))
                kk = known.nonzero().squeeze(1)
                z_step[kk] = saddle_free_step(h_rot[kk][:, kk], z_hat[kk], group["div"], group["cut"])
            step_coords = u @ z_step
        # the complement: SGD with heavy-ball momentum
        outside = grad - basis.mT @ coords_grad
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(outside)
        if k > 0:
            buf.sub_(basis.mT @ (basis @ buf))
        step = basis.mT @ step_coords + group["lr"] * buf
        offset = 0
        for p in params:
            n = p.numel()
            p.sub_(step[offset:offset + n].view_as(p))
            offset += n

    @staticmethod
    def _turn_basis(state, basis, grad, gamma, d):
        """Fill the basis with the first gradients, then rotate it toward new ones (Oja); carry the moments."""
        norm = torch.linalg.vector_norm(grad)
        if not torch.isfinite(norm) or norm == 0:
            return basis
        u = grad / norm
        k = basis.shape[0]
        if k < d:
            r = u - basis.mT @ (basis @ u)
            rn = torch.linalg.vector_norm(r)
            if rn > 1e-6:
                basis = torch.cat([basis, (r / rn)[None]], 0)
                state["basis"] = basis
            return basis
        # orth(M) for M = B + gamma a u^T (a = B u), by Cholesky: B B^T = I and |u| = 1 give
        # G = M M^T = I + (2 gamma + gamma^2) a a^T = L L^T, and L^{-1} M is Gram-Schmidt of M's rows
        a = basis @ u
        eye = torch.eye(d, dtype=basis.dtype, device=basis.device)
        chol = torch.linalg.cholesky(eye + (2 * gamma + gamma ** 2) * torch.outer(a, a))
        turn = torch.linalg.solve_triangular(chol, eye + gamma * torch.outer(a, a), upper=False)  # P = B_new B^T
        new = turn @ basis + torch.outer(torch.linalg.solve_triangular(chol, gamma * a[:, None], upper=False)[:, 0],
                                         u - basis.mT @ a)
        if int(state["step"]) % 64 == 0:  # wash out the rounding drift of B B^T = I now and then
            q = torch.linalg.qr(new.mT).Q.mT
            new = q * torch.sign(torch.sum(q * new, dim=1, keepdim=True))
        state["sigma"].copy_(turn @ state["sigma"] @ turn.mT)
        state["cov"].copy_(turn @ state["cov"] @ turn.mT)
        state["basis"] = new
        return new
