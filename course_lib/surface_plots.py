"""Pictures of the 2-D test surfaces of :mod:`course_lib.surfaces`.

* :func:`surface_contour`: level sets over the surface's bounds, critical points marked
  (minima: white stars, saddles: orange crosses, maxima: red triangles);
* :func:`surface_trajectories`: the same with the paths of several runs, "diverged at step k"
  in the legend; :func:`surface_image` is its cached, fast background for widgets;
* :func:`surface_3d`: a 3-D view, with paths lifted onto the surface;
* :func:`basin_map`: every start of a grid coloured by the minimum its run reaches;
* :func:`hessian_directions`: the Hessian's eigenvectors at a point, labelled with their eigenvalues.

As in :mod:`course_lib.plotting` (where these names are also reachable), every function takes
``ax=None`` and returns the axes it drew on.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .plotting import _COLORS, DPI, _ax, _to_numpy, contour, trajectory

__all__ = ["surface_contour", "surface_trajectories", "surface_3d", "basin_map", "hessian_directions",
           "critical_points", "surface_image", "cached_background", "light_ticks"]


_CRITICAL_STYLE = {"minimum": dict(marker="*", color="white", markersize=11),
                   "saddle": dict(marker="X", color="orange", markersize=8),
                   "maximum": dict(marker="^", color="red", markersize=7)}


def critical_points(surface, ax: Axes | None = None, *, kinds=("minimum", "saddle", "maximum"),
                    max_per_kind: int | None = None) -> Axes:
    """Mark a surface's listed minima (white stars), saddles (orange crosses) and maxima (red triangles).

    With ``max_per_kind`` a kind with more points than that is left out (Rastrigin has 40 saddles).
    """
    ax = _ax(ax)
    for kind in kinds:
        pts = np.array([p for p, k in surface.critical_points() if k == kind], dtype=np.float64).reshape(-1, 2)
        if len(pts) and (max_per_kind is None or len(pts) <= max_per_kind or kind == "minimum"):
            ax.plot(pts[:, 0], pts[:, 1], linestyle="none", markeredgecolor="black", markeredgewidth=0.6,
                    zorder=4, **_CRITICAL_STYLE[kind])
    return ax


def surface_contour(surface, ax: Axes | None = None, *, resolution: int = 150, levels: int = 20,
                    filled: bool = True, mark: bool = True, title: bool = True) -> Axes:
    """The level sets of a :class:`~course_lib.surfaces.Surface` over its ``bounds``, its critical points marked.

    Levels are spaced geometrically above the lowest value on the grid (see :func:`contour`),
    which suits valleys and bowls alike, and surfaces unbounded below too.
    """
    ax = contour(surface, surface.bounds, ax, resolution=resolution, levels=levels, filled=filled)
    if mark:
        critical_points(surface, ax, max_per_kind=12)
    if title:
        ax.set_title(surface.name.replace("_", " "), fontsize=9)
    return ax


_RASTERS: dict = {}


def cached_background(ax: Axes, key, bounds, draw, *, pixels: int = 320, owner=None) -> Axes:
    """Draw ``draw(off_axes)`` once into an off-screen picture of about ``pixels`` wide over ``bounds``,
    cache it under ``key``, and show it on ``ax`` with ``imshow``: a redraw then costs a few ms.

    ``owner`` (e.g. the surface) is kept with the picture, so that a key built from ``id(owner)``
    is never reused by another object that happens to get the same id.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    (x0, x1), (y0, y1) = bounds
    entry = _RASTERS.get(key)
    if entry is None or entry[0] is not owner:
        height = max(1, round(pixels * (y1 - y0) / (x1 - x0)))
        fig = Figure(figsize=(pixels / DPI, height / DPI), dpi=DPI)
        off = fig.add_axes((0, 0, 1, 1))
        draw(off)
        off.set_xlim(x0, x1)
        off.set_ylim(y0, y1)
        off.set_aspect("auto")
        off.set_axis_off()
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        if len(_RASTERS) > 32:  # surfaces made on the fly must not pile up
            _RASTERS.clear()
        entry = _RASTERS[key] = (owner, np.asarray(canvas.buffer_rgba()).copy())
    ax.imshow(entry[1], extent=(x0, x1, y0, y1), origin="upper", interpolation="bilinear")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return ax


