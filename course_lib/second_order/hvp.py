r"""Curvature without forming the Hessian: Hessian-vector products, Lanczos, spectra.

**Pearlmutter's trick** (Pearlmutter, "Fast exact multiplication by the Hessian", Neural
Computation 1994). For a scalar loss :math:`f(\theta)` and a fixed vector :math:`v`,

.. math::

    H v = \nabla_\theta \big( \nabla_\theta f(\theta)^\top v \big),

so one backward pass that keeps its graph (``create_graph=True``) followed by a second backward
pass through :math:`g^\top v` gives :math:`Hv` exactly, for a few times the cost of one gradient
and without ever storing the :math:`n \times n` matrix :math:`H`.

Built on it:

* :func:`hvp` (double backward, or forward-over-reverse with :mod:`torch.func`);
* :func:`hessian`: the full matrix, one HVP per coordinate (small problems only: :math:`O(n^2)` memory);
* :func:`lanczos`: the Lanczos iteration on any symmetric ``matvec``, with full re-orthogonalization;
* :func:`top_eigenvalues`: the extreme eigenvalues of a loss's Hessian by Lanczos or power iteration;
* :func:`spectral_density`: stochastic Lanczos quadrature (Golub & Meurant; Ghorbani, Krishnan & Xiao,
  "An investigation into neural net optimization via Hessian eigenvalue density", ICML 2019): a
  smoothed estimate of the whole eigenvalue density from a few Lanczos runs.

``params`` is one tensor or a list of tensors (a network's parameters); vectors ``v`` have the
same structure. ``loss_fn(params)`` is called with tensors that require grad: the given ones when
they already do (a network's parameters, so ``loss_fn`` may ignore its argument and use the
model), otherwise detached copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = ["hvp", "hessian", "flatten", "unflatten", "lanczos", "top_eigenvalues", "spectral_density",
           "SpectrumEstimate"]


def _as_list(params) -> tuple[list[torch.Tensor], bool]:
    if isinstance(params, torch.Tensor):
        return [params], True
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) for p in params):
        raise ValueError("params must be a tensor or a non-empty sequence of tensors")
    return params, False


def _prepared(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p if p.requires_grad else p.detach().requires_grad_(True) for p in params]


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One vector from a list of tensors (in order, each flattened)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split ``vector`` into tensors shaped like ``like`` (the inverse of :func:`flatten`)."""
    out, offset = [], 0
    for t in like:
        out.append(vector[offset:offset + t.numel()].view_as(t))
        offset += t.numel()
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries, the parameters {offset}")
    return out


