r"""Panel of notebook 02: heavy-ball momentum on an ill-conditioned quadratic.

Sliders for the step size :math:`\eta`, the momentum :math:`\beta` and the condition number
:math:`\kappa` (with :math:`L = 1`). Three plots:

* the path on the contour map;
* the error :math:`\|\theta_k - \theta^\star\|` on a log scale, with :math:`\rho^k` times the first error
  (dashed, in heavy ball's colour) and gradient descent with its best step (black), for comparison;
* the map of the rate :math:`\rho(\eta, \beta)` over the whole :math:`(\eta, \beta)` plane, with the
  stability edge :math:`\eta L = 2 + 2\beta`, the two critical-damping curves
  :math:`\beta = (1 - \sqrt{\eta\lambda})^2` for :math:`\lambda = \mu, L`, the optimum (star) and the
  current point (circle).

Everything that does not depend on :math:`(\eta, \beta)` (the quadratic, the contour image and the
rate map) is computed once per :math:`\kappa` and cached, and the panel draws the figure's fixed part once
per :math:`(\kappa, \text{steps})` (a :class:`~course_lib.widgets._panel.FigureCache`), so a slider move only
runs heavy ball and draws its path, its error curve and its point.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator
from matplotlib.figure import Figure

from ..plotting import MAP_CMAP, PALETTE, loss_curve, new_figure, optimizer_style, trajectory
from ..surface_plots import (MAP_LABEL, THETA_LABELS, _power_label, colorbar_below, legend_under, map_colorbar,
                             right_margin)
from ..quadratics import (best_learning_rate, divergence_step, gradient_descent, heavy_ball,
                          ill_conditioned_quadratic, momentum_rate, momentum_rate_map, optimal_momentum,
                          single_threaded)
from ._panel import FigureCache, build_panel, label, slider_style

__all__ = ["momentum_update", "momentum_panel", "draw_rate_map", "MOMENTUM_KAPPAS", "MOMENTUM_BOUNDS"]

MOMENTUM_BOUNDS = ((-2.5, 2.5), (-2.5, 2.5))
MOMENTUM_START = (-2.0, 1.6)
MOMENTUM_KAPPAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
LR_MAX = 4.2  # with L = 1 heavy ball is stable only for lr < 2 + 2 beta < 4
BETA_MAX = 1.0
_RESOLUTION = 241
RATE_LABEL = r"speed $1 - \rho$ (log scale)"


@lru_cache(maxsize=16)
def _problem(kappa: float, angle: float):
    """The quadratic (L = 1), its log-scaled contour image and its map of 1 - rate: what a slider move reuses."""
    q = ill_conditioned_quadratic(kappa, L=1.0, angle=angle)
    (x0, x1), (y0, y1) = MOMENTUM_BOUNDS
    xs = torch.linspace(x0, x1, 160, dtype=torch.float64)
    ys = torch.linspace(y0, y1, 160, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    with torch.no_grad():
        excess = (q(grid) - q.min_value).clamp(min=1e-6).numpy()
    levels = np.geomspace(max(float(excess.min()), 1e-4), float(excess.max()), 12)
    lrs = torch.linspace(0.0, LR_MAX, _RESOLUTION, dtype=torch.float64)
    betas = torch.linspace(0.0, BETA_MAX, _RESOLUTION, dtype=torch.float64)
    speed = 1 - momentum_rate_map(lrs, betas, q.eigenvalues).numpy()
    speed[speed <= 0] = np.nan  # no convergence: drawn as the gray background
    return q, xs.numpy(), ys.numpy(), excess, levels, speed


def draw_rate_map(kappa: float, ax, *, lr: float | None = None, beta: float | None = None,
                  angle: float = math.pi / 6, colorbar: bool | str = True):
    r"""Heavy ball's rate :math:`\rho(\eta, \beta)` on the quadratic with ``L = 1`` and condition number ``kappa``.

    The color is the speed :math:`1 - \rho` on a log scale (bright: fast; magma, readable with colour-blindness),
    shown by a labelled colour bar (beside the axes; ``colorbar="below"``: under them; ``False``: none); grey, beyond the dashed edge
    :math:`\eta L = 2 + 2\beta`, does not converge. Dotted: the critical-damping curves
    :math:`\beta = (1 - \sqrt{\eta\lambda})^2` of :math:`\mu` and :math:`L`; star: the optimum;
    circle: ``(lr, beta)`` if given (in heavy ball's colour). Returns the axes.
    """
    q, _, _, _, _, speed = _problem(float(kappa), float(angle))
    image = ax.imshow(speed, origin="lower", extent=(0, LR_MAX, 0, BETA_MAX), aspect="auto", cmap=_rate_cmap(),
                      norm=LogNorm(vmin=1e-3, vmax=1.0), interpolation="nearest")
    edge_betas = np.linspace(0, BETA_MAX, 50)
    ax.plot(2 + 2 * edge_betas, edge_betas, color=PALETTE["sky blue"], linestyle="--", linewidth=1.2,
            label="edge ηL = 2 + 2β")
    eta = np.linspace(0, LR_MAX, 200)
    for lam in (q.mu, q.L):
        crit = (1 - np.sqrt(eta * lam)) ** 2
        keep = crit <= BETA_MAX
        ax.plot(eta[keep], crit[keep], color="white", linestyle=":", linewidth=1)
    lr_opt, beta_opt = optimal_momentum(q.mu, q.L)
    ax.plot([lr_opt], [beta_opt], marker="*", color="white", markeredgecolor="black", markersize=13,
            linestyle="none", label=f"optimum, ρ = {momentum_rate(lr_opt, beta_opt, q.eigenvalues):.3g}")
    if lr is not None and beta is not None:
        _mark_point(ax, lr, beta)
    ax.set_xlim(0, LR_MAX)
    ax.set_ylim(0, BETA_MAX)
    ax.set_xlabel(r"learning rate $\eta$ ($L = 1$)")
    ax.set_ylabel(r"momentum $\beta$")
    ax.set_facecolor("0.85")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    if colorbar == "below":
        colorbar_below(image, ax, RATE_LABEL, ticks=4)
    elif colorbar:
        map_colorbar(image, ax, RATE_LABEL, ticks=4)
    return ax


@lru_cache(maxsize=1)
def _rate_cmap():
    import matplotlib

    return matplotlib.colormaps["magma"].with_extremes(bad="0.85", under="black")


@single_threaded
def momentum_update(lr: float = 1.0, beta: float = 0.5, kappa: float = 100.0, steps: int = 100,
                    angle: float = math.pi / 6, start=MOMENTUM_START, figures: FigureCache | None = None) -> Figure:
    r"""Heavy ball with step size ``lr`` and momentum ``beta`` on the 2-D quadratic with ``L = 1`` and ``kappa``.

    Left: the path on the contour map. Middle: :math:`\|\theta_k - \theta^\star\|` (log scale) with
    :math:`\rho^k\,\|\theta_0 - \theta^\star\|` (dashed, in heavy ball's colour), and gradient descent with its
    best step :math:`2/(\mu + L)` (black).
    Right: the rate map (see :func:`draw_rate_map`) with ``(lr, beta)`` marked.
    A run that does not converge is cut where its error passes 100 times the start, or becomes
    non-finite, and marked "diverged at step k"; nothing raises. ``figures`` (the panel's): draw into the
    figure kept for ``(kappa, steps)``, whose maps, colour bars and gradient-descent curve are already there.
    """
    kappa, steps, angle = float(kappa), int(steps), float(angle)
    start = tuple(float(v) for v in start)
    build = partial(_fixed_part, kappa, steps, angle, start)
    fig = build() if figures is None else figures.get(("momentum", kappa, steps, angle, start), build)
    ax_map, ax_err, ax_rate = fig.axes[:3]
    q = _problem(kappa, angle)[0]
    x_star = q.minimizer
    with torch.no_grad():
        path = heavy_ball(q.A, q.b, torch.tensor(start, dtype=torch.float64), lr, beta, steps)
        errors = torch.linalg.vector_norm(path - x_star, dim=1)
    rate = momentum_rate(lr, beta, q.eigenvalues)
    threshold = 100 * float(errors[0]) if rate >= 1 else math.inf
    k_div = divergence_step(errors, threshold=threshold)
    heavy_ball_style = optimizer_style("heavy ball")

    trajectory(path, ax=ax_map, markersize=2.5, diverged_at=k_div, **heavy_ball_style)
    _title(ax_map, f"κ = {kappa:.4g}: η = {lr:.3g}, β = {beta:.3g}")

    k = np.arange(steps + 1)
    loss_curve(errors, ax=ax_err, label="heavy ball", diverged_at=k_div, **heavy_ball_style)
    if rate < 1:
        predicted = float(errors[0]) * rate ** k
        ax_err.plot(k, np.maximum(predicted, 1e-300), color=heavy_ball_style["color"], linestyle="--", linewidth=1.0,
                    label=r"$\rho^k\,\|\theta_0 - \theta^\star\|$: heavy ball's rate (compare slopes)")
    positive = errors[errors > 0]
    ax_err.set_ylim(bottom=max(1e-16, min(1e-3, float(positive.min()) if len(positive) else 1e-16)))
    ax_err.yaxis.set_major_locator(LogLocator(numticks=6))
    ax_err.yaxis.set_major_formatter(FuncFormatter(_power_label))  # plain "1e-5" labels: no mathtext to typeset
    ax_err.yaxis.set_minor_locator(NullLocator())  # ticks are the slowest thing to draw
    _title(ax_err, f"rate ρ = {rate:.4g}" + (" ≥ 1: no convergence" if rate >= 1 else ""))
    legend_under(ax_err, ncol=1)

    _mark_point(ax_rate, lr, beta)
    return fig


def _fixed_part(kappa: float, steps: int, angle: float, start: tuple) -> Figure:
    """What no slider but the condition number and the number of steps moves: the maps with their colour bars,
    gradient descent's error curve, the optimum's title."""
    q, xs, ys, excess, levels, _ = _problem(kappa, angle)
    with torch.no_grad():
        gd = gradient_descent(q.A, q.b, torch.tensor(start, dtype=torch.float64), best_learning_rate(q.mu, q.L),
                              steps)
        gd_errors = torch.linalg.vector_norm(gd - q.minimizer, dim=1)
    fig, (ax_map, ax_err, ax_rate) = new_figure(3, width=3.6, height=3.3, legend_rows=3)
    right_margin(fig, 0.25)
    image = ax_map.imshow(excess, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap=MAP_CMAP,
                          norm=LogNorm(vmin=levels[0], vmax=levels[-1]), interpolation="bilinear")
    ax_map.contour(xs, ys, excess, levels=levels, colors="0.45", linewidths=0.4, alpha=0.6)
    ax_map.plot([float(q.minimizer[0])], [float(q.minimizer[1])], marker="*", color="white", markeredgecolor="black",
                markersize=12, linestyle="none", zorder=4)  # above the path
    ax_map.set_xlim(*MOMENTUM_BOUNDS[0])
    ax_map.set_ylim(*MOMENTUM_BOUNDS[1])
    ax_map.set_aspect("equal")
    ax_map.xaxis.set_major_locator(MaxNLocator(5))
    ax_map.yaxis.set_major_locator(MaxNLocator(5))
    ax_map.set_xlabel(THETA_LABELS[0])
    ax_map.set_ylabel(THETA_LABELS[1])
    colorbar_below(image, ax_map, MAP_LABEL, ticks=4)  # three panels in a row: the bars go under the maps

    loss_curve(gd_errors, ax=ax_err, label="GD, best step η = 2/(μ+L)", xlabel="step $k$",
               ylabel=r"error $\|\theta_k - \theta^\star\|$", **optimizer_style("gd"))

    draw_rate_map(kappa, ax_rate, angle=angle, colorbar="below")
    lr_opt, beta_opt = optimal_momentum(q.mu, q.L)
    _title(ax_rate, f"optimum η* = {lr_opt:.3g}, β* = {beta_opt:.3g}")
    return fig


def _mark_point(ax, lr: float, beta: float):
    ax.plot([min(lr, LR_MAX)], [min(beta, BETA_MAX)], marker="o", color=optimizer_style("heavy ball")["color"],
            markeredgecolor="white", markeredgewidth=1.5, markersize=9, linestyle="none", label="(η, β)")


def _title(ax, text: str):
    # an explicit y skips matplotlib's automatic title placement, a third of the drawing time
    ax.set_title(text, y=1.0, pad=4)


def momentum_panel(lr: float = 1.0, beta: float = 0.5, kappa: float = 100.0, steps: int = 100):
    """Sliders for the step size (``L = 1``), the momentum, the condition number and the number of steps."""
    import ipywidgets as widgets

    kappa = min(MOMENTUM_KAPPAS, key=lambda value: abs(math.log(value / kappa)))
    controls = {
        "lr": widgets.FloatSlider(value=lr, min=0.05, max=LR_MAX, step=0.05, description=label("lr"),
                                  readout_format=".2f", **slider_style()),
        "beta": widgets.FloatSlider(value=beta, min=0.0, max=0.99, step=0.01, description=label("beta"),
                                    readout_format=".2f", **slider_style()),
        "kappa": widgets.SelectionSlider(options=list(MOMENTUM_KAPPAS), value=kappa,
                                         description=label("kappa"), **slider_style()),
        "steps": widgets.IntSlider(value=steps, min=10, max=300, step=10, description=label("steps"),
                                   **slider_style()),
    }
    # a move of the learning rate or the momentum redraws into the figure kept for (kappa, steps)
    return build_panel(momentum_update, controls, fixed=dict(figures=FigureCache()))
