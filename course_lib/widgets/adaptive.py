r"""Panel of notebook 03: gradient descent, Adagrad, RMSprop and Adadelta side by side on a 2-D surface.

One slider per method for its step size (and Adadelta's :math:`\epsilon`, which sets the size of its
first steps), a switch for centered RMSprop, the number of steps and the surface: by default the
axis-aligned valley ``ill_conditioned_quadratic`` (:math:`\tfrac12(x^2 + 25y^2)`), where rescaling each
coordinate is exactly what the valley needs, and its 45-degree turned twin, where it is not.

Two plots: the four paths on the contour map (with its colour bar), and :math:`f(\theta_k) - f^\star` against
the step on a log scale; each method in its course-wide colour and line style, the legend under the plots. A run that leaves the box of half-width :data:`ESCAPE` around the surface, or whose loss stops
being finite, is cut at that step and the plots say "<method> diverged at step k"; nothing raises.
The runs use :func:`course_lib.trajectories.run_trajectory` with :mod:`course_lib.optim`'s classes;
the contour image of each surface is computed once and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..optim import SGD, Adadelta, Adagrad, RMSprop
from ..plotting import LEGEND_SIZE, MAP_CMAP, PALETTE, loss_curve, new_figure, optimizer_style
from ..quadratics import single_threaded
from ..surface_plots import cached_background, legend_under, light_ticks, right_margin
from ..surfaces import get_surface
from ..trajectories import run_trajectory
from ._panel import build_panel, label, slider_style

__all__ = ["adaptive_update", "adaptive_panel", "adaptive_runs", "ADAPTIVE_SURFACES", "ADAPTIVE_METHODS"]

ADAPTIVE_SURFACES = ("ill_conditioned_quadratic", "rotated_ill_conditioned_quadratic", "rosenbrock", "beale")
ADAPTIVE_METHODS = ("gradient descent", "Adagrad", "RMSprop", "Adadelta")
STYLES = {name: optimizer_style(name) for name in ADAPTIVE_METHODS}
"""Each method's colour and line style (the course's, :func:`course_lib.plotting.optimizer_style`)."""
COLORS = {name: style["color"] for name, style in STYLES.items()}
ESCAPE = 1e4  # a run farther than this from the centre of the plot counts as diverged
_FLOOR = 1e-16  # f - f* below this is drawn at this level (log scale)


@lru_cache(maxsize=8)
def _contour_image(name: str, resolution: int = 120):
    """The grid and the log-scaled values of ``f - min f`` over the surface's bounds: what every redraw reuses."""
    surface = get_surface(name)
    (x0, x1), (y0, y1) = surface.bounds
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    with torch.no_grad():
        z = surface(grid).numpy()
    shift = z - z.min()
    top = max(float(shift.max()), 1e-12)
    floor = max(top * 1e-4, 1e-12)
    levels = np.geomspace(floor, top, 18)
    return xs.numpy(), ys.numpy(), np.maximum(shift, floor * 0.5), levels


def adaptive_runs(surface: str = "ill_conditioned_quadratic", *, lr_gd: float = 0.07, lr_adagrad: float = 0.5,
                  lr_rmsprop: float = 0.05, lr_adadelta: float = 1.0, eps_adadelta: float = 1e-6,
                  centered: bool = False, steps: int = 100, start=None) -> dict:
    """The four runs of the panel: ``{method: Trajectory}`` (points ``(steps+1, 2)``, losses, ``diverged_at``)."""
    surface = get_surface(surface)
    start = surface.default_start if start is None else start
    try:  # a hashable start lets a slider move rerun only the method whose setting changed
        key = tuple(float(v) for v in (start.tolist() if hasattr(start, "tolist") else start))
    except (TypeError, ValueError):
        key = None
    setups = {
        "gradient descent": (SGD, (("lr", float(lr_gd)),)),
        "Adagrad": (Adagrad, (("lr", float(lr_adagrad)),)),
        "RMSprop": (RMSprop, (("lr", float(lr_rmsprop)), ("centered", bool(centered)))),
        "Adadelta": (Adadelta, (("lr", float(lr_adadelta)), ("eps", float(eps_adadelta)))),
    }
    if key is None or len(key) != 2:
        return {name: run_trajectory(cls, surface, start, int(steps), escape_radius=ESCAPE, **dict(hparams))
                for name, (cls, hparams) in setups.items()}
    return {name: _cached_run(cls, surface, key, int(steps), hparams) for name, (cls, hparams) in setups.items()}


@lru_cache(maxsize=128)
def _cached_run(cls, surface, start: tuple, steps: int, hparams: tuple):
    """One run on pure, hashable inputs (the runs are deterministic): shared between slider moves."""
    return run_trajectory(cls, surface, start, steps, escape_radius=ESCAPE, **dict(hparams))