def _gradient(loss_fn: Callable, params, single: bool, create_graph: bool = True):
    with torch.enable_grad():
        loss = loss_fn(params[0] if single else params)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    return loss, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def hvp(loss_fn: Callable, params, v, *, method: str = "double_backward"):
    r"""The Hessian-vector product :math:`\nabla^2 f(\theta)\, v`, exactly, without forming the Hessian.

    ``params``: a tensor or a list of tensors; ``v``: the same structure (a list's tensors may
    also be given as one flat vector). Returns the same structure as ``params``, detached.

    ``method="double_backward"`` (Pearlmutter): :math:`g = \nabla f` with ``create_graph=True``, then
    :math:`\nabla(g^\top v)`. ``method="forward"``: forward-mode differentiation of the gradient,
    :math:`\frac{d}{dt}\nabla f(\theta + t v)\big|_{t=0}` with :func:`torch.func.jvp` over
    :func:`torch.func.grad` ("forward-over-reverse"); it needs ``loss_fn`` to be a pure function of
    its argument (no module parameters hidden inside).
    """
    plist, single = _as_list(params)
    if isinstance(v, torch.Tensor) and not single and v.dim() == 1 and v.numel() == sum(p.numel() for p in plist):
        vlist = unflatten(v, plist)
    else:
        vlist, v_single = _as_list(v)
        if v_single != single or len(vlist) != len(plist):
            raise ValueError("v must have the structure of params (a tensor, or a list of the same length)")
    for p, u in zip(plist, vlist):
        if p.shape != u.shape:
            raise ValueError(f"v's shapes must match the parameters': {tuple(u.shape)} vs {tuple(p.shape)}")
    if method == "double_backward":
        ps = _prepared(plist)
        with torch.enable_grad():
            _, grads = _gradient(loss_fn, ps, single, create_graph=True)
            dot = sum((g * u.to(g.dtype)).sum() for g, u in zip(grads, vlist) if g.requires_grad)
            if isinstance(dot, int):  # no gradient depends on the parameters: a linear function
                return torch.zeros_like(plist[0]) if single else [torch.zeros_like(p) for p in plist]
            out = torch.autograd.grad(dot, ps, allow_unused=True)
        out = [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(plist, out)]
    elif method == "forward":
        from torch.func import grad, jvp

        primals = tuple(p.detach() for p in plist)
        if single:
            _, out = jvp(grad(loss_fn), primals, (vlist[0].to(primals[0].dtype),))
            out = [out.detach()]
        else:
            gradient = grad(lambda *ps: loss_fn(list(ps)), argnums=tuple(range(len(primals))))
            _, out = jvp(gradient, primals, tuple(u.to(p.dtype) for u, p in zip(vlist, primals)))
            out = [o.detach() for o in out]
    else:
        raise ValueError(f"method must be 'double_backward' or 'forward', got {method!r}")
    return out[0] if single else out


def hessian(fn: Callable, x) -> torch.Tensor:
    r"""The full Hessian of the scalar ``fn`` at ``x``, as an ``(n, n)`` matrix over the flattened parameters.

    ``x`` is a tensor or a list of tensors (then the rows and columns follow :func:`flatten`'s
    order). Row :math:`i` is :math:`\nabla (\partial_i f)`: one backward pass per coordinate
    through the gradient's graph, so :math:`n` backward passes and :math:`n^2` numbers: small
    problems only. The result is symmetrized, :math:`(H + H^\top)/2`.
    """
    plist, single = _as_list(x)
    ps = _prepared(plist)
    with torch.enable_grad():
        _, grads = _gradient(fn, ps, single, create_graph=True)
        g = flatten(grads)
        n = g.numel()
        rows = []
        for i in range(n):
            if not g.requires_grad:
                rows.append(g.new_zeros(n))
                continue
            row = torch.autograd.grad(g[i], ps, retain_graph=True, allow_unused=True)
            rows.append(flatten([torch.zeros_like(p) if r is None else r for p, r in zip(ps, row)]))
    h = torch.stack(rows).detach()
    return (h + h.T) / 2


def lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, steps: int, *,
            tol: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``steps`` Lanczos iterations on a symmetric operator: ``(T, Q)`` with :math:`Q^\top A Q = T` tridiagonal.

    Starting from :math:`q_1 = v_0/\|v_0\|`, each step multiplies once by :math:`A`:
    :math:`w = A q_j - \beta_{j-1} q_{j-1}`, :math:`\alpha_j = q_j^\top w`,
    :math:`w \leftarrow w - \alpha_j q_j`, re-orthogonalized against every earlier :math:`q`
    (in floating point the plain three-term recurrence loses orthogonality), then
    :math:`\beta_j = \|w\|`, :math:`q_{j+1} = w/\beta_j`. ``Q`` is ``(n, m)`` with orthonormal
    columns spanning the Krylov space :math:`\{v_0, Av_0, \dots, A^{m-1}v_0\}`; ``m < steps`` when
    that space is invariant (:math:`\beta_j` below ``tol`` times the scale): then the eigenvalues
    of ``T`` are eigenvalues of ``A`` exactly. The eigenvalues of ``T`` (Ritz values) approximate
    the extreme eigenvalues of ``A`` first (Lanczos 1950; Golub & Van Loan, ch. 10).
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    norm = torch.linalg.vector_norm(v0)
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("the start vector must be finite and non-zero")
    n = v0.numel()
    q = v0.reshape(-1) / norm
    qs, alphas, betas = [q], [], []
    scale = 0.0
    for j in range(min(steps, n)):
        w = matvec(qs[j]).reshape(-1)
        alpha = torch.dot(qs[j], w)
        alphas.append(alpha)
        basis = torch.stack(qs, dim=1)
        for _ in range(2):  # classical Gram-Schmidt twice: orthogonal to working precision
            w = w - basis @ (basis.T @ w)
        beta = torch.linalg.vector_norm(w)
        scale = max(scale, abs(float(alpha)), float(beta))
        if j == min(steps, n) - 1 or float(beta) <= tol * max(scale, 1e-300):
            break
        betas.append(beta)
        qs.append(w / beta)
    m = len(alphas)
    t = torch.diag(torch.stack(alphas))
    if m > 1:
        off = torch.stack(betas[:m - 1])
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t, torch.stack(qs[:m], dim=1)


