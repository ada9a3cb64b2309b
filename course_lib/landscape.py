r"""Loss landscapes: convexity on a grid, and pictures of a small network's loss (notebook 05).

* :func:`min_hessian_eigenvalues` evaluates the smallest Hessian eigenvalue of a 2-D function at
  every point of a grid: the second-order test of convexity, :math:`f` is convex on a convex set
  exactly when :math:`\nabla^2 f \succeq 0` there (Boyd & Vandenberghe 2004, §3.1.4).
* :func:`two_spirals` makes a 2-class spiral data set on the spot; :class:`MLP` is a tiny
  fully connected network written as a function of **one flat parameter vector**, and it takes a
  *batch* of parameter vectors ``(..., P)`` at once, so a whole 2-D slice of the landscape is
  one call.
* :func:`interpolate` evaluates the loss on the segment :math:`(1-\alpha)\,\theta_0 + \alpha\,\theta_1`
  (Goodfellow, Vinyals & Saxe, ICLR 2015); :func:`filter_normalized_direction` draws a random
  direction whose every filter (row of a weight matrix) has the norm of the same filter of
  :math:`\theta` (Li, Xu, Taylor, Studer & Goldstein, NeurIPS 2018); :func:`slice_2d` evaluates
  :math:`L(\theta + \alpha d_1 + \beta d_2)` on a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "MLP",
    "filter_normalized_direction",
    "interpolate",
    "min_hessian_eigenvalues",
    "slice_2d",
    "train_full_batch",
    "two_spirals",
]

F64 = torch.float64


def min_hessian_eigenvalues(f, bounds, n: int = 101) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(xs, ys, lam_min)``: the smallest eigenvalue of :math:`\nabla^2 f` at every point of an ``n x n`` grid.

    ``f`` maps points ``(..., 2)`` to values ``(...)`` (a :class:`~course_lib.surfaces.Surface` or any
    function written with torch operations); ``lam_min[i, j]`` belongs to ``(xs[j], ys[i])``. All the
    Hessians come from two batched backward passes through the gradient.
    """
    (x0, x1), (y0, y1) = bounds
    xs = torch.linspace(x0, x1, n, dtype=F64)
    ys = torch.linspace(y0, y1, n, dtype=F64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(f(grid).sum(), grid, create_graph=True)
        rows = [torch.autograd.grad(grad[..., i].sum(), grid, retain_graph=True, allow_unused=True)[0]
                for i in range(2)]
    rows = [torch.zeros_like(grid) if r is None else r for r in rows]
    H = torch.stack(rows, dim=-2).detach()
    return xs, ys, torch.linalg.eigvalsh(0.5 * (H + H.transpose(-1, -2)))[..., 0]


# --------------------------------------------------------------------------------------- data and model

def two_spirals(n: int = 200, *, noise: float = 0.08, turns: float = 1.25, seed: int = 0):
    """``(X, y)``: ``n`` points (float64, ``(n, 2)``) on two interleaved spirals, labels 0/1 (float64, ``(n,)``)."""
    gen = torch.Generator().manual_seed(seed)
    half = n // 2
    t = torch.rand(n, generator=gen, dtype=F64) * turns * 2 * math.pi + 0.3
    r = t / (turns * 2 * math.pi)
    y = (torch.arange(n) >= half).to(F64)
    angle = t + math.pi * y
    X = torch.stack([r * angle.cos(), r * angle.sin()], dim=1) + noise * torch.randn(n, 2, generator=gen, dtype=F64)
    return X, y


@dataclass(frozen=True)
class MLP:
    """A tanh network ``sizes = (2, h, ..., 1)`` as a function of a flat parameter vector (one logit out).

    The vector holds, layer after layer, the weight matrix ``(out, in)`` (row-major) and the bias ``(out,)``.
    Every method accepts a batch of parameter vectors ``(..., P)``.
    """

    sizes: tuple = (2, 16, 16, 1)

    @property
    def shapes(self) -> list[tuple[tuple[int, int], tuple[int]]]:
        return [((o, i), (o,)) for i, o in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def n_params(self) -> int:
        return sum(o * i + o for (o, i), _ in self.shapes)

    def layers(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(W, b), ...]`` views into ``theta`` with shapes ``(..., out, in)`` and ``(..., out)``."""
        out, k = [], 0
        for (o, i), _ in self.shapes:
            W = theta[..., k:k + o * i].unflatten(-1, (o, i))
            k += o * i
            out.append((W, theta[..., k:k + o]))
            k += o
        return out

    def init(self, seed: int = 0, dtype=F64) -> torch.Tensor:
        """PyTorch's default ``nn.Linear`` initialisation: uniform in ``±1/sqrt(fan_in)``, weights and biases."""
        gen = torch.Generator().manual_seed(seed)
        parts = []
        for (o, i), _ in self.shapes:
            bound = 1 / math.sqrt(i)
            parts.append((2 * torch.rand(o * i + o, generator=gen, dtype=dtype) - 1) * bound)
        return torch.cat(parts)

    def logits(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """``(..., n)`` logits for data ``X`` ``(n, in)`` and parameters ``(..., P)``."""
        h = X
        layers = self.layers(theta)
        for j, (W, b) in enumerate(layers):
            h = h @ W.transpose(-1, -2) + b.unsqueeze(-2)
            if j < len(layers) - 1:
                h = torch.tanh(h)
        return h.squeeze(-1)

    def loss(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy, shape ``(...)``."""
        z = self.logits(theta, X)
        return torch.nn.functional.softplus(z).mean(-1) - (z * y).mean(-1)  # = BCE with logits

    def accuracy(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((self.logits(theta, X) > 0).to(y.dtype) == y).to(F64).mean(-1)


def train_full_batch(mlp: MLP, X, y, theta0: torch.Tensor, steps: int = 1500, lr: float = 0.01):
    """Full-batch Adam (:class:`course_lib.optim.Adam`) from ``theta0``; returns ``(theta, losses)``."""
    from .optim import Adam

    theta = theta0.clone().requires_grad_(True)
    opt = Adam([theta], lr=lr)
    losses = torch.empty(steps + 1, dtype=theta.dtype)
    for k in range(steps + 1):
        with torch.enable_grad():
            loss = mlp.loss(theta, X, y)
        losses[k] = loss.detach()
        if k == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return theta.detach(), losses


# --------------------------------------------------------------------------------------- landscape tools

@torch.no_grad()
def interpolate(loss_fn, start: torch.Tensor, end: torch.Tensor, alphas) -> torch.Tensor:
    r""":math:`f((1-\alpha)\,\theta_0 + \alpha\,\theta_1)` for every ``alpha`` (one batched call of ``loss_fn``)."""
    alphas = torch.as_tensor(alphas, dtype=start.dtype)
    thetas = (1 - alphas)[:, None] * start + alphas[:, None] * end
    return loss_fn(thetas)


def filter_normalized_direction(mlp: MLP, theta: torch.Tensor, seed: int = 0, *, biases: bool = False):
    r"""A Gaussian direction with every filter rescaled to the norm of the same filter of ``theta``.

    For a fully connected layer a *filter* is one output unit's incoming weights, a row of ``W``:
    :math:`d_{ij} \leftarrow d_{ij}\,\lVert\theta_{i\cdot}\rVert / \lVert d_{i\cdot}\rVert`. Biases are set
    to zero unless ``biases=True`` (then each bias entry gets the magnitude of ``theta``'s), as Li et al. do.
    For a ReLU network (Dinh et al. 2017's rescaling of one layer by :math:`c` and the next by :math:`1/c`)
    or one with batch normalization, the picture is then the same for parameters that such a rescaling maps
    into each other; a tanh network (this module's :class:`MLP`) has no such symmetry, so there it is a
    convention of scale.
    """
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(theta.shape, generator=gen, dtype=theta.dtype)
    for (Wd, bd), (Wt, bt) in zip(mlp.layers(d), mlp.layers(theta)):
        Wd.mul_(Wt.norm(dim=-1, keepdim=True) / Wd.norm(dim=-1, keepdim=True).clamp(min=1e-12))
        if biases:
            bd.mul_(bt.abs() / bd.abs().clamp(min=1e-12))
        else:
            bd.zero_()
    return d


@torch.no_grad()
def slice_2d(loss_fn, center: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, alphas, betas) -> torch.Tensor:
    r""":math:`L(\theta + \alpha d_1 + \beta d_2)`, shape ``(len(betas), len(alphas))`` (one batched call)."""
    a = torch.as_tensor(alphas, dtype=center.dtype)
    b = torch.as_tensor(betas, dtype=center.dtype)
    thetas = center + b[:, None, None] * d2 + a[None, :, None] * d1
    return loss_fn(thetas)
