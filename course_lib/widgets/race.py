r"""The optimizer race (notebooks 05-06): several optimizers, one surface, one start.

:func:`race_update` runs each chosen optimizer of :data:`RACERS` from the same start
for the same number of steps and draws the paths on the surface's contour map (left)
and the losses against the step (right): :math:`f(\theta_k) - f^\star` on a log scale
where the surface has a known minimum value, else :math:`f(\theta_k)` on a symmetric log
scale (surfaces unbounded below). Every optimizer has its course-wide colour and line style
(:func:`course_lib.plotting.optimizer_style`); the legend sits under the loss plot, outside the
curves. A run that diverges is drawn up to its last finite point and its legend says "diverged at step k". The function never raises: a bad input
(unknown surface or optimizer, a negative or non-numeric step size, a start outside the map)
is repaired where it can be and reported in the figure where it cannot.

Learning rates are given as ``lr_<key>`` (``lr_adam=0.05``); a missing one takes
:func:`default_lr`, tuned per surface so that the default race is a fair one. Runs are
cached, so moving one optimizer's slider reruns only that optimizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache, partial

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, SymmetricalLogLocator

from .. import optim
from ..plotting import LEGEND_SIZE, PALETTE, loss_curve, new_figure, optimizer_style
from ..surface_plots import draw_paths, legend_across, panel_map, right_margin
from ..quadratics import single_threaded
from ..surfaces import SURFACES, Surface, get_surface
from ..trajectories import Trajectory, run_trajectory
from ._panel import FigureCache, build_panel, label, slider_style

__all__ = ["Racer", "RACERS", "DEFAULT_RACE", "SURFACE_LRS", "default_lr", "race_update", "race_panel", "racer_style"]

LEGEND_COLUMNS = 3


@dataclass(frozen=True)
class Racer:
    """A contestant: an optimizer class, its fixed hyperparameters and which step-size scale it needs."""

    label: str
    optimizer: type
    hparams: dict = field(default_factory=dict, hash=False)
    lr_scale: str = "adaptive"  # "gd" (lr ~ 1/L), "adaptive" (lr ~ distance per step), or a fixed factor


def _in_train_mode(optimizer_cls):
    """A factory for schedule-free optimizers, which must be put in train mode before their first step."""
    def make(params, **hparams):
        optimizer = optimizer_cls(params, **hparams)
        optimizer.train()
        return optimizer
    make.__name__ = optimizer_cls.__name__
    return make


RACERS: dict[str, Racer] = {
    "sgd": Racer("GD", optim.SGD, {}, "gd"),
    "momentum": Racer("momentum 0.9", optim.SGD, {"momentum": 0.9}, "gd"),
    "nesterov": Racer("Nesterov 0.9", optim.SGD, {"momentum": 0.9, "nesterov": True}, "gd"),
    "adagrad": Racer("Adagrad", optim.Adagrad, {}, "adagrad"),
    "adadelta": Racer("Adadelta", optim.Adadelta, {}, "adadelta"),
    "rmsprop": Racer("RMSprop", optim.RMSprop, {}, "rmsprop"),
    "adam": Racer("Adam", optim.Adam),
    "amsgrad": Racer("AMSGrad", optim.AMSGrad),
    "adamax": Racer("Adamax", optim.Adamax),
    "nadam": Racer("NAdam", optim.NAdam),
    "adabound": Racer("AdaBound", optim.AdaBound),
    # notebook 11 (Muon needs matrices, so it does not race on a 2-D point)
    "lion": Racer("Lion", optim.Lion),
    "shampoo": Racer("Shampoo", optim.Shampoo, {}, "adagrad"),  # on a vector: full-matrix Adagrad
    "sf_sgd": Racer("SF-SGD", _in_train_mode(optim.ScheduleFreeSGD), {}, "gd"),  # the path of y
    "sf_adamw": Racer("SF-AdamW", _in_train_mode(optim.ScheduleFreeAdamW)),
}
DEFAULT_RACE = ("sgd", "momentum", "rmsprop", "adam")

# (gradient-descent lr, adaptive lr) per surface: GD-type steps scale like 1/curvature,
# adaptive steps like a distance per step. Chosen from sweeps over 150 steps from the default start.
SURFACE_LRS = {
    "quadratic": (0.3, 0.1),
    "ill_conditioned_quadratic": (0.05, 0.1),
    "rotated_ill_conditioned_quadratic": (0.05, 0.1),
    "rosenbrock": (1e-3, 0.05),
    "himmelblau": (0.01, 0.1),
    "rastrigin": (2e-3, 0.05),
    "beale": (3e-3, 0.05),
    "saddle": (0.05, 0.05),
    "monkey_saddle": (0.01, 0.02),
    "quartic_saddle": (0.1, 0.05),
}


def default_lr(surface, racer: str) -> float:
    """The default step size of ``racer`` on ``surface`` (RMSprop's first step is 10x its lr, Adagrad's shrinks)."""
    name = surface.name if isinstance(surface, Surface) else str(surface)
    gd, adaptive = SURFACE_LRS.get(name, (0.01, 0.05))
    scale = RACERS[racer].lr_scale
    return {"gd": gd, "adaptive": adaptive, "rmsprop": adaptive / 5, "adagrad": adaptive * 5, "adadelta": 1.0}[scale]


def racer_style(key: str) -> dict:
    """The colour and line style of racer ``key`` (its optimizer's, the same in every notebook)."""
    return optimizer_style(key)


@lru_cache(maxsize=256)
def _race(surface: Surface, racer: str, lr: float, start: tuple, steps: int) -> Trajectory:
    spec = RACERS[racer]
    return run_trajectory(spec.optimizer, surface, start, steps, lr=lr, **spec.hparams)


def _number(value, default: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def _power_label(value: float, position=None) -> str:
    """``1e-5``, ``-1e6``, ``0``, ``1``: short, signed tick labels without mathtext."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.0e}".split("e")
    exponent = int(exponent)
    return f"{mantissa}" if exponent == 0 else f"{mantissa}0" if exponent == 1 else f"{mantissa}e{exponent}"


def _draw_losses(ax, surface: Surface, runs: dict, styles: list) -> None:
    excess = surface.min_value is not None
    ax.set_xlabel("step $k$")
    ax.set_ylabel(r"$f(\theta_k) - f^\star$" if excess else r"$f(\theta_k)$")
    if not runs:  # nothing to draw: a log axis without data could not even be drawn
        return
    for (label, traj), style in zip(runs.items(), styles):
        k = traj.diverged_at
        losses = traj.losses if k is None else traj.losses[:max(k, 1)]
        if excess:  # below 1e-32 is "reached to the last bit": drawn at the floor instead of left out
            losses = (losses - surface.min_value).clamp(min=1e-32)
        label = label if k is None else f"{label}: diverged at step {k}"
        loss_curve(losses, ax=ax, log=excess, label=label, linewidth=1.3, **style)
    if not any(len(line.get_xdata()) for line in ax.get_lines()):  # no finite value at all: keep a plain axis
        ax.set_yscale("linear")
        return
    if not excess:  # unbounded below: a symmetric log scale shows both the start and the fall to -infinity
        ax.set_yscale("symlog", linthresh=1.0)
        ax.yaxis.set_major_locator(SymmetricalLogLocator(base=10, linthresh=1.0, subs=[1.0]))
        ax.yaxis.get_major_locator().numticks = 5
    else:
        low, high = ax.get_ylim()
        narrow = low > 0 and math.log10(high / low) < 2.0  # under two labelled decades: label 2 and 5 too
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=5, subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
    # few ticks, plain "1e-5" labels, no minor ticks: ticks are a third of a redraw, mathtext labels another third
    ax.yaxis.set_major_formatter(FuncFormatter(_power_label))
    ax.minorticks_off()
    ax.set_xlim(0, max((traj.steps for traj in runs.values()), default=1))


@single_threaded
def race_update(surface="rosenbrock", x: float | None = None, y: float | None = None,
                optimizers=DEFAULT_RACE, steps: int = 150, figures: FigureCache | None = None,
                **learning_rates) -> Figure:
    """Race ``optimizers`` (keys of :data:`RACERS`) on ``surface`` from ``(x, y)`` (default: the surface's start).

    ``lr_<key>=value`` sets a step size; the rest take :func:`default_lr`. Returns the figure: a new one, or,
    with ``figures`` (the panel's), the one kept for this surface with its map already drawn.
    """
    problems, runs, styles = [], {}, []
    try:
        surface = get_surface(surface)
    except (KeyError, TypeError):
        problems.append(f"unknown surface {surface!r}; using rosenbrock")
        surface = SURFACES["rosenbrock"]
    try:
        (x0, x1), (y0, y1) = surface.bounds
        start = (min(max(_number(x, surface.default_start[0]), x0), x1),
                 min(max(_number(y, surface.default_start[1]), y0), y1))
        steps = int(min(max(_number(steps, 150), 1), 2000))
        if isinstance(optimizers, str):
            optimizers = (optimizers,)
        for key in dict.fromkeys(optimizers or ()):
            if key not in RACERS:
                problems.append(f"unknown optimizer {key!r}")
                continue
            lr = _number(learning_rates.get(f"lr_{key}"), default_lr(surface, key))
            name = f"{RACERS[key].label}, η = {lr:.3g}"
            try:
                runs[name] = _race(surface, key, lr, start, steps)
                styles.append(racer_style(key))
            except Exception as error:  # e.g. ValueError("Invalid learning rate: -1.0")
                problems.append(f"{RACERS[key].label}: {error}")
        if not runs:
            problems.append("no optimizer chosen")
    except Exception as error:  # the last line of defence: a panel must never break
        problems.append(f"{type(error).__name__}: {error}")
        start = surface.default_start
    # the legend (three columns, under both plots) and the problems line sit under the axes, in room reserved for them
    rows = max(-(-len(runs) // LEGEND_COLUMNS) + (1 if problems else 0), 1)
    build = partial(_fixed_part, surface, rows)
    fig = build() if figures is None else figures.get(("race", id(surface), surface.name, rows), build)
    ax_map, ax_loss = fig.axes[:2]
    try:
        draw_paths(runs, ax_map, styles=styles)
        _draw_losses(ax_loss, surface, runs, styles)
        if runs:
            legend_across(fig, ax_loss, ncol=LEGEND_COLUMNS)
        # titles at a fixed height (y=1) skip matplotlib's search for a free spot: 10% of a redraw
        ax_loss.set_title(f"{steps} steps from ({start[0]:.3g}, {start[1]:.3g})", y=1.0)
        ax_loss.xaxis.set_major_locator(MaxNLocator(3))
    except Exception as error:  # the last line of defence: a panel must never break
        problems.append(f"{type(error).__name__}: {error}")
    if problems:
        fig.text(0.5, 0.01, "; ".join(problems)[:120], ha="center", va="bottom", fontsize=LEGEND_SIZE,
                 color=PALETTE["vermillion"])
    return fig


def _fixed_part(surface: Surface, legend_rows: int) -> Figure:
    """The race's figure before any run: the surface's map (a cached picture), its title, the empty loss axes."""
    fig, (ax_map, ax_loss) = new_figure(2, width=3.8, height=3.3, legend_rows=legend_rows)
    right_margin(fig)
    panel_map(surface, ax_map)
    for axis in (ax_map.xaxis, ax_map.yaxis):
        axis.set_major_locator(MaxNLocator(3))
    return fig


def race_panel(surface: str = "rosenbrock", optimizers=DEFAULT_RACE, steps: int = 150):
    """Controls: the surface, which of ``optimizers`` race, then two accordion sections: one log-scale
    learning-rate slider per optimizer ("learning rates"), the start θ and the number of steps ("start and steps").

    Choosing another surface moves the start and every step size to that surface's defaults
    (without redrawing in between), then redraws once.
    """
    import ipywidgets as widgets

    surface_obj = get_surface(surface)
    optimizers = tuple(key for key in optimizers if key in RACERS)
    (x0, x1), (y0, y1) = surface_obj.bounds
    controls = {
        "surface": widgets.Dropdown(options=list(SURFACES), value=surface_obj.name, description=label("surface")),
        "optimizers": widgets.SelectMultiple(options=[(RACERS[k].label, k) for k in optimizers], value=optimizers,
                                             rows=min(len(optimizers), 6), description=label("optimizers"),
                                             style={"description_width": "initial"}),
        "x": widgets.FloatSlider(value=surface_obj.default_start[0], min=x0, max=x1, step=(x1 - x0) / 200,
                                 description=label("x"), readout_format=".3g", **slider_style()),
        "y": widgets.FloatSlider(value=surface_obj.default_start[1], min=y0, max=y1, step=(y1 - y0) / 200,
                                 description=label("y"), readout_format=".3g", **slider_style()),
        "steps": widgets.IntSlider(value=steps, min=10, max=1000, step=10, description=label("steps"),
                                   **slider_style()),
    }
    for key in optimizers:
        controls[f"lr_{key}"] = widgets.FloatLogSlider(
            value=default_lr(surface_obj, key), base=10, min=-5, max=1, step=0.05,
            description=label("lr", RACERS[key].label), readout_format=".3g", **slider_style())
    groups = {"learning rates": [f"lr_{key}" for key in optimizers], "start and steps": ["x", "y", "steps"]}
    panel = None

    def reset_to_surface(change):  # registered before build_panel's redraw, so it runs first
        new = get_surface(change["new"])
        (a0, a1), (b0, b1) = new.bounds
        dependants = [name for name in controls if name in ("x", "y") or name.startswith("lr_")]
        for name in dependants:
            controls[name].unobserve(panel.redraw, names="value")
        try:
            for name, (low, high), value in (("x", (a0, a1), new.default_start[0]),
                                             ("y", (b0, b1), new.default_start[1])):
                slider = controls[name]
                slider.min, slider.max = min(low, slider.min), max(high, slider.max)  # widen first: no clamping
                slider.value = value
                slider.min, slider.max, slider.step = low, high, (high - low) / 200
            for key in optimizers:
                controls[f"lr_{key}"].value = default_lr(new, key)
        finally:
            for name in dependants:
                controls[name].observe(panel.redraw, names="value")

    controls["surface"].observe(reset_to_surface, names="value")
    panel = build_panel(race_update, controls, groups=groups, fixed=dict(figures=FigureCache()))
    return panel