def _flat_hvp(loss_fn: Callable, params, single: bool):
    """A function ``v -> H v`` on flat vectors, reusing one gradient graph for every product."""
    plist = params
    ps = _prepared(plist)
    _, grads = _gradient(loss_fn, ps, single, create_graph=True)
    g = flatten(grads)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        if not g.requires_grad:
            return torch.zeros_like(v)
        with torch.enable_grad():
            out = torch.autograd.grad(g, ps, grad_outputs=v.to(g.dtype), retain_graph=True, allow_unused=True)
        return flatten([torch.zeros_like(p) if o is None else o for p, o in zip(ps, out)]).detach()

    return matvec, g.detach()


def top_eigenvalues(loss_fn: Callable, params, k: int = 1, *, method: str = "lanczos", iters: int = 30,
                    which: str = "largest", generator: torch.Generator | None = None,
                    return_vectors: bool = False):
    r"""The ``k`` extreme eigenvalues of the Hessian of ``loss_fn`` at ``params``, from Hessian-vector products.

    ``method="lanczos"`` (default): ``iters`` Lanczos steps (:func:`lanczos`) from a random start;
    the Ritz values of ``T`` converge to the extreme eigenvalues first. ``which``: ``"largest"``
    (algebraically largest, descending), ``"smallest"`` (ascending) or ``"magnitude"``.
    ``method="power"``: power iteration with deflation (each new vector kept orthogonal to the ones
    found), ``iters`` products per eigenvalue; it finds the eigenvalues of largest *magnitude*
    (``which`` is ignored), the way PyHessian's ``eigenvalues`` does (Yao et al. 2020).
    Returns a float64-or-input-dtype tensor ``(k,)`` (and the ``(n, k)`` eigenvectors with
    ``return_vectors=True``). With ``iters >= n`` Lanczos is exact up to round-off.
    """
    plist, single = _as_list(params)
    matvec, g = _flat_hvp(loss_fn, plist, single)
    n = g.numel()
    k = int(k)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of parameters {n}, got {k}")
    v0 = torch.randn(n, generator=generator, dtype=g.dtype, device="cpu" if generator is not None else g.device)
    v0 = v0.to(g.device)
    if method == "lanczos":
        t, q = lanczos(matvec, v0, max(int(iters), k))
        values, vectors = torch.linalg.eigh(t)
        if which == "largest":
            order = torch.argsort(values, descending=True)
        elif which == "smallest":
            order = torch.argsort(values)
        elif which == "magnitude":
            order = torch.argsort(values.abs(), descending=True)
        else:
            raise ValueError(f"which must be 'largest', 'smallest' or 'magnitude', got {which!r}")
        order = order[:k]
        values, vectors = values[order], q @ vectors[:, order]
    elif method == "power":
        found_values, found = [], []
        for i in range(k):
            v = torch.randn(n, generator=generator, dtype=g.dtype, device="cpu" if generator is not None
                            else g.device).to(g.device)
            value = v.new_zeros(())
            for _ in range(int(iters)):
                for u in found:
                    v = v - torch.dot(u, v) * u
                v = v / torch.linalg.vector_norm(v).clamp_min(1e-300)
                hv = matvec(v)
                value = torch.dot(v, hv)
                v = hv
            for u in found:
                v = v - torch.dot(u, v) * u
            v = v / torch.linalg.vector_norm(v).clamp_min(1e-300)
            found.append(v)
            found_values.append(torch.dot(v, matvec(v)))
        values, vectors = torch.stack(found_values), torch.stack(found, dim=1)
    else:
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    return (values, vectors) if return_vectors else values


