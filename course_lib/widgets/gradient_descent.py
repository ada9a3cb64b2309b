"""Panels of notebooks 00 and 01: Taylor models, gradient descent on a quadratic, batch size."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from matplotlib.figure import Figure

from ..data import make_linear_regression
from ..plotting import PALETTE, contour, legend_below, loss_curve, new_figure, optimizer_style, trajectory
from ..surface_plots import MAP_LABEL, light_ticks, map_colorbar, right_margin
from ..quadratics import (best_learning_rate, convergence_rate, divergence_step, gd_iterates,
                          ill_conditioned_quadratic, minibatch_sgd, single_threaded)
from ._panel import build_panel, label, slider_style

__all__ = ["gd_quadratic_update", "gd_quadratic_panel", "batch_size_update", "batch_size_panel",
           "taylor_update", "taylor_panel", "banana", "BATCH_SIZES", "GD_BOUNDS", "GD_START"]


def _map(f, bounds, ax, *, minimum):
    """A contour map with a colour bar whose ticks are few and plain (fast to redraw)."""
    contour(f, bounds, ax=ax, minimum=minimum, bar=None)
    map_colorbar(ax.collections[0], ax, MAP_LABEL)
    return ax


# --------------------------------------------------------------------------- notebook 01: GD on a quadratic

GD_BOUNDS = ((-2.5, 2.5), (-2.5, 2.5))
GD_START = (-2.0, 1.6)


@single_threaded
def gd_quadratic_update(lr: float = 0.5, kappa: float = 10.0, steps: int = 40, angle: float = math.pi / 6,
                        start=GD_START) -> Figure:
    r"""Gradient descent on a 2-D quadratic with ``L = 1`` and condition number ``kappa``.

    Left: the trajectory on the contour map. Right: the excess loss :math:`f(\theta_k) - f^\star`
    (log scale) with the bound :math:`\rho^{2k}\,(f(\theta_0) - f^\star)`, :math:`\rho = \max_i|1 - \eta\lambda_i|`.
    A run whose loss becomes non-finite or 100 times its start is cut there and marked "diverged at step k".
    """
    q = ill_conditioned_quadratic(kappa, L=1.0, angle=angle)
    x0 = torch.tensor(start, dtype=torch.float64)
    with torch.no_grad():
        iterates = gd_iterates(q.A, q.b, x0, lr, steps)
        excess = q(iterates) - q.min_value
    k_div = divergence_step(excess, threshold=100 * float(excess[0]))
    rate = convergence_rate(lr, q.eigenvalues)
    best = best_learning_rate(q.mu, q.L)

    fig, (ax_map, ax_loss) = new_figure(2, width=3.8, height=3.3, legend_rows=1)
    right_margin(fig)
    _map(q, GD_BOUNDS, ax_map, minimum=q.minimizer)
    gd = optimizer_style("gd")
    trajectory(iterates, ax=ax_map, diverged_at=k_div, **gd)
    ax_map.set_title(f"κ = {kappa:.3g}, η = {lr:.3g}  (best η = {best:.3g})", y=1.0)  # as the sliders show them

    loss_curve(excess, ax=ax_loss, diverged_at=k_div, label="gradient descent", xlabel="step $k$",
               ylabel=r"$f(\theta_k) - f^\star$", **gd)
    k = torch.arange(steps + 1, dtype=torch.float64)
    with torch.no_grad():
        bound = float(excess[0]) * rate ** (2 * k)
    if k_div is not None:
        bound, k = bound[:max(k_div, 1)], k[:max(k_div, 1)]
    loss_curve(bound, ax=ax_loss, x=k, linestyle="--", color=PALETTE["grey"],
               label=r"bound $\rho^{2k}\,(f(\theta_0)-f^\star)$")
    ax_loss.set_title(f"rate ρ = {rate:.4g}" + ("  (ρ ≥ 1: no convergence)" if rate >= 1 else ""), y=1.0)
    legend_below(ax_loss)
    light_ticks(ax_map)  # few ticks, plain labels, titles at a fixed height: most of a redraw is text layout
    light_ticks(ax_loss)
    return fig


def gd_quadratic_panel(lr: float = 0.5, kappa: float = 10.0, steps: int = 40):
    """Sliders for the step size (as a multiple of 1/L, L = 1) and the condition number."""
    import ipywidgets as widgets

    controls = {
        "lr": widgets.FloatSlider(value=lr, min=0.05, max=2.5, step=0.05, description=label("lr"),
                                  readout_format=".2f", **slider_style()),
        "kappa": widgets.FloatLogSlider(value=kappa, base=10, min=0, max=3, step=0.1,
                                        description=label("kappa"), **slider_style()),
        "steps": widgets.IntSlider(value=steps, min=5, max=200, step=5, description=label("steps"),
                                   **slider_style()),
    }
    return build_panel(gd_quadratic_update, controls)


# --------------------------------------------------------------------------- notebook 01: batch size

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 500)


@lru_cache(maxsize=4)
def _regression(seed: int = 0):
    data = make_linear_regression(n=500, d=10, noise_std=0.5, kappa=10.0, seed=seed)
    grads_at_opt = data.per_sample_grads(data.w_star)
    trace_S = float((grads_at_opt ** 2).sum(1).mean())  # tr of the per-sample gradient covariance at w*
    L = float(torch.linalg.eigvalsh(data.hessian)[-1])
    return data, trace_S, L


@single_threaded
def batch_size_update(batch_size: int = 8, lr: float = 0.05, epochs: int = 10, decay: bool = False,
                      seed: int = 0) -> Figure:
    r"""Mini-batch SGD on the course's linear regression (n = 500, d = 10), from ``w = 0``.

    Left: excess loss against epochs (passes over the data, i.e. equal numbers of
    per-sample gradients), next to full-batch gradient descent with step size :math:`1/L`, and the
    with-replacement noise-floor estimate :math:`\eta\,\mathrm{tr}(S)/(4B)`. With ``decay`` the
    step size is :math:`\eta/(1 + t)` after :math:`t` epochs. Right: the iterates in the plane of the
    first and last weight (the steepest and the flattest feature), around the minimizer.
    """
    data, trace_S, L = _regression(seed)
    batch_size = int(batch_size)
    steps_per_epoch = math.ceil(data.n / batch_size)
    schedule = (lambda k: 1.0 / (1.0 + k / steps_per_epoch)) if decay else None
    w0 = torch.zeros(data.d, dtype=data.X.dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        path = minibatch_sgd(data.X, data.y, w0, lr, batch_size, epochs, gen, lr_schedule=schedule, return_path=True)
        excess = data.loss(path) - data.loss_star
        full = minibatch_sgd(data.X, data.y, w0, 1.0 / L, data.n, epochs, gen, return_path=True)
        excess_full = data.loss(full) - data.loss_star
    k_div = divergence_step(excess, threshold=1e3 * float(excess[0]))

    fig, (ax_loss, ax_w) = new_figure(2, width=3.8, height=3.3, legend_rows=2)
    right_margin(fig)
    t = torch.arange(len(excess), dtype=torch.float64) / steps_per_epoch
    sgd = optimizer_style("sgd")
    # full-batch gradient descent is the reference here: grey, dashed; mini-batch SGD in its own style
    loss_curve(excess_full, x=torch.arange(len(excess_full), dtype=torch.float64), ax=ax_loss,
               label="full batch, η = 1/L", marker="o", markersize=3, color=PALETTE["grey"], linestyle="--",
               linewidth=1)
    loss_curve(excess, x=t, ax=ax_loss, label=f"SGD, B = {batch_size}", xlabel="epochs (passes over the data)",
               ylabel=r"$f(w) - f^\star$", linewidth=0.8, diverged_at=k_div, **sgd)
    if batch_size < data.n and not decay:
        floor = lr * trace_S / (4 * batch_size)
        ax_loss.axhline(floor, color=PALETTE["grey"], linestyle=":", linewidth=1.0,
                        label=r"noise floor $\eta\,\mathrm{tr}S/(4B)$")
    ax_loss.set_title(f"B = {batch_size}, η = {lr:.3g}" + (", decaying" if decay else ""), y=1.0)
    legend_below(ax_loss)

    w_star = data.w_star
    points = path[:, [0, -1]] - w_star[[0, -1]]
    trajectory(points, ax=ax_w, marker=".", markersize=1.5, alpha=0.7, diverged_at=k_div, **sgd)
    ax_w.plot([0], [0], marker="*", color="white", markeredgecolor="black", markersize=12, linestyle="none")
    ax_w.set_xlabel(r"$w_1 - w_1^\star$ (steep)")
    ax_w.set_ylabel(r"$w_{10} - w_{10}^\star$ (flat)")
    ax_w.set_title("iterates around the minimizer", y=1.0)
    if k_div is not None:
        ax_w.set_xlim(-3, 3)
        ax_w.set_ylim(-3, 3)
    return fig


def batch_size_panel(batch_size: int = 8, lr: float = 0.05, epochs: int = 10, decay: bool = False):
    """A batch-size slider (1 .. n, powers of two), a step-size slider, epochs and a decay switch."""
    import ipywidgets as widgets

    controls = {
        "batch_size": widgets.SelectionSlider(options=list(BATCH_SIZES), value=batch_size,
                                              description=label("batch_size"), **slider_style()),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-3, max=0.3, step=0.05, description=label("lr"),
                                     readout_format=".3g", **slider_style()),
        "epochs": widgets.IntSlider(value=epochs, min=1, max=30, description=label("epochs"), **slider_style()),
        "decay": widgets.Checkbox(value=decay, description="decay η / (1 + epoch)"),
    }
    return build_panel(batch_size_update, controls)


# --------------------------------------------------------------------------- notebook 00: Taylor models

TAYLOR_BOUNDS = ((-2.0, 2.0), (-1.0, 3.0))


def banana(xy: torch.Tensor) -> torch.Tensor:
    """A gentle Rosenbrock-type valley, ``(1 - x)^2 + 5 (y - x^2)^2``, on a batch ``(..., 2)``."""
    x, y = xy[..., 0], xy[..., 1]
    return (1 - x) ** 2 + 5 * (y - x ** 2) ** 2


def _grad_and_curvature(f, point: torch.Tensor, direction: torch.Tensor):
    """``g . v`` and ``v^T H v`` at ``point``: one gradient, one Hessian-vector product (double backward)."""
    x = point.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    (hv,) = torch.autograd.grad(g @ direction, x)
    return float((g @ direction).detach()), float(hv @ direction)


@single_threaded
def taylor_update(x: float = -0.5, y: float = 1.0, angle: float = 0.0, radius: float = 1.0) -> Figure:
    r"""The function along a line through ``(x, y)`` in the direction ``angle`` (degrees), and its Taylor models.

    :math:`\varphi(t) = f(p + t v)` against :math:`\varphi(0) + t\, g^\top v` (first order) and
    :math:`+\ \tfrac{t^2}{2} v^\top H v` (second order), with :math:`v^\top H v` from one Hessian-vector product.
    """
    point = torch.tensor([x, y], dtype=torch.float64)
    theta = math.radians(angle)
    v = torch.tensor([math.cos(theta), math.sin(theta)], dtype=torch.float64)
    slope, curvature = _grad_and_curvature(banana, point, v)
    t = torch.linspace(-radius, radius, 201, dtype=torch.float64)
    with torch.no_grad():
        phi = banana(point + t[:, None] * v)
    f0 = float(banana(point))
    first = f0 + slope * t
    second = first + 0.5 * curvature * t ** 2

    fig, (ax_map, ax_line) = new_figure(2, width=3.8, height=3.3, legend_rows=2)
    right_margin(fig)
    _map(banana, TAYLOR_BOUNDS, ax_map, minimum=(1.0, 1.0))
    segment = point + torch.stack([t[0], t[-1]])[:, None] * v
    ax_map.plot(segment[:, 0].numpy(), segment[:, 1].numpy(), color=PALETTE["vermillion"], linewidth=1.5)
    ax_map.plot([x], [y], marker="o", color=PALETTE["vermillion"])
    ax_map.set_title(r"the line $p + t\,v$", y=1.0)

    ax_line.plot(t.numpy(), phi.numpy(), color="black", label=r"$f(p + t\,v)$")
    ax_line.plot(t.numpy(), first.numpy(), linestyle="--", color=PALETTE["blue"], label="1st order")
    ax_line.plot(t.numpy(), second.numpy(), linestyle="-.", color=PALETTE["vermillion"],
                 label=r"2nd order (uses $Hv$)")
    lo, hi = float(phi.min()), float(phi.max())
    pad = 0.15 * (hi - lo) + 1e-3
    ax_line.set_ylim(lo - pad, hi + pad)
    ax_line.set_xlabel(r"$t$ (distance along $v$)")
    ax_line.set_ylabel(r"$f(p + t\,v)$ and its models")
    ax_line.set_title(f"$g^\\top v$ = {slope:.3g},  $v^\\top H v$ = {curvature:.3g}".replace("-", "−"), y=1.0)
    legend_below(ax_line)
    return fig


def taylor_panel(x: float = -0.5, y: float = 1.0, angle: float = 0.0, radius: float = 1.0):
    """Sliders for the point, the direction and the length of the line."""
    import ipywidgets as widgets

    controls = {
        "x": widgets.FloatSlider(value=x, min=-1.8, max=1.8, step=0.1, description=label("point_x"),
                                 **slider_style()),
        "y": widgets.FloatSlider(value=y, min=-0.8, max=2.8, step=0.1, description=label("point_y"),
                                 **slider_style()),
        "angle": widgets.FloatSlider(value=angle, min=0, max=180, step=5, readout_format=".0f",
                                     description=label("angle"), **slider_style()),
        "radius": widgets.FloatSlider(value=radius, min=0.1, max=1.5, step=0.1,
                                      description=label("radius"), **slider_style()),
    }
    return build_panel(taylor_update, controls)

