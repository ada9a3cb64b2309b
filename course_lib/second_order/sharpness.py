r"""The sharpness of a loss, :math:`\lambda_{\max}(\nabla^2 f(\theta))`, and the edge of stability.

Gradient descent with step :math:`\eta` on a quadratic with Hessian :math:`H` multiplies the error along
the eigenvector :math:`q_i` by :math:`1 - \eta\lambda_i`, so it is stable exactly when
:math:`\lambda_{\max} < 2/\eta` (notebook 01). Cohen, Kaur, Li, Kolter & Talwalkar ("Gradient descent on
neural networks typically occurs at the edge of stability", ICLR 2021) tracked the sharpness of networks
trained by full-batch gradient descent and found that it rises (*progressive sharpening*) until it reaches
:math:`2/\eta` and then hovers there (*the edge of stability*) while the loss keeps falling, not
monotonically.

* :func:`sharpness`: the top Hessian eigenvalue from Hessian-vector products, by Lanczos (default) or
  power iteration, optionally warm-started from the previous eigenvector (a trajectory's sharpness
  changes little from one measurement to the next, so a warm start needs only a few products);
* :func:`power_iteration`: the plain power iteration on any symmetric ``matvec``;
* :func:`gd_with_sharpness`: full-batch gradient descent on a list of tensors, recording the loss every
  step and the sharpness every ``every`` steps;
* :func:`edge_statistics`: the step at which a run reaches the edge and the median and maximum of
  :math:`\lambda_{\max}/(2/\eta)` afterwards: robust summaries of what Cohen et al. plot (the sharpness
  against the line :math:`2/\eta`).

Damian, Nichani & Lee ("Self-stabilization: the implicit bias of gradient descent at the edge of stability",
ICLR 2023) explain why the run does not diverge: with :math:`S(\theta) = \lambda_{\max}(\nabla^2 f(\theta))`
and :math:`u(\theta)` its unit eigenvector, the cubic term of the Taylor expansion makes gradient descent
descend :math:`S` once it oscillates along :math:`u`, and, under their assumptions, gradient descent tracks
projected gradient descent on the stable set
:math:`\{\theta : S(\theta) \le 2/\eta \text{ and } \nabla f(\theta)\cdot u(\theta) = 0\}`.

A Lanczos estimate is a **lower bound**: in exact arithmetic the largest Ritz value after :math:`k` steps is
at most :math:`\lambda_{\max}` (Cauchy interlacing) and does not decrease with :math:`k`. With a warm start
and few products it can lag the true sharpness when the top eigenvector turns quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .hvp import _as_list, _flat_hvp, lanczos

__all__ = ["sharpness", "power_iteration", "gd_with_sharpness", "SharpnessRun", "edge_statistics", "EdgeStatistics",
           "MLPProblem"]


def power_iteration(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, iters: int
                    ) -> tuple[float, torch.Tensor]:
    r"""``iters`` steps of :math:`v \leftarrow Av/\|Av\|` from ``v0``; returns the Rayleigh quotient
    :math:`v^\top A v` of the last unit vector and that vector.

    It converges to the eigenvalue of largest *magnitude*, at the rate :math:`|\lambda_2/\lambda_1|` per
    step; for a Hessian with large negative eigenvalues that is not the sharpness (use Lanczos).
    """
    iters = int(iters)
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    v = v0.reshape(-1)
    norm = torch.linalg.vector_norm(v)
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("the start vector must be finite and non-zero")
    v = v / norm
    value = 0.0
    for _ in range(iters):
        hv = matvec(v).reshape(-1)
        value = float(torch.dot(v, hv))
        norm = torch.linalg.vector_norm(hv)
        if norm == 0:
            return 0.0, v
        v = hv / norm
    return value, v


def sharpness(loss_fn: Callable, params, *, method: str = "lanczos", iters: int = 20,
              v0: torch.Tensor | None = None, generator: torch.Generator | None = None,
              return_vector: bool = False):
    r"""The sharpness :math:`\lambda_{\max}(\nabla^2 f(\theta))` of ``loss_fn`` at ``params``, from HVPs.

    ``params``: a tensor or a list of tensors; ``loss_fn(params)`` returns the scalar loss (see
    :mod:`course_lib.second_order.hvp`). ``method="lanczos"``: the largest Ritz value after ``iters``
    Lanczos steps (algebraically largest; in exact arithmetic a lower bound on :math:`\lambda_{\max}` that
    does not decrease with ``iters``, and exact when ``iters`` reaches the number of parameters or the Krylov
    space becomes invariant).
    ``method="power"``: power iteration (the eigenvalue of largest magnitude). ``v0``: a flat start vector,
    e.g. the eigenvector of the previous measurement (warm start); otherwise a Gaussian vector from
    ``generator``. Returns a float, and the flat unit eigenvector with ``return_vector=True``.
    """
    plist, single = _as_list(params)
    matvec, g = _flat_hvp(loss_fn, plist, single)
    n = g.numel()
    if v0 is None:
        v0 = torch.randn(n, generator=generator, dtype=g.dtype,
                         device="cpu" if generator is not None else g.device).to(g.device)
    elif v0.numel() != n:
        raise ValueError(f"v0 has {v0.numel()} entries, the parameters {n}")
    v0 = v0.reshape(-1).to(dtype=g.dtype, device=g.device)
    if method == "lanczos":
        if int(iters) < 1:
            raise ValueError(f"iters must be at least 1, got {iters}")
        t, q = lanczos(matvec, v0, int(iters))
        values, vectors = torch.linalg.eigh(t)
        value, vector = float(values[-1]), q @ vectors[:, -1]
    elif method == "power":
        value, vector = power_iteration(matvec, v0, iters)
    else:
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    return (value, vector.detach()) if return_vector else value


@dataclass
class SharpnessRun:
    """What :func:`gd_with_sharpness` records: the loss at every step (``len = steps + 1`` unless it
    diverged), the sharpness at ``sharpness_steps``, the step size, and the step where it diverged."""

    lr: float
    loss: list[float] = field(default_factory=list)
    sharpness_steps: list[int] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    diverged_at: int | None = None

    @property
    def threshold(self) -> float:
        """The stability threshold :math:`2/\\eta` of gradient descent on a quadratic."""
        return 2.0 / self.lr


def gd_with_sharpness(loss_fn: Callable, params: Sequence[torch.Tensor], lr: float, steps: int, *,
                      every: int = 10, iters: int = 20, warm_iters: int | None = None,
                      generator: torch.Generator | None = None, blowup: float = 1e6) -> SharpnessRun:
    r"""Full-batch gradient descent :math:`\theta \leftarrow \theta - \eta \nabla f(\theta)` on ``params``
    (a list of tensors, updated in place), recording the loss every step and the sharpness every ``every``
    steps (and at step 0).

    The first sharpness uses ``iters`` Lanczos steps from a random vector; later ones start from the
    previous top eigenvector with ``warm_iters`` steps (default ``iters``). A loss that is not finite or
    exceeds ``blowup`` times the first stops the run (``diverged_at``).
    """
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    plist = [p if p.requires_grad else p.detach().requires_grad_(True) for p in params]
    run = SharpnessRun(float(lr))
    warm_iters = iters if warm_iters is None else warm_iters
    vector = None
    for step in range(int(steps) + 1):
        if step % every == 0:
            value, vector = sharpness(loss_fn, plist, iters=iters if vector is None else warm_iters, v0=vector,
                                      generator=generator, return_vector=True)
            run.sharpness_steps.append(step)
            run.sharpness.append(value)
        with torch.enable_grad():
            loss = loss_fn(plist)
            grads = torch.autograd.grad(loss, plist)
        value = float(loss.detach())
        run.loss.append(value)
        if not (value == value and abs(value) <= blowup * max(abs(run.loss[0]), 1e-300)):
            run.diverged_at = step
            break
        if step == int(steps):
            break
        with torch.no_grad():
            for p, g in zip(plist, grads):
                p.sub_(lr * g)
    return run


@dataclass(frozen=True)
class EdgeStatistics:
    """``reached_at``: the first recorded step with sharpness at least ``fraction`` times :math:`2/\\eta`
    (``None`` if never); ``median_ratio``: the median of sharpness / :math:`(2/\\eta)` over the recorded
    steps of the hovering phase (see :func:`edge_statistics`); ``max_ratio``: their maximum."""

    reached_at: int | None
    median_ratio: float | None
    max_ratio: float | None


def edge_statistics(run: SharpnessRun, fraction: float = 0.9, skip: int = 0, after: int = 0) -> EdgeStatistics:
    r"""Where ``run`` reaches the edge of stability and how its sharpness sits there.

    Returns an :class:`EdgeStatistics` ``(reached_at, median_ratio, max_ratio)``:

    * ``reached_at``: the first recorded step (in ``run.sharpness_steps``) whose sharpness is at least
      ``fraction`` :math:`\cdot\, 2/\eta`; ``None`` if there is none, and then the other two are ``None`` too;
    * ``median_ratio``: the median of :math:`\lambda_{\max}/(2/\eta)` over the recorded steps
      :math:`s \ge \max(\texttt{reached\_at} + \texttt{skip},\ \texttt{after})` (``torch.quantile`` at 0.5:
      the mean of the two middle values for an even count); ``after`` is e.g. the second half of the run,
      past the first overshoot;
    * ``max_ratio``: the largest of those ratios.

    Both ratios are ``None`` when no recorded step is in that range. The ratios are those of the recorded
    estimates, so a Lanczos estimate with few products (a lower bound) biases them down.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    threshold = run.threshold
    reached = next((s for s, v in zip(run.sharpness_steps, run.sharpness) if v >= fraction * threshold), None)
    if reached is None:
        return EdgeStatistics(None, None, None)
    first = max(reached + skip, after)
    ratios = torch.tensor([v / threshold for s, v in zip(run.sharpness_steps, run.sharpness) if s >= first],
                          dtype=torch.float64)
    if ratios.numel() == 0:
        return EdgeStatistics(reached, None, None)
    return EdgeStatistics(reached, float(torch.quantile(ratios, 0.5)), float(ratios.max()))