def surface_image(surface, ax: Axes | None = None, *, pixels: int = 320, levels: int = 20, mark: bool = True,
                  resolution: int | None = None) -> Axes:
    """The filled contours of :func:`surface_contour` as a cached picture: fast to redraw (widgets use it).

    The contours are drawn once per surface into an off-screen image of about ``pixels`` wide,
    and shown with ``imshow`` afterwards: a slider move then costs a few milliseconds instead
    of tens.
    """
    ax = _ax(ax)
    resolution = min(pixels, 200) if resolution is None else int(resolution)
    bounds_key = tuple(tuple(float(v) for v in pair) for pair in surface.bounds)
    cached_background(ax, ("surface", id(surface), bounds_key, pixels, levels, resolution), surface.bounds,
                      lambda off: contour(surface, surface.bounds, off, levels=levels, resolution=resolution),
                      pixels=pixels, owner=surface)
    if mark:
        critical_points(surface, ax, max_per_kind=12)
    return ax


def _power_label(value: float, position=None) -> str:
    """``1e-5``, ``-1e6``, ``0``, ``1``: short, signed tick labels without mathtext."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.0e}".split("e")
    exponent = int(exponent)
    return f"{mantissa}" if exponent == 0 else f"{mantissa}0" if exponent == 1 else f"{mantissa}e{exponent}"


def light_ticks(ax: Axes, *, nbins: int = 3, log_ticks: int = 5) -> Axes:
    """Few ticks and plain-text labels (``1e-5`` rather than mathtext): ticks and their labels
    are most of a widget's redraw. Linear axes get at most ``nbins`` intervals; log axes at most
    ``log_ticks`` decades labelled, no minor ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_locator(LogLocator(base=10, numticks=log_ticks))
            axis.set_major_formatter(FuncFormatter(_power_label))
        elif axis.get_scale() == "linear":
            axis.set_major_locator(MaxNLocator(nbins))
    ax.minorticks_off()
    return ax


def surface_trajectories(surface, trajectories: dict, ax: Axes | None = None, *, contour_kwargs: dict | None = None,
                         legend: bool = True, raster: bool = False, colors: Sequence[str] | None = None) -> Axes:
    """Contours of ``surface`` with one path per entry of ``{label: Trajectory}``.

    A diverged run is drawn up to its last finite point, which gets a cross, and its
    legend entry says "diverged at step k". ``raster`` draws the contours as a cached
    picture (:func:`surface_image`), for widgets.
    """
    if raster:
        ax = surface_image(surface, ax)
        ax.set_title(surface.name.replace("_", " "), fontsize=9)
    else:
        ax = surface_contour(surface, ax, **(contour_kwargs or {}))
    for i, (label, traj) in enumerate(trajectories.items()):
        k = traj.diverged_at
        color = (colors or _COLORS)[i % len(colors or _COLORS)]
        text = label if k is None else f"{label}: diverged at step {k}"
        trajectory(traj.points if k is None else traj.points[:max(k, 1)], ax=ax, label=text, color=color,
                   markersize=2.0)
        if k is not None:
            last = _to_numpy(traj.points[max(k - 1, 0)])
            ax.plot(last[0], last[1], marker="x", color="crimson", markersize=9, markeredgewidth=2, zorder=5)
    (x0, x1), (y0, y1) = surface.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if legend and trajectories:
        ax.legend(fontsize=7, loc="upper left", framealpha=0.8)
    return ax


def surface_3d(surface, ax: Axes | None = None, *, resolution: int = 60, trajectories: dict | None = None,
               clip_quantile: float = 0.9, log: bool = False, cmap: str = "viridis", elev: float = 35,
               azim: float = -60) -> Axes:
    """A 3-D view of ``surface`` over its bounds (``ax`` must be a 3-D axes; ``None`` makes one).

    Values above the ``clip_quantile`` of the grid are cut off, so the interesting low part
    stays visible; with ``log`` the height is :math:`\\log_{10}(1 + f - \\min f)` instead
    (for ranges like Beale's, 0 to 10^5). ``trajectories`` ({label: Trajectory}) are lifted onto the surface.
    """
    if ax is None:
        fig = plt.figure(figsize=(4.5, 3.8), dpi=DPI)
        ax = fig.add_subplot(projection="3d")
    (x0, x1), (y0, y1) = surface.bounds
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    with torch.no_grad():
        z = _to_numpy(surface(grid))
    low = float(np.nanmin(z))
    height = (lambda v: np.log10(1 + np.maximum(v - low, 0))) if log else (lambda v: v)
    z = height(z)
    top = float(np.quantile(z, clip_quantile))
    z = np.where(z > top, np.nan, z)
    X, Y = np.meshgrid(_to_numpy(xs), _to_numpy(ys))
    ax.plot_surface(X, Y, z, cmap=cmap, linewidth=0, antialiased=False, alpha=0.85, vmax=top)
    for i, (label, traj) in enumerate((trajectories or {}).items()):
        pts = _to_numpy(traj.points)
        if traj.diverged_at is not None:
            pts = pts[:max(traj.diverged_at, 1)]
        with torch.no_grad():
            zs = height(_to_numpy(surface(torch.as_tensor(pts))))
        keep = zs <= top
        ax.plot(pts[keep, 0], pts[keep, 1], zs[keep], color=_COLORS[i % len(_COLORS)], label=label, zorder=5)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.view_init(elev=elev, azim=azim)
    ax.set_title(surface.name.replace("_", " "), fontsize=9)
    return ax


