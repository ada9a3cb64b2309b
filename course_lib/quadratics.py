r"""Quadratic problems: the laboratory in which gradient descent is solved exactly.

A quadratic :math:`f(x) = \tfrac12 x^\top A x - b^\top x` with symmetric positive
definite :math:`A` (eigenvalues :math:`\mu = \lambda_1 \le \dots \le \lambda_n = L`)
has its minimizer at :math:`x^\star = A^{-1} b`, and gradient descent with step
size :math:`\eta` moves the error :math:`e_k = x_k - x^\star` by a fixed matrix,

.. math::

    e_{k+1} = (I - \eta A)\, e_k, \qquad x_k = x^\star + (I - \eta A)^k (x_0 - x^\star).

In the eigenbasis of :math:`A` each coordinate of the error is multiplied by
:math:`1 - \eta\lambda_i` at every step, so the error shrinks at the rate
:math:`\rho(\eta) = \max_i |1 - \eta\lambda_i|`: it converges iff
:math:`0 < \eta < 2/L`, and the best step :math:`\eta^\star = 2/(\mu + L)` gives
:math:`\rho^\star = (\kappa - 1)/(\kappa + 1)` with :math:`\kappa = L/\mu`
(Nesterov, *Introductory Lectures on Convex Optimization*, 2004, section 2.1).

Least squares is a quadratic too: :math:`\tfrac{1}{2n}\|Xw - y\|^2` has
:math:`A = X^\top X/n` and :math:`b = X^\top y/n`. :func:`minibatch_sgd` runs
(mini-batch) stochastic gradient descent on it.

Everything here is the library's reference for the exercises of notebook 01.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = [
    "Quadratic", "make_quadratic", "ill_conditioned_quadratic", "rotation_2d", "minimizer",
    "gradient_descent", "gd_iterates", "gd_iterates_closed_form",
    "convergence_rate", "best_learning_rate", "optimal_rate", "max_stable_learning_rate",
    "measured_rate", "steps_to_tolerance", "divergence_step", "minibatch_sgd", "single_threaded",
]


def single_threaded(fn: Callable) -> Callable:
    """Run ``fn`` with one intra-op CPU thread (the previous number is restored afterwards).

    The loops here work on tensors of a few hundred numbers, where a second BLAS/OpenMP
    thread only adds synchronisation; on a busy machine it made them ten times slower.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        if threads == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapper


@dataclass(frozen=True, eq=False)
class Quadratic:
    r""":math:`f(x) = \tfrac12 x^\top A x - b^\top x`, callable on a batch ``(..., n)`` of points."""

    A: torch.Tensor
    b: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x @ self.A) * x).sum(-1) - x @ self.b

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The gradient ``A x - b`` (batched like ``__call__``)."""
        return x @ self.A - self.b  # A is symmetric, so x A = (A x)^T

    @property
    def dim(self) -> int:
        return self.A.shape[0]

    @property
    def minimizer(self) -> torch.Tensor:
        return minimizer(self.A, self.b)

    @property
    def min_value(self) -> float:
        return float(self(self.minimizer))

    @property
    def eigenvalues(self) -> torch.Tensor:
        """The eigenvalues of ``A``, ascending."""
        return torch.linalg.eigvalsh(self.A)

    @property
    def mu(self) -> float:
        """The smallest eigenvalue: the strong-convexity constant."""
        return float(self.eigenvalues[0])

    @property
    def L(self) -> float:
        """The largest eigenvalue: the smoothness (Lipschitz) constant of the gradient."""
        return float(self.eigenvalues[-1])

    @property
    def condition_number(self) -> float:
        return self.L / self.mu

    def to(self, *args, **kwargs) -> "Quadratic":
        return Quadratic(self.A.to(*args, **kwargs), self.b.to(*args, **kwargs))


def rotation_2d(angle: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """The 2x2 rotation by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=dtype, device=device)