@dataclass(frozen=True, eq=False)
class MLPProblem:
    r"""A tanh network :math:`x \mapsto W_L \tanh(\cdots \tanh(W_1 x + b_1) \cdots) + b_L` with the squared loss
    :math:`f(\theta) = \frac{1}{2n}\sum_i \|f_\theta(x_i) - y_i\|^2`, written as a function of the list
    ``[W_1, b_1, ..., W_L, b_L]`` so that :func:`sharpness` and :func:`gd_with_sharpness` can use it.

    ``init(perturbation)``: the seeded start (LeCun-normal weights, zero biases, the last layer scaled by
    ``out_scale``), each entry multiplied by :math:`1 + \text{perturbation}\cdot\xi` with a seeded Gaussian
    :math:`\xi`: a start perturbed on purpose, to test what a run's printed statistics depend on."""

    X: torch.Tensor
    Y: torch.Tensor
    sizes: tuple
    out_scale: float = 1.0
    seed: int = 0

    def loss(self, params) -> torch.Tensor:
        h = self.X
        for i in range(0, len(params) - 2, 2):
            h = torch.tanh(h @ params[i].T + params[i + 1])
        out = h @ params[-2].T + params[-1]
        return 0.5 * ((out - self.Y) ** 2).sum(1).mean()

    def init(self, perturbation: float = 0.0) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        params = []
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            params += [torch.randn(b, a, generator=g, dtype=self.X.dtype) / a ** 0.5, torch.zeros(b, dtype=self.X.dtype)]
        params[-2] = params[-2] * self.out_scale
        if perturbation:
            noise = torch.Generator().manual_seed(self.seed + 1_000_003)
            params = [p * (1 + perturbation * torch.randn(p.shape, generator=noise, dtype=p.dtype)) for p in params]
        return params