@single_threaded
def adaptive_update(surface: str = "ill_conditioned_quadratic", lr_gd: float = 0.07, lr_adagrad: float = 0.5,
                    lr_rmsprop: float = 0.05, lr_adadelta: float = 1.0, eps_adadelta: float = 1e-6,
                    centered: bool = False, steps: int = 100, start=None) -> Figure:
    r"""Gradient descent, Adagrad, RMSprop (``centered`` or not) and Adadelta from the same start on ``surface``.

    Left: the paths on the contour map (square: the start, star: the minimum). Right:
    :math:`f(\theta_k) - f^\star` on a log scale. A diverged run is drawn up to its last finite point and
    named in a "... diverged at step k" note on both plots.
    """
    surf = get_surface(surface)
    runs = adaptive_runs(surface, lr_gd=lr_gd, lr_adagrad=lr_adagrad, lr_rmsprop=lr_rmsprop,
                         lr_adadelta=lr_adadelta, eps_adadelta=eps_adadelta, centered=centered, steps=steps,
                         start=start)
    f_star = surf.min_value if surf.min_value is not None else 0.0

    fig, (ax_map, ax_loss) = new_figure(2, width=3.9, height=3.4, legend_rows=1)
    right_margin(fig)
    xs, ys, z, levels = _contour_image(surf.name)

    def draw_contours(ax):
        norm = LogNorm(vmin=levels[0], vmax=levels[-1])
        ax.contourf(xs, ys, z, levels=levels, norm=norm, cmap=MAP_CMAP)
        ax.contour(xs, ys, z, levels=levels, norm=norm, colors="0.45", linewidths=0.4, alpha=0.6)

    # the contour map is drawn once per surface and shown as a picture afterwards
    bounds_key = tuple(tuple(float(v) for v in pair) for pair in surf.bounds)
    cached_background(ax_map, ("adaptive", surf.name, bounds_key), surf.bounds, draw_contours, owner=surf)
    for m in surf.minima:
        ax_map.plot(*m, marker="*", color="white", markeredgecolor="black", markersize=12, linestyle="none")
    (x0, x1), (y0, y1) = surf.bounds

    notes = []
    for name, run in runs.items():
        k = run.diverged_at
        points = run.points if k is None else run.points[:max(k, 1)]
        pts = points.numpy()
        style = STYLES[name]
        ax_map.plot(pts[:, 0], pts[:, 1], marker="o", markersize=2.0, linewidth=1.2, markeredgecolor=style["color"],
                    label=name, **style)
        ax_map.plot(pts[0, 0], pts[0, 1], marker="s", color="black", markersize=5, linestyle="none")
        excess = (run.losses - f_star).clamp(min=_FLOOR)
        final = float(excess[-1]) if k is None else float("nan")
        label = f"{name}: {final:.2g}" if k is None else f"{name}: diverged"
        loss_curve(excess, ax=ax_loss, diverged_at=None if k is None else max(k, 1), label=label, linewidth=1.3,
                   xlabel="step $k$", ylabel=r"$f(\theta_k) - f^\star$", **style)
        if k is not None:
            notes.append(f"{name} diverged at step {k}")
    # a run that blew up would squash the other curves: keep the top within 1000 times the start
    start_excess = max(float(run.losses[0]) - f_star for run in runs.values())
    bottom, top = ax_loss.get_ylim()
    ax_loss.set_ylim(bottom, min(top, 1e3 * max(start_excess, _FLOOR)))
    # loss_curve writes a centred note per divergence; replace them by one stacked list
    for text in list(ax_loss.texts):
        text.remove()
    for i, note in enumerate(notes):
        for ax in (ax_map, ax_loss):
            ax.text(0.03, 0.04 + 0.1 * i, note, transform=ax.transAxes, fontsize=LEGEND_SIZE,
                    color=PALETTE["vermillion"],
                    bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor=PALETTE["vermillion"]))
    ax_map.set_xlim(x0, x1)
    ax_map.set_ylim(y0, y1)
    ax_map.set_aspect("equal")
    # few ticks with plain labels, titles at a fixed height: most of a redraw is text layout
    light_ticks(ax_map)
    light_ticks(ax_loss)
    ax_map.set_title(f"{surf.name.replace('_', ' ')}, {int(steps)} steps", y=1.0)
    ax_loss.set_title("the loss (legend: its value at the last step)", y=1.0)
    legend_under(ax_loss, ncol=4, across=True)
    return fig


def adaptive_panel(surface: str = "ill_conditioned_quadratic", lr_gd: float = 0.07, lr_adagrad: float = 0.5,
                   lr_rmsprop: float = 0.05, lr_adadelta: float = 1.0, eps_adadelta: float = 1e-6,
                   centered: bool = False, steps: int = 100):
    """A surface menu; in accordion sections a log-scale learning-rate slider per method ("learning rates"), and
    Adadelta's ε, centered RMSprop and the number of steps ("ε, centering and steps")."""
    import ipywidgets as widgets

    def log_slider(value, low, high, description, readout=".3g"):
        return widgets.FloatLogSlider(value=value, base=10, min=low, max=high, step=0.05, description=description,
                                      readout_format=readout, **slider_style())

    controls = {
        "surface": widgets.Dropdown(options=list(ADAPTIVE_SURFACES), value=surface, description=label("surface")),
        "lr_gd": log_slider(lr_gd, -4, 0, label("lr", "GD")),
        "lr_adagrad": log_slider(lr_adagrad, -3, 1, label("lr", "Adagrad")),
        "lr_rmsprop": log_slider(lr_rmsprop, -4, 0, label("lr", "RMSprop")),
        "lr_adadelta": log_slider(lr_adadelta, -2, 2, label("lr", "Adadelta")),
        "eps_adadelta": log_slider(eps_adadelta, -10, -1, label("eps", "Adadelta"), readout=".1e"),
        "centered": widgets.Checkbox(value=centered, description="centered RMSprop"),
        "steps": widgets.IntSlider(value=steps, min=10, max=500, step=10, description=label("steps"),
                                   **slider_style()),
    }
    groups = {"learning rates": ["lr_gd", "lr_adagrad", "lr_rmsprop", "lr_adadelta"],
              "ε, centering and steps": ["eps_adadelta", "centered", "steps"]}
    return build_panel(adaptive_update, controls, groups=groups)
