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
(mini-batch) stochastic gradient descent on it, with or without momentum, and
:func:`noise_floor` measures the excess loss at which constant-step SGD settles,
:math:`\approx \frac{\eta}{1-\beta}\operatorname{tr}S/(4B)` for batch size :math:`B`.

Momentum (notebook 02): heavy ball moves each eigen-coordinate of the error by a
2x2 matrix, :math:`z_{k+1} = (1 + \beta - \eta\lambda_i) z_k - \beta z_{k-1}`; it
converges iff :math:`0 \le \beta < 1` and :math:`0 < \eta\lambda_i < 2 + 2\beta`, and the best
:math:`\eta^\star = (2/(\sqrt L + \sqrt\mu))^2`, :math:`\beta^\star = ((\sqrt L - \sqrt\mu)/(\sqrt L + \sqrt\mu))^2`
give the rate :math:`(\sqrt\kappa - 1)/(\sqrt\kappa + 1)` (Polyak, 1964; Goh, "Why Momentum
Really Works", Distill, 2017). :func:`heavy_ball`, :func:`nesterov`, :func:`momentum_rate`,
:func:`momentum_rate_map` and :func:`optimal_momentum` are the library's side of it.

Everything here is the library's reference for the exercises of notebooks 01 and 02.
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
    "measured_rate", "steps_to_tolerance", "divergence_step", "minibatch_sgd", "noise_floor", "single_threaded",
    # momentum (notebook 02)
    "heavy_ball", "nesterov", "momentum_matrix", "heavy_ball_closed_form", "momentum_rate", "nesterov_rate",
    "momentum_rate_map", "optimal_momentum", "optimal_momentum_rate", "max_stable_momentum_lr", "critical_damping",
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


def measured_rate(iterates: torch.Tensor, x_star: torch.Tensor, window: int = 10, *, power: int = 0) -> float:
    r"""The contraction per step over the last ``window`` steps: :math:`(\|e_K\| / \|e_{K-w}\|)^{1/w}`.

    With ``power=p`` the error is taken to decay like :math:`k^p \rho^k` (a matrix with a repeated
    eigenvalue, as heavy ball has at critical damping, gives ``p = 1``) and :math:`\rho` is measured
    from :math:`\|e_k\| / k^p` instead.
    """
    errors = torch.linalg.vector_norm(iterates - x_star, dim=-1)
    window = min(window, errors.numel() - 1)
    K = errors.numel() - 1
    ratio = errors[-1] / errors[-1 - window]
    if power:
        ratio = ratio * ((K - window) / K) ** power
    return float(ratio ** (1.0 / window))


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
                  replacement: bool = False, momentum: float = 0.0, return_path: bool = False):
    r"""Mini-batch SGD on the least-squares loss :math:`\tfrac12\,\mathrm{mean}_i (x_i^\top w - y_i)^2`.

    Each epoch draws ``perm = torch.randperm(n, generator=generator)`` and walks through
    it in consecutive slices of ``batch_size`` (the last one may be shorter): sampling
    without replacement, "random reshuffling", as ``DataLoader(shuffle=True)`` does.
    On the batch :math:`B` the step is :math:`w \leftarrow w - \eta\, X_B^\top (X_B w - y_B) / |B|`.
    With ``replacement=True`` every step draws its ``batch_size`` indices independently
    (``torch.randint``), ``ceil(n / batch_size)`` steps per epoch: the textbook model of SGD.

    ``lr_schedule(k)`` (optional) multiplies ``lr`` at step ``k = 0, 1, ...``.
    With ``momentum`` :math:`\beta > 0` the step is heavy ball in PyTorch's buffer form,
    :math:`m \leftarrow \beta m + g_{\mathcal B}` (:math:`m = g_{\mathcal B}` at the first step), :math:`w \leftarrow w - \eta\, m`,
    the rule of ``torch.optim.SGD(momentum=beta)`` (notebook 02).
    Returns the final ``w``; with ``return_path=True`` a ``(steps+1, d)`` tensor of
    every iterate. Indices are drawn on ``generator``'s device (the CPU for the
    default generator) and moved to ``X``'s, so a seed gives the same batches everywhere.
    Runs with one CPU thread (see :func:`single_threaded`).
    """
    n = X.shape[0]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    w = w0.clone()
    m = None  # the momentum buffer
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
            if momentum == 0.0:
                w = torch.addmv(w, Xb.T, residual, alpha=-step / Xb.shape[0])
            else:
                g = Xb.T @ residual / Xb.shape[0]
                m = g if m is None else torch.add(g, m, alpha=momentum)
                w = w - step * m
            k += 1
            if return_path:
                path.append(w)
    return torch.stack(path) if return_path else w


