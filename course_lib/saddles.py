r"""Saddle points (notebook 06): classifying critical points, escape times, perturbed GD, saddle chains.

* :func:`classify_critical_point` names a critical point from its Hessian's eigenvalues.
* :func:`scalar_linear_net` and :func:`derivatives_at_origin`: the loss
  :math:`\tfrac12 (1 - w_d \cdots w_1)^2` of a depth-:math:`d` scalar linear network and its
  gradient, Hessian and mixed third derivative at the origin (Kawaguchi 2016: for :math:`d \ge 3`
  the origin is a saddle whose Hessian is zero).
* :func:`gd_escape_steps`: how long plain gradient descent needs to leave a saddle;
  :func:`predicted_escape_slope` the :math:`1/\log(1 + \eta|\lambda_{\min}|)` it should take per
  unit of :math:`\log(1/\text{distance})`.
* :func:`perturbed_gd`: the perturbed gradient descent of Jin, Ge, Netrapalli, Kakade & Jordan
  (2017), in the simple form the notebook's exercise specifies (:func:`ball_sample`).
* :func:`chain_gradient` / :func:`chain_escape_times`: a chain of :math:`d` saddles, a piecewise
  quadratic illustration of the mechanism of Du et al. (2017), where plain GD's escape times grow
  geometrically along the chain.
* :func:`saddle_race_update` / :func:`saddle_race_panel`: the classic race of seven optimizers away
  from the saddle :math:`x^2 - y^2`, scrubbed with a step slider over precomputed paths.
"""

from __future__ import annotations

import math
from functools import lru_cache

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["classify_critical_point", "scalar_linear_net", "derivatives_at_origin", "gd_escape_steps",
           "predicted_escape_slope", "ball_sample", "perturbed_gd", "chain_gradient", "chain_escape_times",
           "RACE_OPTIMIZERS", "saddle_race", "saddle_race_update", "saddle_race_panel"]


# ---------------------------------------------------------------------------------------------- classification

def classify_critical_point(hessian, tol: float = 1e-8) -> str:
    r"""``"minimum"`` (all eigenvalues > tol), ``"maximum"`` (all < -tol), ``"strict saddle"`` (some eigenvalue
    < -tol and some > tol), else ``"degenerate"`` (an eigenvalue in [-tol, tol] decides nothing by itself).

    The Hessian is symmetrized first, ``(H + H^T)/2``; its eigenvalues come from ``torch.linalg.eigvalsh``.
    """
    h = torch.as_tensor(hessian, dtype=torch.float64)
    eigenvalues = torch.linalg.eigvalsh((h + h.T) / 2)
    low, high = float(eigenvalues.min()), float(eigenvalues.max())
    if low > tol:
        return "minimum"
    if high < -tol:
        return "maximum"
    if low < -tol and high > tol:
        return "strict saddle"
    return "degenerate"


# ---------------------------------------------------------------------------------------------- linear nets

def scalar_linear_net(w: torch.Tensor) -> torch.Tensor:
    r"""The loss :math:`\tfrac12 (1 - w_d \cdots w_1)^2` of a scalar linear network (target 1, input 1)."""
    return 0.5 * (1.0 - torch.prod(w)) ** 2


