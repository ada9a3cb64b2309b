r"""The OGR panel of notebook 09: Duda's online gradient regression on a 2-D surface, with what it believes.

:func:`ogr_run` runs :class:`course_lib.second_order.OGR` on a surface and records, at every step, the point and
the curvature the regression estimates: the eigenvalues of the ``2 x 2`` estimate (subspace mode, ``rank`` 1 or 2)
or the two per-coordinate slopes (diagonal mode, ``rank = 0``), next to the true Hessian's at the same point.

:func:`ogr_update` draws the path (with plain gradient descent at the same ``lr`` for comparison) on the
surface's contours, and the estimated against the true curvature over the steps. It never raises because a run
diverged: it stops at the first non-finite point or one far outside the map and says "diverged at step k".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import torch
from matplotlib.figure import Figure

from ..optim import SGD
from ..plotting import PALETTE, new_figure, optimizer_style
from ..second_order.ogr import OGR
from ..surface_plots import draw_paths, legend_under, light_ticks, panel_map, right_margin
from ..surfaces import get_surface
from ..trajectories import Trajectory, run_trajectory
from ._panel import FigureCache, build_panel, label, slider_style

__all__ = ["OGRRun", "ogr_run", "ogr_update", "ogr_panel", "OGR_SURFACES", "OGR_STARTS"]

OGR_SURFACES = ("quartic_saddle", "rotated_ill_conditioned_quadratic", "ill_conditioned_quadratic", "rosenbrock",
                "himmelblau")
OGR_STARTS = {"quartic_saddle": (0.5, 1e-3), "rotated_ill_conditioned_quadratic": (-2.0, 0.5),
              "ill_conditioned_quadratic": (-2.5, 1.0), "rosenbrock": (-1.5, 2.5), "himmelblau": (-0.5, -0.5)}


@dataclass
class OGRRun:
    """``trajectory`` (a :class:`Trajectory`), ``estimated`` and ``true`` curvatures ``(k, 2)`` (sorted;
    ``nan`` where not known yet), one row per step taken."""

    trajectory: Trajectory
    estimated: torch.Tensor
    true: torch.Tensor


def _curvature(opt: OGR, param: torch.Tensor, rank: int | None) -> torch.Tensor:
    state = opt.state[param]
    if rank is None:
        known = state["var_param"] > 0
        lam = torch.where(known, state["cov_grad_param"] / torch.where(known, state["var_param"], 1.0), torch.nan)
        return lam.sort().values
    k = state["basis"].shape[0]
    sigma = state["sigma"][:k, :k]
    resolution = torch.finfo(param.dtype).eps * float(sigma.diagonal().sum())
    if k < 1 or not bool((torch.linalg.eigvalsh(sigma) > resolution).all()):  # not every direction explored yet
        return torch.full((2,), torch.nan, dtype=param.dtype)
    if k == 1:  # rank 1: one curvature, along the direction the subspace found (first column; the second unknown)
        return torch.stack([state["hessian"][0, 0], torch.tensor(torch.nan, dtype=param.dtype)])
    return torch.linalg.eigvalsh(state["hessian"][:2, :2])


@lru_cache(maxsize=64)
def ogr_run(surface: str = "quartic_saddle", beta: float = 0.5, rank: int | None = 2, lr: float = 0.01,
            steps: int = 40, start: tuple | None = None) -> OGRRun:
    """Run OGR on a catalogue surface from ``start`` (default :data:`OGR_STARTS`) and record its beliefs."""
    surf = get_surface(surface)
    start = tuple(start or OGR_STARTS.get(surf.name, surf.default_start))
    param = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = OGR([param], lr=lr, beta=beta, rank=rank)
    points, estimated, true = [param.detach().clone()], [], []
    (x0, x1), (y0, y1) = surf.bounds
    box = 100 * max(x1 - x0, y1 - y0)
    diverged_at = None
    for k in range(1, steps + 1):
        param.grad = surf.gradient(param.detach())
        opt.step()
        point = param.detach().clone()
        if not torch.isfinite(point).all() or (point.abs() > box).any():
            diverged_at = k
            break
        points.append(point)
        estimated.append(_curvature(opt, param, rank))
        true.append(torch.linalg.eigvalsh(surf.hessian(point)))
    pts = torch.stack(points)
    if diverged_at is not None:  # as run_trajectory records it: the tail repeats the last finite point
        pts = torch.cat([pts, pts[-1:].expand(steps + 1 - len(pts), 2)])
    traj = Trajectory(pts, surf(pts), diverged_at)
    empty = torch.zeros(0, 2, dtype=torch.float64)
    return OGRRun(traj, torch.stack(estimated) if estimated else empty, torch.stack(true) if true else empty)


def ogr_update(surface: str = "quartic_saddle", beta: float = 0.5, rank: int = 2, lr: float = 0.01,
               steps: int = 40, figures: FigureCache | None = None) -> Figure:
    """Left: OGR's path and gradient descent's (same ``lr``). Right: estimated vs true curvature per step.

    ``rank = 0`` is the diagonal (per-coordinate) mode, 1 or 2 the subspace mode (rank 1 estimates one
    curvature, along the one direction it keeps). ``figures`` (the panel's):
    draw into the figure kept for this surface, whose map is already there.
    """
    rank = int(rank)
    run = ogr_run(surface, float(beta), None if rank == 0 else rank, float(lr), int(steps))
    gd = run_trajectory(SGD, surface, run.trajectory.points[0], int(steps), lr=float(lr))
    surf = get_surface(surface)
    build = partial(_fixed_part, surf)
    fig = build() if figures is None else figures.get(("ogr", id(surf), surf.name), build)
    ax_path, ax_curv = fig.axes[:2]
    mode = "diagonal" if rank == 0 else f"rank {rank}"
    draw_paths({f"OGR ({mode})": run.trajectory, f"GD, η = {lr:.3g}": gd}, ax_path,
               styles=[optimizer_style("ogr"), optimizer_style("gd")])
    legend_under(ax_path, ncol=2)
    n = len(run.estimated)
    steps_axis = torch.arange(1, n + 1)
    colors = (PALETTE["blue"], PALETTE["orange"])  # the two eigenvalues (not optimizers)
    hollow = dict(ms=4, markerfacecolor="none", markeredgewidth=1.0)  # estimate and true curve both visible
    for i in range(2):
        ax_curv.plot(steps_axis, run.true[:, i], color=colors[i], lw=1.2, label=f"true λ{'₁₂'[i]}")
        if rank != 1:
            ax_curv.plot(steps_axis, run.estimated[:, i], "o", color=colors[i], **hollow,
                         label=f"estimated λ{'₁₂'[i]}" + (" (per coordinate)" if rank == 0 else ""))
    if rank == 1:  # one direction: its curvature (for the true Hessian, between the two eigenvalues)
        ax_curv.plot(steps_axis, run.estimated[:, 0], "o", color="black", **hollow,
                     label="estimated, along its direction")
    ax_curv.set_yscale("symlog", linthresh=1.0)
    if run.trajectory.diverged_at is not None:
        ax_curv.text(0.5, 0.5, f"diverged at step {run.trajectory.diverged_at}", transform=ax_curv.transAxes,
                     ha="center", color=PALETTE["vermillion"])
    ax_curv.set_title(f"β = {beta:g}: what the regression believes", y=1.0)
    light_ticks(ax_path)  # few ticks, plain labels: most of a redraw is text layout
    light_ticks(ax_curv)
    legend_under(ax_curv, ncol=2)
    return fig


def _fixed_part(surface) -> Figure:
    """The figure before any run: the surface's map (a cached picture), the curvature axes with their zero line."""
    fig, (ax_path, ax_curv) = new_figure(2, width=4.2, height=3.4, legend_rows=2)
    right_margin(fig)
    panel_map(surface, ax_path)
    ax_curv.axhline(0.0, color=PALETTE["grey"], lw=0.8)
    ax_curv.set_xlabel("step $k$")
    ax_curv.set_ylabel(r"curvature: eigenvalue $\lambda$ of $H$")
    return fig


def ogr_panel(surface: str = "quartic_saddle", beta: float = 0.5, rank: int = 2, lr: float = 0.01,
              steps: int = 40):
    """Sliders for ``beta``, ``rank`` (0 = diagonal) and ``lr``, a surface menu and a step count."""
    import ipywidgets as widgets

    style = slider_style()
    controls = {
        "surface": widgets.Dropdown(options=list(OGR_SURFACES), value=surface, description=label("surface")),
        # OGR's β weighs the regression's running averages: not a momentum, so not label("beta")
        "beta": widgets.FloatSlider(value=beta, min=0.05, max=1.0, step=0.05,
                                    description=label("ogr_beta"),
                                    **style),
        "rank": widgets.IntSlider(value=rank, min=0, max=2,
                                  description=label("rank"), **style),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.25, description=label("lr"), **style),
        "steps": widgets.IntSlider(value=steps, min=5, max=200, step=5, description=label("steps"), **style),
    }
    return build_panel(ogr_update, controls, fixed=dict(figures=FigureCache()))