@dataclass
class SpectrumEstimate:
    """Stochastic Lanczos quadrature: ``nodes`` ``(runs, m)`` and ``weights`` (each run's sum to one); the smoothed
    ``density`` on ``grid`` integrates to about one."""

    nodes: torch.Tensor
    weights: torch.Tensor
    grid: torch.Tensor
    density: torch.Tensor


def spectral_density(loss_fn: Callable, params, *, iters: int = 30, runs: int = 4, sigma: float | None = None,
                     grid_size: int = 400, generator: torch.Generator | None = None) -> SpectrumEstimate:
    r"""A smoothed estimate of the Hessian's eigenvalue density, by stochastic Lanczos quadrature.

    For a random unit vector :math:`v`, :math:`v^\top \phi(H) v = \sum_i (u_i^\top v)^2 \phi(\lambda_i)`
    is a sample of :math:`\frac1n \operatorname{tr} \phi(H)` (in expectation over :math:`v`). ``iters``
    Lanczos steps from :math:`v` give :math:`T = S \Theta S^\top`, and the Gauss quadrature
    :math:`\sum_j \tau_j \phi(\theta_j)`, nodes :math:`\theta_j` (Ritz values) and weights
    :math:`\tau_j = S_{1j}^2`, is exact for polynomials :math:`\phi` of degree :math:`< 2\cdot` ``iters``
    (Golub & Meurant 2009). With :math:`\phi` a Gaussian of width ``sigma`` around each point of the
    grid, averaged over ``runs`` start vectors, this is the density of Ghorbani, Krishnan & Xiao
    (ICML 2019) and PyHessian (Yao et al. 2020). ``sigma`` defaults to 1/100 of the node range.
    """
    plist, single = _as_list(params)
    matvec, g = _flat_hvp(loss_fn, plist, single)
    n = g.numel()
    all_nodes, all_weights = [], []
    for _ in range(int(runs)):
        v = torch.randn(n, generator=generator, dtype=g.dtype,
                        device="cpu" if generator is not None else g.device).to(g.device)
        t, _ = lanczos(matvec, v, iters)
        theta, s = torch.linalg.eigh(t)
        m = theta.numel()
        pad = int(iters) - m  # an early stop (invariant subspace): pad with zero-weight nodes
        all_nodes.append(torch.cat([theta, theta.new_full((pad,), float(theta[-1]))]))
        all_weights.append(torch.cat([s[0] ** 2, s.new_zeros(pad)]))
    nodes, weights = torch.stack(all_nodes), torch.stack(all_weights)
    low, high = float(nodes.min()), float(nodes.max())
    width = max(high - low, 1e-12)
    sigma = width / 100 if sigma is None else float(sigma)
    grid = torch.linspace(low - 5 * sigma - width * 0.02, high + 5 * sigma + width * 0.02, int(grid_size),
                          dtype=nodes.dtype, device=nodes.device)
    gauss = torch.exp(-0.5 * ((grid[:, None, None] - nodes[None]) / sigma) ** 2) / (sigma * (2 * torch.pi) ** 0.5)
    density = (gauss * weights[None]).sum(-1).mean(-1)
    return SpectrumEstimate(nodes, weights, grid, density)
