"""Plots the notebooks share: contour maps with trajectories, loss curves, rates.

Plots of the 2-D test surfaces (contours with critical points, paths, a 3-D view, basins
of attraction, Hessian eigen-directions) are in :mod:`course_lib.surface_plots` and can be
reached from here as well (``plotting.basin_map``).

Every function takes ``ax=None`` (then it makes a new figure through pyplot, so a
notebook cell ends with ``plt.show()``) and returns the axes it drew on, so that
plots compose: ``ax = contour(f, bounds); trajectory(points, ax=ax)``.
Widgets pass the axes of a figure they made themselves.

Figures are small and use a modest resolution (:data:`DPI`) so that notebooks
with stored outputs stay light.
"""

from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

__all__ = ["DPI", "subplots", "new_figure", "contour", "trajectory", "loss_curve", "mark_diverged", "rate_vs_lr"]

# Plots of course_lib.surfaces live in course_lib.surface_plots (one idea per module) and are
# reachable from here too; they load on first use, see __getattr__ at the end.
_SURFACE_PLOTS = ("surface_contour", "surface_trajectories", "surface_3d", "basin_map", "hessian_directions",
                  "critical_points", "surface_image")

DPI = 72
_COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _to_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def subplots(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.2, **kwargs):
    """``plt.subplots`` with the course's figure size per panel and :data:`DPI`."""
    kwargs.setdefault("dpi", DPI)
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.2):
    """A figure outside pyplot (not shown automatically, never leaks): what widget update functions draw on.

    Its margins are fixed rather than computed by a layout engine: that halves the time a
    widget needs to redraw.
    """
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI)
    fig.subplots_adjust(left=0.7 / (width * ncols), right=1 - 0.15 / (width * ncols), bottom=0.5 / (height * nrows),
                        top=1 - 0.3 / (height * nrows), wspace=0.35, hspace=0.35)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, (axes[0, 0] if axes.size == 1 else axes.ravel())


def _ax(ax: Axes | None) -> Axes:
    return subplots()[1] if ax is None else ax


def contour(f: Callable[[torch.Tensor], torch.Tensor], bounds: Sequence[Sequence[float]], ax: Axes | None = None, *,
            levels: int = 20, resolution: int = 150, log_levels: bool = True, filled: bool = True,
            cmap: str = "viridis", minimum: Sequence[float] | None = None) -> Axes:
    """Level sets of a 2-D function ``f`` (called once on a ``(res, res, 2)`` float64 grid).

    ``bounds = ((xmin, xmax), (ymin, ymax))``. With ``log_levels`` the levels are spaced
    geometrically above the grid's minimum, so that narrow valleys stay visible.
    ``minimum`` marks a point (the minimizer) with a star.
    """
    ax = _ax(ax)
    (x0, x1), (y0, y1) = bounds
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    with torch.no_grad():
        z = _to_numpy(f(grid))
    if log_levels:
        shift = z - z.min()
        top = max(float(shift.max()), 1e-12)
        floor = max(top * 1e-4, 1e-12)
        lv = np.geomspace(floor, top, levels)
        kwargs = dict(levels=lv, norm=LogNorm(vmin=floor, vmax=top))
        z = np.maximum(shift, floor * 0.5)
        if filled:  # values below the lowest level (huge ranges, e.g. Beale's 10^5) still get its colour
            kwargs["extend"] = "min"
    else:
        kwargs = dict(levels=levels)
    draw = ax.contourf if filled else ax.contour
    draw(_to_numpy(xs), _to_numpy(ys), z, cmap=cmap, alpha=0.85 if filled else 1.0, **kwargs)
    if filled:
        kwargs.pop("extend", None)
        ax.contour(_to_numpy(xs), _to_numpy(ys), z, colors="white", linewidths=0.4, alpha=0.5, **kwargs)
    if minimum is not None:
        m = _to_numpy(minimum)
        ax.plot(m[0], m[1], marker="*", color="white", markeredgecolor="black", markersize=12, linestyle="none")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return ax


