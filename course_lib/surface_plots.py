"""Pictures of the 2-D test surfaces of :mod:`course_lib.surfaces`.

* :func:`surface_contour`: level sets over the surface's bounds, critical points marked
  (minima: white stars, saddles: orange crosses, maxima: vermillion triangles);
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

from .plotting import (_COLORS, DPI, LEGEND_DROP, LEGEND_SIZE, MAP_CMAP, PALETTE, _ax, _style_key, _to_numpy,
                       colorbar, contour, legend_below, optimizer_style, trajectory, under_axes)

__all__ = ["surface_contour", "surface_trajectories", "surface_3d", "basin_map", "hessian_directions",
           "critical_points", "surface_image", "panel_map", "draw_paths", "cached_background", "light_ticks",
           "map_colorbar", "path_style", "path_styles", "right_margin", "legend_under", "legend_across", "colorbar_below", "LEGEND_DROP",
           "MAP_LABEL", "THETA_LABELS"]

MAP_LABEL = "f − min f (log scale)"
"""The label of the colour bar of a map of f (as :func:`course_lib.plotting.contour` writes it)."""
THETA_LABELS = (r"$\theta_1$", r"$\theta_2$")
"""The axis labels of a map: the two coordinates of the parameter θ."""

_CRITICAL_STYLE = {"minimum": dict(marker="*", color="white", markersize=11),
                   "saddle": dict(marker="X", color=PALETTE["orange"], markersize=8),
                   "maximum": dict(marker="^", color=PALETTE["vermillion"], markersize=7)}


def path_style(label: str, index: int = 0) -> dict:
    """``dict(color=..., linestyle=...)`` of a path named ``label``: the optimizer's own style
    (:func:`course_lib.plotting.optimizer_style`) where the name is an optimizer's, else the ``index``-th colour."""
    if _style_key(label) is not None:
        return optimizer_style(label)
    return dict(color=_COLORS[index % len(_COLORS)], linestyle="-")


def path_styles(labels) -> list:
    """:func:`path_style` of each label, no two alike: a label whose optimizer's style is already taken in the
    same plot (``"OGR diagonal"`` and ``"OGR d=2"``) keeps the line style and takes an unused colour of the cycle."""
    styles, used = [], set()
    for i, name in enumerate(labels):
        style = path_style(name, i)
        if (style["color"], style["linestyle"]) in used:
            free = [c for c in _COLORS if all((c, s) not in used for s in ("-", "--", "-.", ":"))] or _COLORS
            style = dict(color=free[0], linestyle=style["linestyle"])
        used.add((style["color"], style["linestyle"]))
        styles.append(style)
    return styles


def map_colorbar(mappable, ax: Axes, label: str = MAP_LABEL, *, ticks: int = 4) -> Axes:
    """:func:`course_lib.plotting.colorbar` labelled as a map of f by default. ``mappable`` may be a bare
    :class:`~matplotlib.cm.ScalarMappable`."""
    return colorbar(mappable, ax, label, ticks=ticks)


def right_margin(fig: Figure, inches: float = 0.3) -> Figure:
    """Leave ``inches`` on the right of a :func:`~course_lib.plotting.new_figure` figure, so that the last
    tick label of a curve plot (its x axis ends on a tick) and a wide legend under it are not cut at the edge."""
    fig.subplots_adjust(right=1 - inches / fig.get_figwidth())
    return fig


legend_under = legend_below  # the course's one legend-under-the-axes (kept under this name for the panels)
_under = under_axes


def legend_across(fig: Figure, ax: Axes, *, ncol: int) -> Axes:
    """:func:`legend_under` ``ax``, centred under the whole figure."""
    return legend_under(ax, ncol=ncol, across=True)


