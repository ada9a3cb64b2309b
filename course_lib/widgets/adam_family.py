r"""Panel of notebook 04: Adam's three knobs, :math:`\eta`, :math:`\beta_1` and :math:`\beta_2`, on a 2-D surface.

Three plots, for Adam (and, with the checkbox, AMSGrad with the same hyperparameters):

* the path on the contour map of the chosen surface;
* the loss against the step (:math:`f - f^\star` on a log scale where the minimum is known);
* the size of each step relative to the learning rate, :math:`\|\Delta\theta_k\|_\infty / \eta`.
  Adam's step is :math:`\eta\,\hat m_t / (\sqrt{\hat v_t} + \epsilon)` per coordinate. When
  :math:`\beta_1^2 < \beta_2` the Cauchy-Schwarz inequality bounds it, whatever the gradients:
  :math:`|m_t| / \sqrt{v_t} \le (1-\beta_1) / \sqrt{(1-\beta_2)(1-\beta_1^2/\beta_2)}`
  (:func:`step_bound`, 7.27 for the defaults; with gradients of steady size the steps are
  about :math:`\eta`). When :math:`\beta_1^2 \ge \beta_2` the momentum can outlive the scale
  that should tame it, and no bound holds.

A run that leaves a box 5 times the size of the surface's plot bounds (around their
centre) counts as diverged: the plots stop there and say "diverged at step k" (Adam moves
by about :math:`\eta` per step, so it cannot overflow the way gradient descent does; leaving
the map is how it fails). The runs are :func:`course_lib.trajectories.run_trajectory`
with :class:`course_lib.optim.Adam`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from matplotlib.figure import Figure

from ..optim import Adam
from ..plotting import PALETTE, loss_curve, mark_diverged, new_figure, optimizer_style, trajectory
from ..quadratics import single_threaded
from ..surface_plots import legend_under, light_ticks, right_margin, surface_image
from ..surfaces import get_surface
from ..trajectories import run_trajectory
from ._panel import build_panel, label, slider_style

__all__ = ["adam_update", "adam_panel", "step_bound", "escape_radius", "ADAM_SURFACES", "BETA1_VALUES",
           "BETA2_VALUES"]

ADAM_SURFACES = ("rosenbrock", "beale", "himmelblau", "ill_conditioned_quadratic",
                 "rotated_ill_conditioned_quadratic", "quartic_saddle")
BETA1_VALUES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
BETA2_VALUES = (0.5, 0.8, 0.9, 0.99, 0.999, 0.9999)
ESCAPE_FACTOR = 5.0


def escape_radius(surface) -> float:
    """Half-width of the box around the surface's plot bounds that a run must stay in (else: diverged)."""
    (x0, x1), (y0, y1) = get_surface(surface).bounds
    return ESCAPE_FACTOR * max(x1 - x0, y1 - y0) / 2


def step_bound(beta1: float, beta2: float) -> float:
    r"""The largest :math:`|m_t| / \sqrt{v_t}` of Adam over all gradient sequences, for large t (no bias correction).

    Cauchy-Schwarz: :math:`(1-\beta_1)/\sqrt{(1-\beta_2)(1-\beta_1^2/\beta_2)}` when
    :math:`\beta_1^2 < \beta_2`, else infinite.
    """
    if beta1 * beta1 >= beta2:
        return math.inf
    return (1 - beta1) / math.sqrt((1 - beta2) * (1 - beta1 * beta1 / beta2))


def _run(surface, start, steps, lr, beta1, beta2, amsgrad):
    try:  # pure, hashable inputs: a run already made (e.g. Adam when only the AMSGrad box changes) is reused
        key = tuple(float(v) for v in (start.tolist() if hasattr(start, "tolist") else start))
    except (TypeError, ValueError):
        key = None
    if key is None or len(key) != 2:
        return _fresh_run(surface, start, steps, lr, beta1, beta2, amsgrad)
    return _cached_run(surface, key, int(steps), float(lr), float(beta1), float(beta2), bool(amsgrad))


@lru_cache(maxsize=64)
def _cached_run(surface, start, steps, lr, beta1, beta2, amsgrad):
    return _fresh_run(surface, start, steps, lr, beta1, beta2, amsgrad)


def _fresh_run(surface, start, steps, lr, beta1, beta2, amsgrad):
    return run_trajectory(Adam, surface, start, steps, escape_radius=escape_radius(surface), lr=lr,
                          betas=(beta1, beta2), amsgrad=amsgrad)


def _step_sizes(points: torch.Tensor, lr: float, diverged_at) -> torch.Tensor:
    """:math:`\\|\\theta_k - \\theta_{k-1}\\|_\\infty / \\eta` for k = 1, 2, ... (up to the divergence)."""
    steps = (points[1:] - points[:-1]).abs().amax(dim=-1) / max(lr, 1e-300)
    return steps if diverged_at is None else steps[:max(diverged_at - 1, 1)]


