"""Plots the notebooks share: contour maps with trajectories, loss curves, rates.

Plots of the 2-D test surfaces (contours with critical points, paths, a 3-D view, basins
of attraction, Hessian eigen-directions) are in :mod:`course_lib.surface_plots` and can be
reached from here as well (``plotting.basin_map``).

Every function takes ``ax=None`` (then it makes a new figure through pyplot, so a
notebook cell ends with ``plt.show()``) and returns the axes it drew on, so that
plots compose: ``ax = contour(f, bounds); trajectory(points, ax=ax)``.
Widgets pass the axes of a figure they made themselves.

One course style (:func:`use_course_style`, applied when this module is imported):

* a figure is :data:`COLUMN` inches wide, shown at :data:`DPI` screen pixels per inch, so that it fills
  the notebook column at 100% zoom; its PNG holds :data:`HIDPI` times as many pixels per side, sharp on a
  HiDPI screen (inline plots use IPython's "retina" format, 2x; panels :data:`PANEL_HIDPI` = 1.5x, which
  keeps a slider move within the bench's budget);
* text is at least 9 pt, i.e. 12.5 screen pixels (legends, ticks); titles 10.5 pt;
* every optimizer has one colour and line style in every notebook (:func:`optimizer_style`), from a
  palette safe for colour-blind readers (Okabe & Ito 2008, extended with Tol's "muted" scheme); the
  optimizers that share a plot get different colours;
* maps (contours of f) use a light grey scale with a colour bar, so that coloured paths stand out.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

__all__ = ["DPI", "HIDPI", "PANEL_HIDPI", "COLUMN", "MAP_CMAP", "PALETTE", "OPTIMIZER_STYLES", "optimizer_style", "optimizer_color",
           "use_course_style", "subplots", "new_figure", "legend_below", "under_axes", "LEGEND_DROP", "colorbar", "contour", "trajectory",
           "loss_curve", "mark_diverged", "rate_vs_lr"]

# Plots of course_lib.surfaces live in course_lib.surface_plots (one idea per module) and are
# reachable from here too; they load on first use, see __getattr__ at the end.
_SURFACE_PLOTS = ("surface_contour", "surface_trajectories", "surface_3d", "basin_map", "hessian_directions",
                  "critical_points", "surface_image")

DPI = 100
"""Screen pixels per figure inch (CSS pixels): a figure of :data:`COLUMN` inches is 900 pixels wide."""
HIDPI = 2
"""PNG pixels per screen pixel of an inline figure: pictures stay sharp on a HiDPI (retina) screen."""
PANEL_HIDPI = 1.5
"""The same for a slider panel's picture: 1.5, not 2, so that a redraw stays within the bench's 150 ms
budget (drawing and PNG encoding grow with the number of pixels); still sharper than 1 on a HiDPI screen."""
COLUMN = 9.0
"""The width of a figure that fills the notebook column, in inches."""
FONT_SIZE, LEGEND_SIZE, TITLE_SIZE = 10.0, 9.0, 10.5
"""Points; at :data:`DPI` 9 pt is 12.5 screen pixels."""

PALETTE = {  # Okabe & Ito (2008), then Paul Tol's "muted" colours: all distinguishable with colour-blindness
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "indigo": "#332288",
    "teal": "#44AA99", "olive": "#999933", "wine": "#882255", "rose": "#CC6677", "green": "#117733",
    "purple": "#AA4499", "grey": "#777777", "sand": "#B8A040",
}
_CYCLE = [PALETTE[c] for c in ("blue", "vermillion", "bluish green", "orange", "reddish purple", "sky blue",
                               "black", "indigo", "olive", "wine")]
_COLORS = _CYCLE

OPTIMIZER_STYLES = {  # name -> (colour, line style); the same in every notebook
    "gd": (PALETTE["black"], "-"), "momentum": (PALETTE["blue"], "-"), "nesterov": (PALETTE["sky blue"], "--"),
    "adagrad": (PALETTE["bluish green"], "-"), "adadelta": (PALETTE["olive"], "-."),
    "rmsprop": (PALETTE["orange"], "-"), "adam": (PALETTE["vermillion"], "-"),
    "adamw": (PALETTE["reddish purple"], "--"), "amsgrad": (PALETTE["indigo"], "-."),
    "adamax": (PALETTE["teal"], ":"), "nadam": (PALETTE["wine"], "--"), "adafactor": (PALETTE["rose"], "-"),
    "adabound": (PALETTE["green"], "--"), "swats": (PALETTE["purple"], "-."), "lion": (PALETTE["sand"], "--"),
    "shampoo": (PALETTE["teal"], "-"), "muon": (PALETTE["indigo"], "-"), "sf_sgd": (PALETTE["grey"], "--"),
    "sf_adamw": (PALETTE["wine"], "-"), "newton": (PALETTE["indigo"], "-"),
    "sfn": (PALETTE["bluish green"], "--"), "kfac": (PALETTE["orange"], "-."), "lbfgs": (PALETTE["teal"], "-."),
    "ogr": (PALETTE["purple"], "-"),
}
_ALIASES = {  # the names the notebooks and panels print -> a key of OPTIMIZER_STYLES
    "sgd": "gd", "gradient descent": "gd", "plain gd": "gd", "gd": "gd", "full batch": "gd",
    "heavy ball": "momentum", "sgd with momentum": "momentum", "sgd momentum": "momentum", "sgd+momentum": "momentum",
    "momentum": "momentum", "nesterov": "nesterov", "adagrad": "adagrad", "adadelta": "adadelta",
    "rmsprop": "rmsprop", "adam": "adam", "adamw": "adamw", "amsgrad": "amsgrad", "adamax": "adamax",
    "nadam": "nadam", "adafactor": "adafactor", "adabound": "adabound", "swats": "swats", "lion": "lion",
    "shampoo": "shampoo", "muon": "muon", "sf-sgd": "sf_sgd", "schedule-free sgd": "sf_sgd",
    "sf-adamw": "sf_adamw", "schedule-free adamw": "sf_adamw", "newton": "newton",
    "saddle-free newton": "sfn", "sfn": "sfn", "k-fac": "kfac", "kfac": "kfac", "l-bfgs": "lbfgs",
    "lbfgs": "lbfgs", "ogr": "ogr",
}


_ALIASES_LONGEST_FIRST = sorted(_ALIASES, key=len, reverse=True)  # "adamw, lr 0.1" -> adamw, not adam


def _style_key(name: str) -> str | None:
    text = str(name).strip().lower()
    if text in OPTIMIZER_STYLES:
        return text
    for alias in _ALIASES_LONGEST_FIRST:
        if text == alias or text.startswith(alias + " ") or text.startswith(alias + ",") or text.startswith(alias + "("):
            return _ALIASES[alias]
    return None


def optimizer_style(name: str) -> dict:
    """``dict(color=..., linestyle=...)`` of an optimizer, by key (``"adam"``) or printed name (``"Adam, lr 0.1"``,
    ``"heavy ball"``, ``"SF-AdamW"``); an unknown name gets the first colour of the cycle."""
    key = _style_key(name)
    color, linestyle = OPTIMIZER_STYLES[key] if key else (_CYCLE[0], "-")
    return dict(color=color, linestyle=linestyle)


def optimizer_color(name: str) -> str:
    """The colour of :func:`optimizer_style`."""
    return optimizer_style(name)["color"]


MAP_CMAP = "course_map"
"""Maps of f: white at the minimum, a light grey far from it (coloured paths stay readable)."""


def _register_map_cmap() -> None:
    import matplotlib
    from matplotlib.colors import LinearSegmentedColormap

    if MAP_CMAP not in matplotlib.colormaps:
        greys = matplotlib.colormaps["Greys"]
        colors = greys(np.linspace(0.0, 0.6, 64))
        matplotlib.colormaps.register(LinearSegmentedColormap.from_list(MAP_CMAP, colors))


def _shared_mathtext_cache(size: int = 512) -> None:
    """Share parsed math strings between figures.

    matplotlib caches a parsed ``$...$`` per ``MathTextParser`` instance, and every new figure's renderer has its
    own: a panel draws a new figure per slider move, so it parsed every math label again (about a third of a
    190 ms redraw). The parse depends only on the string, resolution, font and output type, so one cache keyed
    on those serves every renderer. If matplotlib's internals differ, nothing is changed.
    """
    try:
        from matplotlib.mathtext import MathTextParser

        original = MathTextParser._parse_cached
        if getattr(original, "_course_shared", False):
            return
        compute = original.__wrapped__
        parsers: dict = {}

        @functools.lru_cache(size)
        def shared(output_type, s, dpi, prop, antialiased, load_glyph_flags):
            return compute(parsers[output_type], s, dpi, prop, antialiased, load_glyph_flags)

        def parse_cached(self, s, dpi, prop, antialiased, load_glyph_flags):
            parsers.setdefault(self._output_type, self)
            return shared(self._output_type, s, dpi, prop, antialiased, load_glyph_flags)

        parse_cached._course_shared = True
        MathTextParser._parse_cached = parse_cached
    except (ImportError, AttributeError):
        pass


def use_course_style() -> None:
    """Apply the course's matplotlib settings (sizes, fonts, colour cycle; "retina" inline figures in IPython)."""
    from cycler import cycler

    _register_map_cmap()
    _shared_mathtext_cache()
    plt.rcParams.update({
        "figure.dpi": DPI, "savefig.dpi": DPI * HIDPI, "figure.figsize": (COLUMN * 0.6, COLUMN * 0.4),
        "font.size": FONT_SIZE, "axes.titlesize": TITLE_SIZE, "axes.labelsize": FONT_SIZE,
        "xtick.labelsize": LEGEND_SIZE, "ytick.labelsize": LEGEND_SIZE, "legend.fontsize": LEGEND_SIZE,
        "legend.framealpha": 0.9, "axes.prop_cycle": cycler(color=_CYCLE), "lines.linewidth": 1.5,
        "image.cmap": "viridis", "axes.grid": False, "mathtext.fontset": "dejavusans",
    })
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and getattr(shell, "kernel", None) is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("retina")
    except Exception:  # outside a notebook nothing else is needed
        pass


