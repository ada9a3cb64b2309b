r"""Panel of notebook 08: Newton, saddle-free Newton and gradient descent on the saddle surfaces.

Sliders: the surface (``saddle`` :math:`x^2 - y^2`, ``quartic_saddle``, ``monkey_saddle``), the method
(or all three), the damping :math:`\delta` of the two Newton methods, the start :math:`(x_0, y_0)` and the
number of steps. Left: the paths on the contour map; right: the distance from the saddle at the origin,
step by step (log scale). Newton (:math:`-(H+\delta I)^{-1}g`) runs into the saddle, saddle-free Newton
(:math:`-(|H|+\delta I)^{-1}g`) away from it; gradient descent (step 0.1) for comparison. A run that leaves
the picture far behind is stopped and marked "diverged at step k".
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..plotting import LEGEND_SIZE, PALETTE, mark_diverged, new_figure, optimizer_color, optimizer_style
from ..printing import small
from ..second_order.newton import run_second_order
from ..surface_plots import legend_under, light_ticks, right_margin, surface_image
from ..surfaces import get_surface
from ._panel import build_panel, label, slider_style

__all__ = ["second_order_update", "second_order_panel", "SECOND_ORDER_SURFACES", "SECOND_ORDER_METHODS"]

SECOND_ORDER_SURFACES = ("saddle", "quartic_saddle", "monkey_saddle")
SECOND_ORDER_METHODS = {key: (name, optimizer_color(key)) for key, name in
                        (("newton", "Newton"), ("sfn", "saddle-free Newton"), ("gd", "gradient descent"))}
"""key -> (printed name, colour): each method's course-wide colour (its line style: :func:`optimizer_style`)."""
GD_LR = 0.1


def second_order_update(surface: str = "quartic_saddle", method: str = "all", damping: float = 0.0,
                        x0: float = 1.0, y0: float = 0.3, steps: int = 12) -> Figure:
    """The figure for these slider values (a plain :class:`~matplotlib.figure.Figure`; tests call it directly)."""
    if surface not in SECOND_ORDER_SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SECOND_ORDER_SURFACES)}, got {surface!r}")
    methods = list(SECOND_ORDER_METHODS) if method == "all" else [method]
    if any(m not in SECOND_ORDER_METHODS for m in methods):
        raise ValueError(f"method must be 'all' or one of {', '.join(SECOND_ORDER_METHODS)}, got {method!r}")
    surf = get_surface(surface)
    steps = max(1, int(steps))
    fig, (ax_map, ax_dist) = new_figure(2, width=3.9, height=3.4, legend_rows=1)
    right_margin(fig)
    surface_image(surf, ax_map)
    (xa, xb), (ya, yb) = surf.bounds
    notes = []
    for key in methods:
        label, _ = SECOND_ORDER_METHODS[key]
        style = optimizer_style(key)
        points, diverged_at = run_second_order(key, surf, (float(x0), float(y0)), steps,
                                               lr=GD_LR if key == "gd" else 1.0, damping=float(damping),
                                               escape_radius=1e3)
        last = steps if diverged_at is None else diverged_at - 1
        pts = points[:last + 1]
        ax_map.plot(pts[:, 0], pts[:, 1], marker="o", markersize=2.5, linewidth=1.4, label=label, **style)
        dist = pts.norm(dim=1).clamp_min(1e-16)
        ax_dist.plot(range(len(dist)), dist, marker="o", markersize=2.5, linewidth=1.4,
                     label=f"{label}: {small(float(dist[-1]), digits=3)}", **style)  # "< 1e-12": round-off
        if diverged_at is not None:
            notes.append(f"{label}: diverged at step {diverged_at}")
    ax_map.set_xlim(xa, xb)
    ax_map.set_ylim(ya, yb)
    ax_map.set_title(f"{surface.replace('_', ' ')}, damping δ = {float(damping):.3g}", y=1.0)
    ax_dist.set_yscale("log")
    ax_dist.set_xlabel("step $k$")
    ax_dist.set_ylabel(r"distance $\|\theta_k\|$ from the saddle")
    ax_dist.set_title("legend: distance at the last step", y=1.0)
    legend_under(ax_dist, ncol=3, across=True)  # the key of both plots, outside the data
    light_ticks(ax_map)  # few ticks, plain labels: most of a redraw is text layout
    light_ticks(ax_dist)
    if notes:
        if len(notes) == 1 and len(methods) == 1:
            mark_diverged(ax_dist, int(notes[0].rsplit(" ", 1)[1]))
        else:
            ax_dist.text(0.5, 0.5, "\n".join(notes), transform=ax_dist.transAxes, ha="center", va="center",
                         fontsize=LEGEND_SIZE, color=PALETTE["vermillion"],
                         bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor=PALETTE["vermillion"]))
    return fig


def second_order_panel(**initial):
    """Surface and method menus, damping / start / steps sliders (``continuous_update=False``)."""
    import ipywidgets as widgets

    values = dict(surface="quartic_saddle", method="all", damping=0.0, x0=1.0, y0=0.3, steps=12)
    values.update(initial)
    style = slider_style()
    controls = {
        "surface": widgets.Dropdown(options=list(SECOND_ORDER_SURFACES), value=values["surface"],
                                    description=label("surface"), style=style["style"]),
        "method": widgets.Dropdown(options=[("all three", "all")] + [(v[0], k) for k, v in SECOND_ORDER_METHODS.items()],
                                   value=values["method"], description=label("method"), style=style["style"]),
        "damping": widgets.FloatSlider(value=values["damping"], min=0.0, max=3.0, step=0.05,
                                       description=label("damping"), **style),
        "x0": widgets.FloatSlider(value=values["x0"], min=-1.4, max=1.4, step=0.05, description=label("x"), **style),
        "y0": widgets.FloatSlider(value=values["y0"], min=-1.4, max=1.4, step=0.05, description=label("y"), **style),
        "steps": widgets.IntSlider(value=values["steps"], min=1, max=40, description=label("steps"), **style),
    }
    return build_panel(second_order_update, controls)
