r"""Newton's method and saddle-free Newton, as ``torch.optim`` optimizers with a closure.

**Newton.** Minimize the local quadratic model
:math:`f(\theta + \Delta) \approx f + g^\top\Delta + \tfrac12 \Delta^\top H \Delta`: its stationary
point is :math:`\Delta = -H^{-1} g`. With damping :math:`\delta` (Levenberg 1944; Marquardt 1963)
and step size :math:`\eta`,

.. math::

    \theta \leftarrow \theta - \eta\,(H + \delta I)^{-1} g
          = \theta - \eta \sum_i \frac{u_i^\top g}{\lambda_i + \delta}\, u_i
    \qquad (H = \textstyle\sum_i \lambda_i u_i u_i^\top).

On a quadratic, one undamped step with :math:`\eta = 1` lands on the critical point, *whatever its
kind*: along an eigenvector with :math:`\lambda_i < 0` Newton walks **uphill**, towards the saddle.
It is attracted to saddles.

**Saddle-free Newton** (Dauphin, Pascanu, Gulcehre, Cho, Ganguli & Bengio, NIPS 2014) replaces
:math:`H` by :math:`|H| = \sum_i |\lambda_i| q_i q_i^\top` (eigenpairs :math:`\lambda_i, q_i` of :math:`H`):

.. math::

    \theta \leftarrow \theta - \eta\,(|H| + \delta I)^{-1} g .

It rescales each direction by its curvature like Newton, but always moves downhill, so negative
curvature repels it. Dauphin et al. derive it from a generalized trust region: minimize the first-order model
:math:`f + g^\top\Delta` subject to a bound on how much the second-order term could change it, with
:math:`|\Delta^\top H\Delta|` bounded by :math:`\Delta^\top |H| \Delta`; the minimizer is a multiple of :math:`-|H|^{-1} g`.
Their practical version works in a **Krylov subspace**: :math:`k` Lanczos vectors
:math:`V \in \mathbb R^{n\times k}` (from Hessian-vector products only, started at :math:`g`),
:math:`\hat H = V^\top H V`, and the step
:math:`-\eta\, V (|\hat H| + \delta I)^{-1} V^\top g`. ``krylov_dim=k`` selects it; with
:math:`k = n` (or an invariant Krylov space, found early) it equals exact saddle-free Newton. We take
this step directly; Dauphin et al. also minimize along the subspace with a line search.

Both take a closure like :class:`torch.optim.LBFGS` (it re-evaluates the model and returns the loss),
flatten all parameters into one vector (the Hessian couples them; one parameter group only), and
cost :math:`O(n^2)` memory and :math:`O(n^3)` time per step for the exact Hessian and its
eigendecomposition (the Krylov variant: :math:`k` Hessian-vector products and :math:`O(nk)` memory).
Second derivatives need the graph of the gradient, so the closure either returns the loss without
calling ``backward`` (the optimizer differentiates it itself), or calls
``loss.backward(create_graph=True)``, the convention of Hessian-based optimizers such as AdaHessian.
``optimizer.create_graph`` is ``True`` for these classes, so a training loop can write
``loss.backward(create_graph=getattr(optimizer, "create_graph", False))`` (as
:func:`course_lib.training.fit` does). A closure that calls a plain ``loss.backward()`` frees the graph:
the step then raises a ``ValueError`` that says so. Directions whose damped curvature is below ``rcond`` times the largest
are left out (a pseudo-inverse), so a singular Hessian does not produce an infinite step.
"""

from __future__ import annotations

import torch

from .hvp import flatten, lanczos, unflatten

__all__ = ["Newton", "SaddleFreeNewton", "newton_direction", "saddle_free_direction", "run_second_order"]


def _spectral_solve(values, vectors, grad, damping, rcond, absolute):
    curvature = (values.abs() if absolute else values) + damping
    scale = curvature.abs().max() if curvature.numel() else curvature.new_zeros(())
    keep = curvature.abs() > rcond * max(float(scale), 1e-300)
    coefficients = torch.where(keep, (vectors.T @ grad) / torch.where(keep, curvature, 1.0), 0.0)
    return -(vectors @ coefficients)