def colorbar_below(mappable, ax: Axes, label: str = MAP_LABEL, *, ticks: int = 4, drop: float = 0.62) -> Axes:
    """A horizontal, labelled colour bar under ``ax`` (below its x label), in the room a
    ``new_figure(..., legend_rows=3)`` keeps under the axes: the axes keep their full width, which three
    panels in a row need. Few, plain tick labels (fast to redraw). Returns the colour bar's axes."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    fig = ax.figure
    ax.apply_aspect()  # an equal-aspect map is narrower than its slot: the bar takes the map's width
    box = ax.get_position()
    height = 0.1 / fig.get_figheight()
    cax = fig.add_axes((box.x0 + 0.05 * box.width, box.y0 - drop / fig.get_figheight() - height, 0.9 * box.width,
                        height), label="<colorbar>")  # matplotlib's own name for the axes of a colour bar
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    bar.set_label(label, labelpad=1)
    if isinstance(mappable.norm, LogNorm):
        cax.xaxis.set_major_locator(LogLocator(base=10, numticks=ticks))
        cax.xaxis.set_major_formatter(FuncFormatter(_power_label))
    else:
        cax.xaxis.set_major_locator(MaxNLocator(ticks))
    cax.minorticks_off()
    return cax


def _first_mappable(ax: Axes):
    """The first coloured layer of ``ax`` (filled contours, an image, a mesh): what a colour bar shows."""
    from matplotlib.cm import ScalarMappable

    for artist in [*ax.collections, *ax.images]:
        if isinstance(artist, ScalarMappable) and artist.get_array() is not None and getattr(artist, "filled", True):
            return artist
    return None


def critical_points(surface, ax: Axes | None = None, *, kinds=("minimum", "saddle", "maximum"),
                    max_per_kind: int | None = None) -> Axes:
    """Mark a surface's listed minima (white stars), saddles (orange crosses) and maxima (vermillion triangles).

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
    ax = contour(surface, surface.bounds, ax, resolution=resolution, levels=levels, filled=filled, bar=None)
    layer = _first_mappable(ax) if filled else None
    if layer is not None:  # the colour bar with few, plain tick labels (1e-3, not 1.12054 x 10^-3)
        map_colorbar(layer, ax, MAP_LABEL)
    if mark:
        critical_points(surface, ax, max_per_kind=12)
    if title:
        ax.set_title(surface.name.replace("_", " "))
    return ax


_RASTERS: dict = {}


def cached_background(ax: Axes, key, bounds, draw, *, pixels: int = 320, owner=None, bar: str | None = MAP_LABEL,
                      bar_below: bool = False, labels=THETA_LABELS) -> Axes:
    """Draw ``draw(off_axes)`` once into an off-screen picture of about ``pixels`` wide over ``bounds``,
    cache it under ``key``, and show it on ``ax`` with ``imshow``: a redraw then costs a few ms.

    ``owner`` (e.g. the surface) is kept with the picture, so that a key built from ``id(owner)``
    is never reused by another object that happens to get the same id. The picture keeps the colour
    scale (norm and colour map) of the first coloured layer ``draw`` made; ``bar`` (a label, or ``None``)
    draws it as a colour bar beside ``ax`` (``bar_below``: under it, :func:`colorbar_below`). ``labels`` name
    the axes (where they have no label yet).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable

    (x0, x1), (y0, y1) = bounds
    entry = _RASTERS.get(key)
    if entry is None or entry[0] is not owner:
        height = max(1, round(pixels * (y1 - y0) / (x1 - x0)))
        fig = Figure(figsize=(pixels / DPI, height / DPI), dpi=DPI)
        off = fig.add_axes((0, 0, 1, 1))
        draw(off)
        layer = _first_mappable(off)
        scale = None if layer is None else (layer.norm, layer.cmap)
        off.set_xlim(x0, x1)
        off.set_ylim(y0, y1)
        off.set_aspect("auto")
        off.set_axis_off()
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        if len(_RASTERS) > 32:  # surfaces made on the fly must not pile up
            _RASTERS.clear()
        entry = _RASTERS[key] = (owner, np.asarray(canvas.buffer_rgba()).copy(), scale)
    ax.imshow(entry[1], extent=(x0, x1, y0, y1), origin="upper", interpolation="bilinear")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    if bar and entry[2] is not None:
        norm, cmap = entry[2]
        (colorbar_below if bar_below else map_colorbar)(ScalarMappable(norm=norm, cmap=cmap), ax, bar)
    for text, set_label, get_label in zip(labels or (), (ax.set_xlabel, ax.set_ylabel), (ax.get_xlabel, ax.get_ylabel)):
        if text and not get_label():
            set_label(text)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return ax


def surface_image(surface, ax: Axes | None = None, *, pixels: int = 320, levels: int = 20, mark: bool = True,
                  resolution: int | None = None, bar: str | None = MAP_LABEL, bar_below: bool = False) -> Axes:
    """The filled contours of :func:`surface_contour` as a cached picture: fast to redraw (widgets use it).

    The contours are drawn once per surface into an off-screen image of about ``pixels`` wide,
    and shown with ``imshow`` afterwards: a slider move then costs a few milliseconds instead
    of tens. ``bar``: the label of the colour bar beside the map (``bar_below``: under it; ``None``: no bar).
    """
    ax = _ax(ax)
    resolution = min(pixels, 200) if resolution is None else int(resolution)
    bounds_key = tuple(tuple(float(v) for v in pair) for pair in surface.bounds)
    cached_background(ax, ("surface", id(surface), bounds_key, pixels, levels, resolution), surface.bounds,
                      lambda off: contour(surface, surface.bounds, off, levels=levels, resolution=resolution,
                                          bar=None),
                      pixels=pixels, owner=surface, bar=bar, bar_below=bar_below)
    if mark:
        critical_points(surface, ax, max_per_kind=12)
    return ax


def panel_map(surface, ax: Axes | None = None) -> Axes:
    """A panel's map of ``surface``: :func:`surface_image` (with its colour bar), the surface's name as the title
    (at a fixed height: no search for a free spot), the axes limited to the surface's bounds."""
    ax = surface_image(surface, ax)
    ax.set_title(surface.name.replace("_", " "), y=1.0)
    (x0, x1), (y0, y1) = surface.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return ax