def make_quadratic(eigenvalues: Sequence[float] | torch.Tensor, *, angle: float | None = None,
                   seed: int | None = 0, x_star: Sequence[float] | torch.Tensor | None = None,
                   dtype=torch.float64, device=None) -> Quadratic:
    """A quadratic whose Hessian ``A = Q diag(eigenvalues) Q^T`` has the given eigenvalues.

    ``Q`` is a rotation by ``angle`` in 2-D, else a random orthogonal matrix drawn
    from ``seed`` (``seed=None``: the identity, so the axes are the eigenvectors).
    ``b`` is chosen so that the minimizer is ``x_star`` (default: the origin).
    """
    lam = torch.as_tensor(eigenvalues, dtype=dtype).flatten()
    if (lam <= 0).any():
        raise ValueError(f"eigenvalues must be positive, got {lam.tolist()}")
    n = lam.numel()
    if angle is not None:
        if n != 2:
            raise ValueError("angle is only defined for 2-D quadratics")
        Q = rotation_2d(angle, dtype=dtype)
    elif seed is None:
        Q = torch.eye(n, dtype=dtype)
    else:
        g = torch.Generator().manual_seed(seed)
        Q, R = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=dtype))
        Q = Q * torch.sign(torch.diagonal(R))  # a unique, uniformly random orthogonal matrix
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    x_star = torch.zeros(n, dtype=dtype) if x_star is None else torch.as_tensor(x_star, dtype=dtype)
    return Quadratic(A.to(device), (A @ x_star).to(device))


def ill_conditioned_quadratic(kappa: float, *, L: float = 1.0, n: int = 2, angle: float | None = math.pi / 6,
                              seed: int | None = 0, x_star=None, dtype=torch.float64, device=None) -> Quadratic:
    """A quadratic with largest eigenvalue ``L`` and condition number ``kappa``.

    The eigenvalues are spread geometrically from ``L / kappa`` to ``L``; in 2-D the
    valley is turned by ``angle`` (``None``: random orthogonal from ``seed``).
    """
    if kappa < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    lam = torch.logspace(math.log10(L / kappa), math.log10(L), n, dtype=dtype) if n > 1 else torch.tensor([L], dtype=dtype)
    return make_quadratic(lam, angle=angle if n == 2 else None, seed=seed, x_star=x_star, dtype=dtype, device=device)