def _distinct_colors(n: int) -> list:
    """``n`` colours that tell neighbouring basins apart: tab10 / tab20 while they last, then hues
    spaced by the golden ratio with alternating saturation and value (never a repeated colour)."""
    from matplotlib.colors import hsv_to_rgb

    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [tuple(hsv_to_rgb(((i * 0.6180339887) % 1.0, 0.45 + 0.4 * (i % 2), 0.95 - 0.3 * ((i // 2) % 2))))
            for i in range(n)]


def basin_map(surface, result=None, ax: Axes | None = None, *, optimizer=None, steps: int = 300,
              resolution: int = 60, legend: bool = True, **hparams) -> Axes:
    """Colour each start of a grid by the minimum its run reaches: the basins of attraction.

    ``result`` is a :class:`~course_lib.trajectories.Basins` (from :func:`~course_lib.trajectories.basins`);
    without one, ``optimizer`` (default plain gradient descent, :class:`course_lib.optim.SGD`)
    is run with ``hparams`` from every grid point. White: ended near no listed minimum;
    black: diverged. Contour lines of the surface are drawn on top.
    """
    from matplotlib.colors import ListedColormap

    from .trajectories import basins
    if result is None:
        if optimizer is None:
            from .optim import SGD as optimizer
        hparams.setdefault("lr", 1e-3)
        result = basins(optimizer, surface, steps, resolution=resolution, **hparams)
    ax = _ax(ax)
    n = len(surface.minima)
    palette = ["black", "white"] + _distinct_colors(n)
    codes = _to_numpy(result.labels) + 2
    codes[_to_numpy(result.diverged) > 0] = 0
    xs, ys = _to_numpy(result.xs), _to_numpy(result.ys)
    ax.pcolormesh(xs, ys, codes, cmap=ListedColormap(palette), vmin=-0.5, vmax=n + 1.5, shading="nearest")
    contour(surface, surface.bounds, ax, filled=False, levels=12, resolution=100, cmap="Greys")
    critical_points(surface, ax)
    if legend:
        from matplotlib.patches import Patch
        shares = result.fractions()
        handles = [Patch(facecolor=palette[i + 2], edgecolor="gray", label=f"({m[0]:.2f}, {m[1]:.2f}): "
                         f"{shares.get(i, 0):.0%}") for i, m in enumerate(surface.minima) if n <= 8]
        if shares.get(-1, 0) > 0:
            handles.append(Patch(facecolor="white", edgecolor="gray", label=f"no minimum: {shares[-1]:.0%}"))
        if bool(result.diverged.any()):
            handles.append(Patch(facecolor="black", label=f"diverged: {float(result.diverged.double().mean()):.0%}"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", framealpha=0.85)
    ax.set_title(f"basins: {surface.name.replace('_', ' ')}", fontsize=9)
    return ax


def hessian_directions(surface, point, ax: Axes | None = None, *, length: float | None = None) -> Axes:
    r"""The Hessian's eigenvectors at ``point`` as arrows, labelled with their eigenvalues :math:`\lambda_i`.

    Blue: positive curvature (the function curves up along it); red: negative (it curves
    down: a way out of a saddle); gray: (nearly) zero curvature.
    """
    ax = _ax(ax)
    p = torch.as_tensor(point, dtype=torch.float64)
    eigenvalues, eigenvectors = torch.linalg.eigh(surface.hessian(p))
    (x0, x1), (y0, y1) = surface.bounds
    length = length or 0.15 * min(x1 - x0, y1 - y0)
    scale = max(1e-12, float(eigenvalues.abs().max()))
    for lam, v in zip(eigenvalues.tolist(), eigenvectors.T):
        color = "gray" if abs(lam) <= 1e-8 * max(1.0, scale) else ("tab:blue" if lam > 0 else "crimson")
        for sign in (1, -1):
            dx, dy = (sign * length * v).tolist()
            ax.annotate("", xy=(float(p[0]) + dx, float(p[1]) + dy), xytext=(float(p[0]), float(p[1])),
                        arrowprops=dict(arrowstyle="->", color=color, linewidth=1.8))
        tip = p + 1.15 * length * v
        ax.text(float(tip[0]), float(tip[1]), f"λ = {lam if color != 'gray' else 0.0:.3g}", color=color, fontsize=8,
                ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.75, edgecolor="none"))
    ax.plot([float(p[0])], [float(p[1])], marker="o", color="black", markersize=4)
    return ax