def show_scale() -> float:
    """PNG pixels per figure inch of what a panel shows (:data:`DPI` x :data:`PANEL_HIDPI`)."""
    return DPI * PANEL_HIDPI


def _to_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def _fit_column(ncols: int, width: float, height: float) -> tuple[float, float]:
    """Per-panel (width, height) scaled so that ``ncols`` panels fill :data:`COLUMN` (one panel: 60% of it)."""
    total = COLUMN if ncols > 1 else COLUMN * 0.6
    scale = total / (width * ncols)
    return width * scale, height * scale


def subplots(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.2, **kwargs):
    """``plt.subplots`` in the course's style: ``ncols`` panels of aspect ``width:height`` filling the column."""
    width, height = _fit_column(ncols, width, height)
    kwargs.setdefault("dpi", DPI)
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.2, *, legend_rows: int = 0):
    """A figure outside pyplot (not shown automatically, never leaks): what widget update functions draw on.

    ``ncols`` panels of aspect ``width:height`` fill the notebook column. Its margins are fixed rather than
    computed by a layout engine (that halves the time a panel needs to redraw); ``legend_rows`` reserves
    room under the axes for :func:`legend_below`.
    """
    width, height = _fit_column(ncols, width, height)
    extra = 0.22 * legend_rows
    fig_w, fig_h = width * ncols, height * nrows + extra
    fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    fig.subplots_adjust(left=0.62 / fig_w, right=1 - 0.3 / fig_w, bottom=(0.5 + extra) / fig_h,
                        top=1 - 0.3 / fig_h, wspace=0.42, hspace=0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, (axes[0, 0] if axes.size == 1 else axes.ravel())


LEGEND_DROP = 0.5
"""Inches from the bottom of the axes to the top of a legend under them: below the tick labels and the x label."""


def under_axes(ax: Axes, drop: float = LEGEND_DROP, across: bool = False):
    """Coordinates whose (0.5, 0) is ``drop`` inches under the middle of the bottom of ``ax`` (of the figure's
    width, ``across``): fixed to the axes, so it holds when a colour bar or a layout engine moves them."""
    from matplotlib.transforms import blended_transform_factory, offset_copy

    base = blended_transform_factory(ax.figure.transFigure, ax.transAxes) if across else ax.transAxes
    return offset_copy(base, fig=ax.figure, y=-drop, units="inches")


def legend_below(ax: Axes, *, ncol: int | None = None, across: bool = False, drop: float = LEGEND_DROP,
                 handles=None, labels=None) -> Axes:
    """The legend of ``ax`` outside the data, its top ``drop`` inches under the axes (below the x label)
    whatever their height, centred under ``ax`` or, ``across``, under the whole figure (the key of several
    plots). Room: ``new_figure(..., legend_rows=k)``, or a layout engine."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return ax
    ncol = ncol or min(len(handles), 2)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              bbox_transform=under_axes(ax, drop, across), ncol=ncol, frameon=False, borderaxespad=0.0,
              handlelength=1.8, columnspacing=1.0)
    return ax


def _decade_label(value, _position=None) -> str:
    """``1e-3``, ``1``, ``1e+02``: plain text, fast to draw (no mathtext)."""
    if value <= 0:
        return ""
    exponent = int(np.round(np.log10(value)))
    return "1" if exponent == 0 else f"1e{exponent}"


def colorbar(mappable, ax: Axes, label: str, *, ticks: int = 4) -> Axes:
    """A labelled colour bar beside ``ax`` (every map has one); returns the colour bar's axes.

    On a log scale the ticks are decades labelled ``1e-3``, not the map's contour levels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    bar = ax.figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label(label)
    axis = bar.ax.yaxis if bar.orientation == "vertical" else bar.ax.xaxis
    if isinstance(mappable.norm, LogNorm):
        axis.set_major_locator(LogLocator(base=10, numticks=ticks))
        axis.set_major_formatter(FuncFormatter(_decade_label))
    else:
        axis.set_major_locator(MaxNLocator(ticks))
    bar.ax.minorticks_off()
    return bar.ax


def _ax(ax: Axes | None) -> Axes:
    return subplots()[1] if ax is None else ax


def contour(f: Callable[[torch.Tensor], torch.Tensor], bounds: Sequence[Sequence[float]], ax: Axes | None = None, *,
            levels: int = 20, resolution: int = 150, log_levels: bool = True, filled: bool = True,
            cmap: str = MAP_CMAP, minimum: Sequence[float] | None = None, bar: str | None = "auto",
            xlabel: str = r"$\theta_1$", ylabel: str = r"$\theta_2$") -> Axes:
    """Level sets of a 2-D function ``f`` (called once on a ``(res, res, 2)`` float64 grid).

    ``bounds = ((xmin, xmax), (ymin, ymax))``. With ``log_levels`` the levels are spaced
    geometrically above the grid's minimum, so that narrow valleys stay visible.
    ``minimum`` marks a point (the minimizer) with a star. A filled map gets a colour bar labelled
    ``bar`` (``"auto"``: "f − min f" on the log scale, "f" otherwise; ``None``: no bar).
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
    _register_map_cmap()
    drawn = draw(_to_numpy(xs), _to_numpy(ys), z, cmap=cmap, **kwargs)
    if filled:
        kwargs.pop("extend", None)
        ax.contour(_to_numpy(xs), _to_numpy(ys), z, colors="0.45", linewidths=0.4, alpha=0.6, **kwargs)
        if bar:
            colorbar(drawn, ax, ("f − min f (log scale)" if log_levels else "f") if bar == "auto" else bar)
    if xlabel and not ax.get_xlabel():
        ax.set_xlabel(xlabel)
    if ylabel and not ax.get_ylabel():
        ax.set_ylabel(ylabel)
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
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12,
                color=PALETTE["vermillion"],
                bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor=PALETTE["vermillion"]))
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
    ax.axvline(2 / L, color=PALETTE["vermillion"], linewidth=0.8, linestyle=":", label=r"$2/L$")
    best = 2 / (mu + L)
    ax.plot([best], [(L - mu) / (L + mu)], marker="*", markersize=11, color=_COLORS[1], linestyle="none",
            label=r"$\eta^\star = 2/(\mu+L)$")
    if measured:
        ax.plot(list(measured), list(measured.values()), "o", color="black", markersize=4, label="measured")
    ax.set_xlabel(r"learning rate $\eta$")
    ax.set_ylabel("rate per step")
    ax.set_ylim(0, max(1.3, float(rates.max()) * 1.05))
    ax.legend()
    return ax


def __getattr__(name: str):
    """``plotting.basin_map`` and friends: forwarded to :mod:`course_lib.surface_plots` (imported on first use)."""
    if name in _SURFACE_PLOTS:
        from . import surface_plots
        return getattr(surface_plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


use_course_style()