def newton_direction(grad: torch.Tensor, hessian: torch.Tensor, damping: float = 0.0, *,
                     rcond: float = 1e-12) -> torch.Tensor:
    r"""The damped Newton direction :math:`-(H + \delta I)^{-1} g` (pseudo-inverse below ``rcond``)."""
    values, vectors = torch.linalg.eigh((hessian + hessian.T) / 2)
    return _spectral_solve(values, vectors, grad, damping, rcond, absolute=False)


def saddle_free_direction(grad: torch.Tensor, hessian: torch.Tensor, damping: float = 0.0, *,
                          rcond: float = 1e-12) -> torch.Tensor:
    r"""The saddle-free Newton direction :math:`-(|H| + \delta I)^{-1} g`, :math:`|H|` from ``eigh``."""
    values, vectors = torch.linalg.eigh((hessian + hessian.T) / 2)
    return _spectral_solve(values, vectors, grad, damping, rcond, absolute=True)


class _SecondOrder(torch.optim.Optimizer):
    """The shared loop: evaluate the closure, get a differentiable gradient, ask :meth:`direction`, step."""

    absolute = False
    create_graph = True  # training loops: loss.backward(create_graph=optimizer.create_graph)

    def __init__(self, params, lr=1.0, damping=0.0, *, rcond=1e-12, krylov_dim=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= damping:
            raise ValueError(f"Invalid damping value: {damping}")
        if krylov_dim is not None and int(krylov_dim) < 1:
            raise ValueError(f"Invalid krylov_dim value: {krylov_dim}")
        super().__init__(params, dict(lr=lr, damping=damping, rcond=rcond, krylov_dim=krylov_dim))
        if len(self.param_groups) != 1:
            raise ValueError(f"{type(self).__name__} doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _gradient(self, closure):
        with torch.enable_grad():
            loss = closure()
        if all(p.grad is not None and p.grad.requires_grad for p in self._params):
            return loss, [p.grad for p in self._params]  # the closure called backward(create_graph=True)
        name = type(self).__name__
        if not (isinstance(loss, torch.Tensor) and loss.requires_grad):
            raise RuntimeError(f"{name} needs a closure that returns the loss with its graph")
        try:
            with torch.enable_grad():
                grads = torch.autograd.grad(loss, self._params, create_graph=True, allow_unused=True)
        except RuntimeError as error:
            if "second time" not in str(error):
                raise
            raise ValueError(f"{name} needs second derivatives, but the closure's loss.backward() freed the graph: "
                             "call loss.backward(create_graph=True) in the closure, or return the loss "
                             "without calling backward") from None
        return loss, [torch.zeros_like(p) if g is None else g for p, g in zip(self._params, grads)]

    def _hessian(self, g_flat):
        n = g_flat.numel()
        rows = []
        with torch.enable_grad():
            for i in range(n):
                if not g_flat.requires_grad:
                    rows.append(g_flat.new_zeros(n))
                    continue
                row = torch.autograd.grad(g_flat[i], self._params, retain_graph=True, allow_unused=True)
                rows.append(flatten([torch.zeros_like(p) if r is None else r for p, r in zip(self._params, row)]))
        h = torch.stack(rows).detach()
        return (h + h.T) / 2

    def step(self, closure):
        """One step; ``closure`` re-evaluates the model and returns the loss (required). Returns that loss."""
        if closure is None:
            raise ValueError(f"{type(self).__name__} requires a closure that re-evaluates the model")
        group = self.param_groups[0]
        loss, grads = self._gradient(closure)
        g_flat = flatten(grads)
        g = g_flat.detach()
        state = self.state[self._params[0]]
        state["step"] = state.get("step", 0) + 1
        k = group["krylov_dim"]
        if k is None:
            hessian = self._hessian(g_flat)
            values, vectors = torch.linalg.eigh(hessian)
        else:  # Krylov subspace from Hessian-vector products, started at the gradient
            def matvec(v):
                if not g_flat.requires_grad:
                    return torch.zeros_like(v)
                with torch.enable_grad():
                    out = torch.autograd.grad(g_flat, self._params, grad_outputs=v, retain_graph=True,
                                              allow_unused=True)
                return flatten([torch.zeros_like(p) if o is None else o for p, o in zip(self._params, out)]).detach()

            if torch.linalg.vector_norm(g) == 0:
                values, vectors = g.new_zeros(1), torch.zeros_like(g)[:, None]
            else:
                t, q = lanczos(matvec, g, int(k))
                small_values, small_vectors = torch.linalg.eigh(t)
                values, vectors = small_values, q @ small_vectors
        state["eigenvalues"] = values.detach().clone()
        direction = _spectral_solve(values, vectors, g, group["damping"], group["rcond"], self.absolute)
        with torch.no_grad():
            for p, d in zip(self._params, unflatten(direction, self._params)):
                p.add_(d, alpha=group["lr"])
                if p.grad is not None and p.grad.requires_grad:
                    p.grad = p.grad.detach()  # break the parameter <-> gradient reference cycle
        return loss.detach() if isinstance(loss, torch.Tensor) else loss


class Newton(_SecondOrder):
    r"""Damped Newton's method: :math:`\theta \leftarrow \theta - \eta (H + \delta I)^{-1} \nabla f`.

    ``lr`` :math:`\eta` (1: the full Newton step), ``damping`` :math:`\delta \ge 0` (Levenberg-Marquardt),
    ``rcond`` (directions of damped curvature below ``rcond`` times the largest are skipped),
    ``krylov_dim`` (``None``: the exact Hessian; ``k``: Newton restricted to ``k`` Lanczos vectors, i.e.
    a Lanczos/CG-style truncated Newton step). ``step(closure)`` as in :class:`torch.optim.LBFGS`;
    ``state[first param]["eigenvalues"]`` keeps the last Hessian's (or Ritz) eigenvalues. See the module
    docstring.
    """


class SaddleFreeNewton(_SecondOrder):
    r"""Saddle-free Newton (Dauphin et al., NIPS 2014): :math:`\theta \leftarrow \theta - \eta (|H| + \delta I)^{-1}\nabla f`.

    ``krylov_dim=None`` uses the exact Hessian's eigendecomposition; ``krylov_dim=k`` the
    :math:`k`-dimensional Krylov subspace of Lanczos vectors started at the gradient (Dauphin et al.'s
    Algorithm 1), equal to the exact step when :math:`k = n`. Other arguments as :class:`Newton`.
    """

    absolute = True


def run_second_order(method: str, surface, start, steps: int = 20, *, lr: float = 1.0, damping: float = 0.0,
                     krylov_dim=None, escape_radius: float = 1e3):
    """``(points (steps+1, 2), diverged_at or None)``: ``method`` in ``"newton"``, ``"sfn"``, ``"gd"`` on a 2-D surface.

    ``surface`` is a :class:`course_lib.surfaces.Surface` (or any function of a ``(2,)`` point). The
    second-order methods run through the optimizers above with a closure returning ``surface(p)``;
    ``"gd"`` is plain gradient descent with step ``lr``. A run stops at the first non-finite point or
    one farther than ``escape_radius`` from the origin and repeats its last good point.
    """
    start = torch.as_tensor(start, dtype=torch.float64).detach().clone()
    p = start.clone().requires_grad_(True)
    if method == "newton":
        opt = Newton([p], lr=lr, damping=damping, krylov_dim=krylov_dim)
    elif method == "sfn":
        opt = SaddleFreeNewton([p], lr=lr, damping=damping, krylov_dim=krylov_dim)
    elif method == "gd":
        opt = torch.optim.SGD([p], lr=lr)
    else:
        raise ValueError(f"method must be 'newton', 'sfn' or 'gd', got {method!r}")

    def closure():  # Newton and SFN differentiate the returned loss themselves (twice)
        opt.zero_grad()
        loss = surface(p)
        if method == "gd":
            loss.backward()
        return loss

    points = [start.clone()]
    diverged_at = None
    for k in range(1, int(steps) + 1):
        opt.step(closure)
        point = p.detach().clone()
        if not torch.isfinite(point).all() or float(point.abs().max()) > escape_radius:
            diverged_at = k
            points.extend([points[-1]] * (int(steps) + 1 - len(points)))
            break
        points.append(point)
    return torch.stack(points), diverged_at