def minimizer(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x* = A^{-1} b``, the point where the gradient ``A x - b`` vanishes."""
    return torch.linalg.solve(A, b)


@single_threaded
def gradient_descent(A: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, lr: float, steps: int) -> torch.Tensor:
    """Gradient descent on ``1/2 x^T A x - b^T x``: the iterates ``x_0 .. x_steps`` as a ``(steps+1, n)`` tensor.

    The reference solution of exercise 01.1; the loop is the algorithm, no tricks.
    """
    x = x0.clone()
    iterates = [x]
    for _ in range(steps):
        x = x - lr * (A @ x - b)
        iterates.append(x)
    return torch.stack(iterates)


gd_iterates = gradient_descent  # the name the plotting and widget code uses


def gd_iterates_closed_form(A, b, x0, lr, steps) -> torch.Tensor:
    """The same iterates from the closed form ``x_k = x* + (I - lr A)^k (x_0 - x*)``, via the eigenbasis."""
    lam, Q = torch.linalg.eigh(A)
    x_star = minimizer(A, b)
    e0 = Q.T @ (x0 - x_star)  # the initial error in the eigenbasis
    k = torch.arange(steps + 1, dtype=A.dtype, device=A.device)[:, None]
    return x_star + ((1 - lr * lam) ** k * e0) @ Q.T


def convergence_rate(lr: float, eigenvalues) -> float:
    r"""The worst contraction factor :math:`\max_i |1 - \eta \lambda_i|` of gradient descent (>= 1: no convergence)."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64)
    return float((1 - lr * lam).abs().max())


def best_learning_rate(mu: float, L: float) -> float:
    r"""The step size :math:`2/(\mu + L)` that minimizes :math:`\max(|1 - \eta\mu|, |1 - \eta L|)`."""
    return 2.0 / (mu + L)


def optimal_rate(kappa: float) -> float:
    r"""The rate :math:`(\kappa - 1)/(\kappa + 1)` of gradient descent with the best constant step size."""
    return (kappa - 1.0) / (kappa + 1.0)


def max_stable_learning_rate(L: float) -> float:
    """``2 / L``: gradient descent on a quadratic converges iff ``0 < lr < 2/L``."""
    return 2.0 / L


def measured_rate(iterates: torch.Tensor, x_star: torch.Tensor, window: int = 10) -> float:
    r"""The contraction per step over the last ``window`` steps: :math:`(\|e_K\| / \|e_{K-w}\|)^{1/w}`."""
    errors = torch.linalg.vector_norm(iterates - x_star, dim=-1)
    window = min(window, errors.numel() - 1)
    return float((errors[-1] / errors[-1 - window]) ** (1.0 / window))


def steps_to_tolerance(rate: float, tol: float = 1e-6) -> float:
    """How many steps a contraction ``rate`` needs to shrink the error by ``tol`` (``inf`` if it does not)."""
    if rate >= 1:
        return math.inf
    if rate <= 0:
        return 1
    return math.ceil(math.log(tol) / math.log(rate))


def divergence_step(values: torch.Tensor, threshold: float = 1e8) -> int | None:
    """The first index at which ``values`` (losses, or error norms) is non-finite or above ``threshold``, else None.

    Widgets and plots use it to stop drawing at the step where a run blew up.
    """
    values = torch.as_tensor(values)
    bad = ~torch.isfinite(values) | (values.abs() > threshold)
    if values.dim() > 1:
        bad = bad.flatten(1).any(1)
    idx = torch.nonzero(bad)
    return int(idx[0, 0]) if len(idx) else None


@single_threaded
def minibatch_sgd(X: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, lr: float, batch_size: int, epochs: int,
                  generator: torch.Generator, *, lr_schedule: Callable[[int], float] | None = None,
                  replacement: bool = False, return_path: bool = False):
    r"""Mini-batch SGD on the least-squares loss :math:`\tfrac12\,\mathrm{mean}_i (x_i^\top w - y_i)^2`.

    Each epoch draws ``perm = torch.randperm(n, generator=generator)`` and walks through
    it in consecutive slices of ``batch_size`` (the last one may be shorter): sampling
    without replacement, "random reshuffling", as ``DataLoader(shuffle=True)`` does.
    On the batch :math:`B` the step is :math:`w \leftarrow w - \eta\, X_B^\top (X_B w - y_B) / |B|`.
    With ``replacement=True`` every step draws its ``batch_size`` indices independently
    (``torch.randint``), ``ceil(n / batch_size)`` steps per epoch: the textbook model of SGD.

    ``lr_schedule(k)`` (optional) multiplies ``lr`` at step ``k = 0, 1, ...``.
    Returns the final ``w``; with ``return_path=True`` a ``(steps+1, d)`` tensor of
    every iterate. Indices are drawn on ``generator``'s device (the CPU for the
    default generator) and moved to ``X``'s, so a seed gives the same batches everywhere.
    Runs with one CPU thread (see :func:`single_threaded`).
    """
    n = X.shape[0]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    w = w0.clone()
    path = [w] if return_path else None
    k = 0
    for _ in range(epochs):
        if replacement:
            idx = torch.randint(n, (math.ceil(n / batch_size), batch_size), generator=generator).to(X.device)
            batches = zip(X[idx], y[idx])
        else:
            perm = torch.randperm(n, generator=generator).to(X.device)
            Xp, yp = X[perm], y[perm]  # one gather per epoch; the batches are then slices (views)
            batches = ((Xp[i:i + batch_size], yp[i:i + batch_size]) for i in range(0, n, batch_size))
        for Xb, yb in batches:
            step = lr if lr_schedule is None else lr * lr_schedule(k)
            residual = torch.addmv(yb, Xb, w, beta=-1)  # X_B w - y_B
            w = torch.addmv(w, Xb.T, residual, alpha=-step / Xb.shape[0])
            k += 1
            if return_path:
                path.append(w)
    return torch.stack(path) if return_path else w