def _power_label(value: float, position=None) -> str:
    """``1e-5``, ``-1e6``, ``0``, ``1``: short, signed tick labels without mathtext (``6.95`` where the
    value is not one digit times a power of ten: a log axis over less than a decade)."""
    if value == 0:
        return "0"
    if abs(float(f"{value:.0e}") - value) > 1e-6 * abs(value):
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    exponent = int(exponent)
    return f"{mantissa}" if exponent == 0 else f"{mantissa}0" if exponent == 1 else f"{mantissa}e{exponent}"


def light_ticks(ax: Axes, *, nbins: int = 3, log_ticks: int = 5) -> Axes:
    """Few ticks and plain-text labels (``1e-5`` rather than mathtext): ticks and their labels
    are most of a widget's redraw. Linear axes get at most ``nbins`` intervals; log axes at most
    ``log_ticks`` decades labelled, no minor ticks; symmetric-log axes plain labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            low, high = sorted(abs(v) for v in axis.get_view_interval())
            narrow = low > 0 and np.log10(high / low) < 2.0  # under two labelled decades: label 2 and 5 too
            axis.set_major_locator(LogLocator(base=10, numticks=log_ticks, subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
            axis.set_major_formatter(FuncFormatter(_power_label))
        elif axis.get_scale() == "linear":
            axis.set_major_locator(MaxNLocator(nbins))
        elif axis.get_scale() == "symlog":  # "-1", "0", "1e2" rather than mathtext powers of ten
            axis.set_major_formatter(FuncFormatter(_power_label))
    ax.minorticks_off()
    return ax


def surface_trajectories(surface, trajectories: dict, ax: Axes | None = None, *, contour_kwargs: dict | None = None,
                         legend: bool = True, raster: bool = False, colors: Sequence[str] | None = None,
                         styles: Sequence[dict] | None = None) -> Axes:
    """Contours of ``surface`` with one path per entry of ``{label: Trajectory}``.

    A diverged run is drawn up to its last finite point, which gets a cross, and its
    legend entry says "diverged at step k". ``raster`` draws the contours as a cached
    picture (:func:`surface_image`), for widgets. Each path takes ``styles[i]`` (``dict(color=...,
    linestyle=...)``), else ``colors[i]``, else the style of the optimizer its label names
    (:func:`path_style`). The legend goes under the axes, outside the map (:func:`~course_lib.plotting.legend_below`).
    """
    if raster:
        ax = panel_map(surface, ax)
    else:
        ax = surface_contour(surface, ax, **(contour_kwargs or {}))
    draw_paths(trajectories, ax, colors=colors, styles=styles)
    (x0, x1), (y0, y1) = surface.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if legend and trajectories:
        legend_below(ax)
    return ax


def draw_paths(trajectories: dict, ax: Axes, *, colors: Sequence[str] | None = None,
               styles: Sequence[dict] | None = None) -> Axes:
    """The paths of :func:`surface_trajectories` without the map under them (styles as there)."""
    own = path_styles(trajectories) if styles is None and colors is None else None
    for i, (label, traj) in enumerate(trajectories.items()):
        k = traj.diverged_at
        if styles is not None:
            style = dict(styles[i % len(styles)])
        elif colors is not None:
            style = dict(color=colors[i % len(colors)])
        else:
            style = own[i]
        text = label if k is None else f"{label}: diverged at step {k}"
        trajectory(traj.points if k is None else traj.points[:max(k, 1)], ax=ax, label=text, markersize=2.0,
                   **style)
        if k is not None:
            last = _to_numpy(traj.points[max(k - 1, 0)])
            ax.plot(last[0], last[1], marker="x", color=PALETTE["vermillion"], markersize=9, markeredgewidth=2,
                    zorder=5)
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
        ax.plot(pts[keep, 0], pts[keep, 1], zs[keep], label=label, zorder=5, **path_style(label, i))
    ax.set_xlabel(THETA_LABELS[0])
    ax.set_ylabel(THETA_LABELS[1])
    ax.set_zlabel(r"$\log_{10}(1 + f - \min f)$" if log else r"$f$")
    ax.view_init(elev=elev, azim=azim)
    ax.set_title(surface.name.replace("_", " "))
    return ax


_BASIN_COLORS = [PALETTE[c] for c in ("sky blue", "orange", "bluish green", "reddish purple", "blue", "vermillion",
                                       "olive", "rose", "teal", "sand", "purple", "green", "wine", "indigo")]


def _distinct_colors(n: int) -> list:
    """``n`` colours that tell neighbouring basins apart: the course palette (safe for colour-blind readers;
    no black, white or grey, which mean "diverged" and "no minimum") while it lasts, then hues
    spaced by the golden ratio with alternating saturation and value (never a repeated colour)."""
    from matplotlib.colors import hsv_to_rgb

    if n <= len(_BASIN_COLORS):
        return _BASIN_COLORS[:n]
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
    contour(surface, surface.bounds, ax, filled=False, levels=12, resolution=100, cmap="Greys", bar=None)
    critical_points(surface, ax)
    if legend:
        from matplotlib.patches import Patch
        shares = result.fractions()
        handles = [Patch(facecolor=palette[i + 2], edgecolor="gray", label=f"({m[0]:.2g}, {m[1]:.2g}) "
                         f"{shares.get(i, 0):.0%}") for i, m in enumerate(surface.minima) if n <= 8]
        if shares.get(-1, 0) > 0:
            handles.append(Patch(facecolor="white", edgecolor="gray", label=f"none {shares[-1]:.0%}"))
        if bool(result.diverged.any()):
            handles.append(Patch(facecolor="black", label=f"diverged {float(result.diverged.double().mean()):.0%}"))
        # the key of a map of categories (minimum reached: share of the starts), under the map, outside the data
        if handles:
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                      bbox_transform=_under(ax, LEGEND_DROP), ncol=2, frameon=False, borderaxespad=0.0,
                      handlelength=1.2, columnspacing=0.8, title="minimum reached: share of the starts",
                      title_fontsize=LEGEND_SIZE)
    ax.set_title(f"basins: {surface.name.replace('_', ' ')}")
    return ax


def hessian_directions(surface, point, ax: Axes | None = None, *, length: float | None = None) -> Axes:
    r"""The Hessian's eigenvectors at ``point`` as arrows, labelled with their eigenvalues :math:`\lambda_i`.

    Blue: positive curvature (the function curves up along it); vermillion: negative (it curves
    down: a way out of a saddle); grey: (nearly) zero curvature.
    """
    ax = _ax(ax)
    p = torch.as_tensor(point, dtype=torch.float64)
    eigenvalues, eigenvectors = torch.linalg.eigh(surface.hessian(p))
    (x0, x1), (y0, y1) = surface.bounds
    length = length or 0.15 * min(x1 - x0, y1 - y0)
    scale = max(1e-12, float(eigenvalues.abs().max()))
    for lam, v in zip(eigenvalues.tolist(), eigenvectors.T):
        color = (PALETTE["grey"] if abs(lam) <= 1e-8 * max(1.0, scale)
                 else PALETTE["blue"] if lam > 0 else PALETTE["vermillion"])
        for sign in (1, -1):
            dx, dy = (sign * length * v).tolist()
            ax.annotate("", xy=(float(p[0]) + dx, float(p[1]) + dy), xytext=(float(p[0]), float(p[1])),
                        arrowprops=dict(arrowstyle="->", color=color, linewidth=1.8))
        tip = p + 1.15 * length * v
        ax.text(float(tip[0]), float(tip[1]), f"λ = {lam if color != PALETTE['grey'] else 0.0:.3g}", color=color,
                ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.75, edgecolor="none"))
    ax.plot([float(p[0])], [float(p[1])], marker="o", color="black", markersize=4)
    return ax