@single_threaded
def noise_floor(X: torch.Tensor, y: torch.Tensor, lr: float, batch_size: int, steps: int, *, chains: int = 8,
                momentum: float = 0.0, burn_in: int | None = None, generator: torch.Generator | None = None,
                w_star: torch.Tensor | None = None) -> torch.Tensor:
    r"""The stationary excess loss of constant-step SGD on least squares, measured on ``chains`` independent runs.

    Every run starts at the minimizer :math:`w^\star` of :math:`f(w) = \tfrac12\,\mathrm{mean}_i (x_i^\top w - y_i)^2`
    and takes ``steps`` steps on mini-batches of ``batch_size`` examples drawn **with replacement**
    (the textbook model of SGD), with momentum :math:`\beta` in PyTorch's buffer form
    (:math:`m \leftarrow \beta m + g_{\mathcal B}`, :math:`w \leftarrow w - \eta m`; :math:`\beta = 0` is plain SGD).
    Returns a ``(chains,)`` tensor: each run's mean of :math:`f(w_k) - f^\star = \tfrac12 e_k^\top H e_k` over the
    steps after ``burn_in`` (default: the first fifth). The runs are independent (one generator draws all their
    batches up front) and advance together, so eight runs cost about as much as one.

    To first order in the effective step :math:`\eta/(1 - \beta)` the floor is
    :math:`\frac{\eta}{1 - \beta}\,\frac{\operatorname{tr} S}{4B}`, with :math:`S` the second moment of the per-example
    gradients at :math:`w^\star` (notebooks 01 and 02; Goh, "Why Momentum Really Works", Distill, 2017).
    """
    n, d = X.shape
    if batch_size < 1 or steps < 1 or chains < 1:
        raise ValueError(f"batch_size, steps and chains must be >= 1, got {batch_size}, {steps}, {chains}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    burn_in = steps // 5 if burn_in is None else int(burn_in)
    if not 0 <= burn_in < steps:
        raise ValueError(f"burn_in must be in [0, steps), got {burn_in}")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    if w_star is None:
        w_star = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    H = X.T @ X / n
    idx = torch.randint(n, (steps, chains, batch_size), generator=generator).to(X.device)
    w = w_star.expand(chains, d).clone()
    m = torch.zeros_like(w)
    total = torch.zeros(chains, dtype=X.dtype, device=X.device)
    for k in range(steps):
        Xb, yb = X[idx[k]], y[idx[k]]  # (chains, B, d), (chains, B)
        residual = torch.einsum("cbd,cd->cb", Xb, w) - yb
        g = torch.einsum("cbd,cb->cd", Xb, residual) / batch_size
        m = g if k == 0 or momentum == 0.0 else torch.add(g, m, alpha=momentum)
        w = w - lr * m
        if k + 1 > burn_in:
            e = w - w_star
            total += 0.5 * ((e @ H) * e).sum(1)
    return total / (steps - burn_in)


# --------------------------------------------------------------------------- momentum (notebook 02)
#
# Heavy ball (Polyak, 1964) on the quadratic, with step size eta and momentum beta:
#     x_{k+1} = x_k - eta (A x_k - b) + beta (x_k - x_{k-1}),     x_{-1} = x_0,
# which is torch's form  buf <- beta buf + grad (buf_1 = grad_1),  x <- x - eta buf.
# Along eigenvector i the error obeys z_{k+1} = (1 + beta - eta lam_i) z_k - beta z_{k-1}: a 2x2 linear
# system whose matrix has the characteristic polynomial t^2 - (1 + beta - eta lam) t + beta
# (Goh, "Why Momentum Really Works", Distill 2017).


def _spectral_radius_2x2(trace, det):
    r"""The largest :math:`|t|` over the roots of :math:`t^2 - \mathrm{trace}\,t + \mathrm{det}` (elementwise)."""
    disc = trace * trace - 4 * det
    real = 0.5 * (trace.abs() + disc.clamp(min=0).sqrt())
    complex_modulus = det.clamp(min=0).sqrt()
    return torch.where(disc >= 0, real, complex_modulus)


def _as_f64(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float64)


@single_threaded
def heavy_ball(A: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, lr: float, beta: float, steps: int) -> torch.Tensor:
    r"""Polyak's heavy ball on ``1/2 x^T A x - b^T x``: the iterates ``x_0 .. x_steps``, a ``(steps+1, n)`` tensor.

    :math:`x_{k+1} = x_k - \eta\,(A x_k - b) + \beta\,(x_k - x_{k-1})` with :math:`x_{-1} = x_0`,
    the same iterates as ``torch.optim.SGD(lr=eta, momentum=beta)``.
    """
    x_prev, x = x0.clone(), x0.clone()
    iterates = [x]
    for _ in range(steps):
        x, x_prev = x - lr * (A @ x - b) + beta * (x - x_prev), x
        iterates.append(x)
    return torch.stack(iterates)


@single_threaded
def nesterov(A: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, lr: float, beta: float, steps: int, *,
             lookahead: bool = False) -> torch.Tensor:
    r"""Nesterov's accelerated gradient in the look-ahead form of Sutskever et al. (2013).

    :math:`v_{k+1} = \beta v_k - \eta \nabla f(x_k + \beta v_k)`, :math:`x_{k+1} = x_k + v_{k+1}`, :math:`v_0 = 0`.
    Returns the iterates :math:`x_0 .. x_{\text{steps}}`; with ``lookahead=True`` the look-ahead points
    :math:`x_k + \beta v_k` instead, which are exactly the parameters of
    ``torch.optim.SGD(lr=eta, momentum=beta, nesterov=True)``.
    """
    x, v = x0.clone(), torch.zeros_like(x0)
    iterates = [x + beta * v if lookahead else x]
    for _ in range(steps):
        v = beta * v - lr * (A @ (x + beta * v) - b)
        x = x + v
        iterates.append(x + beta * v if lookahead else x)
    return torch.stack(iterates)


def momentum_matrix(lr: float, beta: float, lam: float) -> torch.Tensor:
    r"""The 2x2 matrix that moves :math:`(z_k, z_{k-1})` to :math:`(z_{k+1}, z_k)` along an eigenvector of ``lam``.

    .. math:: \begin{pmatrix} 1 + \beta - \eta\lambda & -\beta \\ 1 & 0 \end{pmatrix}
    """
    return torch.tensor([[1.0 + beta - lr * lam, -beta], [1.0, 0.0]], dtype=torch.float64)


def heavy_ball_closed_form(A, b, x0, lr: float, beta: float, steps: int) -> torch.Tensor:
    """The heavy-ball iterates from powers of the 2x2 matrices, one per eigenvalue (``x_{-1} = x_0``)."""
    lam, Q = torch.linalg.eigh(A)
    x_star = minimizer(A, b)
    z0 = Q.T @ (x0 - x_star)
    rows = []
    for i, lam_i in enumerate(lam.tolist()):
        M = momentum_matrix(lr, beta, lam_i).to(A.device)
        state = torch.stack([z0[i], z0[i]])  # (z_0, z_{-1})
        column = [state[0]]
        for _ in range(steps):
            state = M @ state
            column.append(state[0])
        rows.append(torch.stack(column))
    return x_star + torch.stack(rows, dim=1) @ Q.T


def momentum_rate(lr: float, beta: float, eigenvalues) -> float:
    r"""The worst asymptotic rate of heavy ball: the largest spectral radius of the 2x2 matrices over the eigenvalues.

    For each :math:`\lambda` the roots of :math:`t^2 - (1 + \beta - \eta\lambda)\,t + \beta` are complex
    (modulus :math:`\sqrt\beta`) or real; the rate is the largest modulus. It is below 1 iff
    :math:`0 \le \beta < 1` and :math:`0 < \eta\lambda < 2 + 2\beta` for every eigenvalue.
    """
    lam = _as_f64(eigenvalues).flatten()
    beta_t = torch.full_like(lam, float(beta))
    return float(_spectral_radius_2x2(1 + beta_t - lr * lam, beta_t).max())


def nesterov_rate(lr: float, beta: float, eigenvalues) -> float:
    r"""The worst asymptotic rate of Nesterov's method on a quadratic.

    Along an eigenvector, :math:`z_{k+1} = (1 + \beta)(1 - \eta\lambda) z_k - \beta (1 - \eta\lambda) z_{k-1}`.
    """
    lam = _as_f64(eigenvalues).flatten()
    h = 1 - lr * lam
    return float(_spectral_radius_2x2((1 + beta) * h, beta * h).max())


def momentum_rate_map(lrs, betas, eigenvalues) -> torch.Tensor:
    """Heavy ball's rate on a grid: a ``(len(betas), len(lrs))`` tensor (row ``i``: ``betas[i]``), vectorized."""
    lrs, betas, lam = _as_f64(lrs).flatten(), _as_f64(betas).flatten(), _as_f64(eigenvalues).flatten()
    h = lrs[None, :, None] * lam[None, None, :]  # (1, n_lr, n_lam)
    beta = betas[:, None, None].expand(-1, lrs.numel(), lam.numel())
    return _spectral_radius_2x2(1 + beta - h, beta).amax(dim=-1)


def optimal_momentum(mu: float, L: float) -> tuple[float, float]:
    r"""The step size and momentum with the smallest heavy-ball rate for eigenvalues in :math:`[\mu, L]`.

    .. math:: \eta^\star = \Big(\frac{2}{\sqrt L + \sqrt\mu}\Big)^2, \qquad
              \beta^\star = \Big(\frac{\sqrt L - \sqrt\mu}{\sqrt L + \sqrt\mu}\Big)^2
    """
    root_mu, root_L = math.sqrt(mu), math.sqrt(L)
    return (2.0 / (root_L + root_mu)) ** 2, ((root_L - root_mu) / (root_L + root_mu)) ** 2


def optimal_momentum_rate(kappa: float) -> float:
    r"""Heavy ball's rate :math:`(\sqrt\kappa - 1)/(\sqrt\kappa + 1)` with the optimal step size and momentum."""
    root = math.sqrt(kappa)
    return (root - 1.0) / (root + 1.0)


def max_stable_momentum_lr(L: float, beta: float) -> float:
    """``(2 + 2 beta) / L``: heavy ball (``0 <= beta < 1``) converges iff ``0 < lr < (2 + 2 beta) / L``."""
    return (2.0 + 2.0 * beta) / L


def critical_damping(lr: float, lam: float) -> float:
    r"""The momentum :math:`(1 - \sqrt{\eta\lambda})^2` at which the two roots for eigenvalue ``lam`` coincide.

    For ``0 < lr * lam < 4`` it minimizes the rate along that eigenvector, which is then
    :math:`|1 - \sqrt{\eta\lambda}| = \sqrt\beta`.
    """
    return (1.0 - math.sqrt(lr * lam)) ** 2