def trajectory(points, ax: Axes | None = None, *, label: str | None = None, color: str | None = None,
               marker: str = "o", markersize: float = 3.0, diverged_at: int | None = None, **kwargs) -> Axes:
    """A path of 2-D points ``(k, 2)`` as a polyline with markers; a start square.

    With ``diverged_at=k`` only the points before step ``k`` are drawn and the axes say so.
    """
    ax = _ax(ax)
    pts = _to_numpy(points)
    if diverged_at is not None:
        pts = pts[:max(diverged_at, 1)]
    pts = pts[np.isfinite(pts).all(axis=1)]
    line, = ax.plot(pts[:, 0], pts[:, 1], marker=marker, markersize=markersize, linewidth=1.2,
                    color=color, label=label, **kwargs)
    if len(pts):
        ax.plot(pts[0, 0], pts[0, 1], marker="s", color=line.get_color(), markersize=6, linestyle="none")
    if diverged_at is not None:
        mark_diverged(ax, diverged_at)
    return ax


def loss_curve(values, ax: Axes | None = None, *, x=None, label: str | None = None, log: bool = True,
               diverged_at: int | None = None, xlabel: str | None = None, ylabel: str | None = None,
               **kwargs) -> Axes:
    """A curve of values against ``x`` (default ``0, 1, ...``), on a log scale by default.

    Non-finite and non-positive values (on a log scale) are left out; with ``diverged_at=k``
    the curve stops before step ``k`` and the axes say "diverged at step k". The axis labels
    are set where given, or where the axes have none yet.
    """
    ax = _ax(ax)
    y = _to_numpy(values).ravel()
    xs = np.arange(len(y)) if x is None else _to_numpy(x).ravel()
    if diverged_at is not None:
        y, xs = y[:max(diverged_at, 1)], xs[:max(diverged_at, 1)]
    keep = np.isfinite(y) & (np.abs(y) < 1e100) & ((y > 0) if log else True)  # huge values break autoscaling
    ax.plot(xs[keep], y[keep], label=label, **kwargs)
    if log:
        ax.set_yscale("log")
    if xlabel is not None or not ax.get_xlabel():
        ax.set_xlabel(xlabel or "step")
    if ylabel is not None or not ax.get_ylabel():
        ax.set_ylabel(ylabel or "loss")
    if diverged_at is not None:
        mark_diverged(ax, diverged_at)
    return ax


def mark_diverged(ax: Axes, step: int) -> Axes:
    """Write "diverged at step k" across the axes (once)."""
    text = f"diverged at step {step}"
    if not any(t.get_text() == text for t in ax.texts):
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="crimson",
                bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor="crimson"))
    return ax


def rate_vs_lr(eigenvalues, ax: Axes | None = None, *, lrs=None, measured: dict | None = None,
               label: str = r"$\max_i |1-\eta\lambda_i|$") -> Axes:
    """The contraction factor of gradient descent on a quadratic as a function of the step size.

    Draws the curve, the line ``rate = 1`` (above it: divergence), the stability edge
    ``2/L`` and the best step ``2/(mu+L)``; ``measured`` ({lr: rate}) adds dots.
    """
    ax = _ax(ax)
    lam = _to_numpy(torch.as_tensor(eigenvalues)).ravel()
    mu, L = float(lam.min()), float(lam.max())
    lrs = np.linspace(0, 2.4 / L, 400) if lrs is None else _to_numpy(lrs)
    rates = np.abs(1 - np.outer(lrs, lam)).max(axis=1)
    ax.plot(lrs, rates, label=label, color=_COLORS[0])
    ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    ax.axvline(2 / L, color="crimson", linewidth=0.8, linestyle=":", label=r"$2/L$")
    best = 2 / (mu + L)
    ax.plot([best], [(L - mu) / (L + mu)], marker="*", markersize=11, color=_COLORS[1], linestyle="none",
            label=r"$\eta^\star = 2/(\mu+L)$")
    if measured:
        ax.plot(list(measured), list(measured.values()), "o", color="black", markersize=4, label="measured")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel("rate per step")
    ax.set_ylim(0, max(1.3, float(rates.max()) * 1.05))
    ax.legend(fontsize=8)
    return ax


def __getattr__(name: str):
    """``plotting.basin_map`` and friends: forwarded to :mod:`course_lib.surface_plots` (imported on first use)."""
    if name in _SURFACE_PLOTS:
        from . import surface_plots
        return getattr(surface_plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