def derivatives_at_origin(depth: int) -> dict:
    """Gradient, Hessian (and its eigenvalues) and the third derivative d^3 f / dw_1 dw_2 dw_3 at w = 0."""
    w = torch.zeros(depth, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(scalar_linear_net, w)
    hess = torch.autograd.functional.hessian(scalar_linear_net, w)
    result = {"gradient": grad, "hessian": hess, "eigenvalues": torch.linalg.eigvalsh(hess)}
    if depth >= 3:
        def hessian_fn(v):
            return torch.autograd.functional.hessian(scalar_linear_net, v, create_graph=True)
        third = torch.autograd.functional.jacobian(hessian_fn, w)  # (d, d, d)
        result["third"] = third[0, 1, 2]
    return result


# ---------------------------------------------------------------------------------------------- escape times

def gd_escape_steps(grad_fn, x0, lr: float, escaped, max_steps: int = 100_000) -> int | None:
    """The first k with ``escaped(x_k)`` for gradient descent ``x_{k+1} = x_k - lr * grad_fn(x_k)``, else ``None``."""
    x = torch.as_tensor(x0, dtype=torch.float64).clone()
    for k in range(max_steps + 1):
        if escaped(x):
            return k
        x = x - lr * grad_fn(x)
    return None


def predicted_escape_slope(lr: float, lambda_min: float) -> float:
    r"""Steps per unit of :math:`\ln(1/\text{distance})`: near the saddle the unstable coordinate grows by
    :math:`1 + \eta|\lambda_{\min}|` per step, so the escape time is :math:`\ln(c/\delta)/\ln(1+\eta|\lambda_{\min}|)`."""
    return 1.0 / math.log1p(lr * abs(lambda_min))


# ---------------------------------------------------------------------------------------------- perturbed GD

def ball_sample(dim: int, radius: float, generator: torch.Generator | None, dtype=torch.float64) -> torch.Tensor:
    r"""A point uniform in the ball of ``radius`` in :math:`\mathbb R^{dim}`, drawn in this order:
    ``u = torch.randn(dim, generator=generator, dtype=dtype)``, ``u = u / ||u||``,
    ``r = radius * torch.rand((), generator=generator, dtype=dtype) ** (1 / dim)``; returns ``r * u``."""
    u = torch.randn(dim, generator=generator, dtype=dtype)
    u = u / torch.linalg.vector_norm(u)
    r = radius * torch.rand((), generator=generator, dtype=dtype) ** (1.0 / dim)
    return r * u


def perturbed_gd(grad_fn, x0, lr: float, radius: float, threshold: float, steps: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Perturbed gradient descent (after Jin et al. 2017), the rule of the notebook's exercise.

    For ``k = 0, ..., steps - 1``: ``g = grad_fn(x_k)``; if ``||g|| <= threshold`` then
    ``x_{k+1} = x_k + ball_sample(d, radius, generator)`` (a kick instead of a step), else
    ``x_{k+1} = x_k - lr * g``. Returns the iterates as a ``(steps + 1, d)`` tensor (``x0`` first).
    """
    x = torch.as_tensor(x0, dtype=torch.float64).clone().reshape(-1)
    points = [x.clone()]
    for _ in range(steps):
        g = grad_fn(x)
        if torch.linalg.vector_norm(g) <= threshold:
            x = x + ball_sample(x.numel(), radius, generator, x.dtype)
        else:
            x = x - lr * g
        points.append(x.clone())
    return torch.stack(points)


# ---------------------------------------------------------------------------------------------- saddle chains

def chain_gradient(x: torch.Tensor, gamma: float = 1.0, curvature: float = 1.0) -> torch.Tensor:
    r"""Gradient of a chain of saddles in :math:`\mathbb R^d` (a piecewise quadratic, an illustration only).

    The active saddle is the first coordinate ``i`` with ``|x_i| < 1``; there
    :math:`f = -\tfrac{\gamma}{2} x_i^2 + \tfrac{L}{2}\sum_{j>i} x_j^2` (coordinates before ``i`` are done
    and feel no force). Leaving saddle ``i`` (``|x_i|`` reaches 1) hands over to saddle ``i + 1``, whose
    unstable coordinate has been *shrinking* all along. Past the last saddle the gradient is zero.
    """
    g = torch.zeros_like(x)
    active = (x.abs() < 1).nonzero()
    if len(active) == 0:
        return g
    i = int(active[0])
    g[i] = -gamma * x[i]
    g[i + 1:] = curvature * x[i + 1:]
    return g


def chain_escape_times(d: int, lr: float = 0.1, delta: float = 1e-3, gamma: float = 1.0,
                       curvature: float = 1.0) -> list[int]:
    r"""Plain GD on :func:`chain_gradient` from :math:`x_0 = (\delta, \dots, \delta)`: steps spent at each saddle.

    Each phase is linear, so it is run in closed form on :math:`\ln|x_j|` (no underflow for long chains):
    the active coordinate is multiplied by :math:`1 + \eta\gamma` per step until it reaches 1, the later ones
    by :math:`1 - \eta L`. Equal, step by step, to iterating ``x - lr * chain_gradient(x)`` (tested).
    """
    grow, shrink = math.log1p(lr * gamma), math.log(abs(1.0 - lr * curvature))
    logs = [math.log(delta)] * d
    times = []
    for i in range(d):
        t = max(0, math.ceil(-logs[i] / grow - 1e-12))
        times.append(t)
        logs[i] += t * grow
        for j in range(i + 1, d):
            logs[j] += t * shrink
    return times


# ---------------------------------------------------------------------------------------------- the race

RACE_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")
"""Keys of :data:`course_lib.widgets.race.RACERS`: the classic seven of the saddle-point race."""

RACE_START = (1.0, 1e-6)
RACE_STEPS = 200


@lru_cache(maxsize=16)
def saddle_race(start: tuple = RACE_START, steps: int = RACE_STEPS, optimizers: tuple = RACE_OPTIMIZERS) -> dict:
    """``{key: Trajectory}``: each optimizer's run on ``saddle`` (x^2 - y^2) at the race module's default lr."""
    from .trajectories import run_trajectory
    from .surfaces import get_surface
    from .widgets.race import RACERS, default_lr

    surface = get_surface("saddle")
    runs = {}
    for key in optimizers:
        spec = RACERS[key]
        runs[key] = run_trajectory(spec.optimizer, surface, start, steps, lr=default_lr(surface, key), **spec.hparams)
    return runs


def saddle_race_update(step: int = RACE_STEPS, start: tuple = RACE_START, steps: int = RACE_STEPS,
                       optimizers=RACE_OPTIMIZERS) -> Figure:
    """The race after ``step`` steps: paths so far on the contour map (left), distance from the saddle (right).

    The runs are computed once (:func:`saddle_race`); moving the slider only redraws. ``step`` is clamped
    to ``[0, steps]``.
    """
    from matplotlib.ticker import MaxNLocator

    from .plotting import new_figure, optimizer_style
    from .surface_plots import legend_across, right_margin, surface_image
    from .surfaces import get_surface
    from .widgets.race import RACERS

    surface = get_surface("saddle")
    optimizers = tuple(k for k in optimizers if k in RACERS)
    runs = saddle_race(tuple(float(v) for v in start), int(steps), optimizers)
    try:
        step = int(min(max(int(step), 0), steps))
    except (TypeError, ValueError):
        step = steps
    columns = 4  # the legend: under both plots, in four columns
    fig, (ax_map, ax_dist) = new_figure(2, width=3.8, height=3.3, legend_rows=max(1, -(-len(runs) // columns)))
    right_margin(fig)
    surface_image(surface, ax_map)
    (x0, x1), (y0, y1) = surface.bounds
    for key, traj in runs.items():
        style = optimizer_style(key)  # the optimizer's colour and line style, as in every notebook
        pts = traj.points[:step + 1]
        pts = pts[torch.isfinite(pts).all(dim=1)]
        ax_map.plot(pts[:, 0], pts[:, 1], linewidth=1.2, **style)
        ax_map.plot(pts[-1:, 0], pts[-1:, 1], "o", color=style["color"], markersize=4)
        dist = torch.linalg.vector_norm(traj.points, dim=1)
        ax_dist.plot(range(len(dist)), dist, linewidth=0.6, alpha=0.35, **style)
        ax_dist.plot(range(step + 1), dist[:step + 1], linewidth=1.3,
                     label=f"{RACERS[key].label}: {float(dist[step]):.3g}", **style)
    ax_map.set_xlim(x0, x1)
    ax_map.set_ylim(y0, y1)
    ax_map.set_title(f"f = θ₁² − θ₂², step {step}", y=1.0)
    ax_dist.set_yscale("log")
    ax_dist.axvline(step, color="gray", linewidth=0.8, linestyle=":")
    ax_dist.set_xlabel("step $k$")
    ax_dist.set_ylabel(r"distance from the saddle $\|\theta_k\|$")
    ax_dist.set_title(f"start ({start[0]:.3g}, {start[1]:.3g}); legend: distance at step {step}", y=1.0)
    legend_across(fig, ax_dist, ncol=columns)
    for axis in (ax_map.xaxis, ax_map.yaxis, ax_dist.xaxis):
        axis.set_major_locator(MaxNLocator(4))
    return fig


def saddle_race_panel(steps: int = RACE_STEPS, start: tuple = RACE_START, optimizers=RACE_OPTIMIZERS):
    """A step slider over the precomputed race (:func:`saddle_race_update`), built with ``build_panel``."""
    import ipywidgets as widgets

    from .widgets._panel import build_panel, label, slider_style

    controls = {"step": widgets.IntSlider(value=min(40, steps), min=0, max=steps, step=1, description=label("step"),
                                          **slider_style())}
    return build_panel(saddle_race_update, controls,
                       fixed={"start": tuple(start), "steps": steps, "optimizers": tuple(optimizers)})