@single_threaded
def adam_update(lr: float = 0.1, beta1: float = 0.9, beta2: float = 0.999, steps: int = 300,
                surface: str = "rosenbrock", amsgrad: bool = False, start=None) -> Figure:
    """Adam (and optionally AMSGrad) on ``surface`` from ``start`` (default: the surface's own start).

    Returns the figure: path on the contour map, loss curve, step size relative to ``lr``.
    A run that leaves the map by far is cut at its last point and marked "diverged at step k".
    """
    surf = get_surface(surface)
    start = surf.default_start if start is None else start
    runs = {"Adam": _run(surf, start, steps, lr, beta1, beta2, False)}
    if amsgrad:
        runs["AMSGrad"] = _run(surf, start, steps, lr, beta1, beta2, True)
    styles = {name: optimizer_style(name) for name in runs}  # the course's colour and line style of each

    fig, (ax_map, ax_loss, ax_step) = new_figure(3, width=3.6, height=3.3, legend_rows=3)
    right_margin(fig, 0.2)
    # the contour map is drawn once per surface and shown as a picture afterwards
    surface_image(surf, ax_map, mark=False, resolution=150, bar_below=True)  # three panels: the bar goes under
    if surf.minima:
        x, y = surf.minima[0]
        ax_map.plot(x, y, marker="*", color="white", markeredgecolor="black", markersize=12, linestyle="none")
    for x, y in surf.minima[1:]:
        ax_map.plot(x, y, marker="*", color="white", markeredgecolor="black", markersize=9, linestyle="none")
    known_min = surf.min_value is not None
    for name, run in runs.items():
        k = run.diverged_at
        trajectory(run.points, ax=ax_map, markersize=1.5, diverged_at=k, label=name, **styles[name])
        values = run.losses - surf.min_value if known_min else run.losses
        loss_curve(values, ax=ax_loss, log=known_min, diverged_at=k, label=name, xlabel="step $k$",
                   ylabel=r"$f(\theta_k) - f^\star$" if known_min else r"$f(\theta_k)$", **styles[name])
        sizes = _step_sizes(run.points, lr, k)
        loss_curve(sizes, ax=ax_step, x=torch.arange(1, len(sizes) + 1), log=True, xlabel="step $k$",
                   ylabel=r"step size $\|\Delta\theta_k\|_\infty / \eta$", **styles[name])
        if k is not None:
            mark_diverged(ax_step, k)
    ax_map.set_title(f"{surf.name.replace('_', ' ')}: η = {lr:.3g}", y=1.0)
    ax_loss.set_title(f"β₁ = {beta1:g}, β₂ = {beta2:g}", y=1.0)
    ax_step.axhline(1.0, color=PALETTE["grey"], linestyle=":", linewidth=1.0, label="step = η")
    bound = step_bound(beta1, beta2)
    if math.isfinite(bound):
        ax_step.axhline(bound, color=PALETTE["grey"], linestyle="--", linewidth=1.0, label=f"bound {bound:.3g} η")
        ax_step.set_title(f"β₁² < β₂: every step ≤ {bound:.3g} η", y=1.0)
    else:
        ax_step.set_title("β₁² ≥ β₂: steps unbounded", y=1.0)
    legend_under(ax_loss, ncol=1)
    legend_under(ax_step, ncol=1)
    # few ticks with plain labels, titles at a fixed height: most of a redraw is text layout
    for ax in (ax_map, ax_loss, ax_step):
        light_ticks(ax)
    return fig


def adam_panel(lr: float = 0.1, beta1: float = 0.9, beta2: float = 0.999, steps: int = 300,
               surface: str = "rosenbrock", amsgrad: bool = False):
    """Sliders for lr (log scale), beta1, beta2 and the number of steps; a surface menu; an AMSGrad checkbox."""
    import ipywidgets as widgets

    controls = {
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-3, max=0.5, step=0.1, description=label("lr"),
                                     readout_format=".3g", **slider_style()),
        "beta1": widgets.SelectionSlider(options=BETA1_VALUES, value=_nearest(beta1, BETA1_VALUES),
                                         description=label("beta1"), **slider_style()),
        "beta2": widgets.SelectionSlider(options=BETA2_VALUES, value=_nearest(beta2, BETA2_VALUES),
                                         description=label("beta2"), **slider_style()),
        "steps": widgets.IntSlider(value=steps, min=10, max=1000, step=10, description=label("steps"),
                                   **slider_style()),
        "surface": widgets.Dropdown(options=ADAM_SURFACES, value=surface, description=label("surface")),
        "amsgrad": widgets.Checkbox(value=amsgrad, description="also AMSGrad"),
    }
    return build_panel(adam_update, controls)


def _nearest(value: float, options) -> float:
    return min(options, key=lambda option: abs(option - value))
