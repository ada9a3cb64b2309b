r"""Panel of notebook 07: gradient descent on a deep linear network, seen through its trajectory.

Controls: the depth :math:`N`, the initialization scale, the learning rate, the number of steps and the start,
``"gaussian"`` (independent layers with :math:`\mathcal N(0, \text{scale}^2/d)` entries) or ``"balanced"``
(the *same* end-to-end matrix as the Gaussian start, split evenly over the layers with
:func:`course_lib.linear_nets.balanced_factors`, so that only the balancedness differs).

Three plots over the steps: the loss :math:`\tfrac12\|W_N\cdots W_1 - \Phi\|_F^2` (log scale) against the
target :data:`TARGET` (singular values 3, 2, 1, 0.5), the singular values of every layer, and the
balancedness :math:`\max_j\|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F`. A run whose loss stops being finite
is cut and the plots say "diverged at step k"; nothing raises.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from matplotlib.figure import Figure

from .. import linear_nets as ln
from ..plotting import PALETTE, mark_diverged, new_figure, optimizer_style
from ..quadratics import single_threaded
from ..surface_plots import legend_under, light_ticks, right_margin
from ._panel import build_panel, label, slider_style

__all__ = ["linear_net_update", "linear_net_panel", "linear_net_run", "TARGET", "TARGET_SINGULAR_VALUES",
           "INITS"]

TARGET_SINGULAR_VALUES = (3.0, 2.0, 1.0, 0.5)
INITS = ("balanced", "gaussian")
_FLOOR = 1e-16
LAYER_COLORS = [PALETTE[c] for c in ("blue", "vermillion", "bluish green", "orange", "reddish purple", "sky blue",
                                     "olive", "wine")]
"""One colour per layer (depth up to 8), from the course's colour-blind-safe palette."""
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _target() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    n = len(TARGET_SINGULAR_VALUES)
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(TARGET_SINGULAR_VALUES, dtype=torch.float64)) @ v.T


TARGET = _target()
"""The 4 x 4 target :math:`\\Phi = U \\operatorname{diag}(3, 2, 1, 0.5) V^\\top` (random orthogonal U, V, seed 7)."""


@lru_cache(maxsize=32)
@single_threaded
def linear_net_run(depth: int = 3, scale: float = 0.3, lr: float = 0.05, init: str = "balanced", steps: int = 300,
                   seed: int = 0) -> ln.LinearNetRun:
    """The recorded run the panel draws (cached: moving back to a setting redraws without recomputing)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    n = TARGET.shape[0]
    dims = [n] * (int(depth) + 1)
    weights = ln.gaussian_init(dims, float(scale), generator=torch.Generator().manual_seed(int(seed)))
    if init == "balanced":
        weights = ln.balanced_factors(ln.end_to_end(weights), dims)
    return ln.train_factors(weights, TARGET, float(lr), int(steps), record_singular_values=True, blowup=1e8)


def linear_net_update(depth: int = 3, scale: float = 0.3, lr: float = 0.05, init: str = "balanced",
                      steps: int = 300, seed: int = 0) -> Figure:
    """Loss, every layer's singular values and the balancedness over the steps of one run."""
    run = linear_net_run(int(depth), float(scale), float(lr), str(init), int(steps), int(seed))
    fig, (ax_loss, ax_sv, ax_bal) = new_figure(3, width=3.6, height=3.0, legend_rows=2)
    right_margin(fig, 0.2)
    fig.subplots_adjust(wspace=0.6)  # room for the balancedness panel's tall y label
    k = range(len(run.loss))
    loss = torch.tensor(run.loss, dtype=torch.float64).clamp_min(_FLOOR)
    ax_loss.plot(k, loss, linewidth=1.3, **optimizer_style("gd"))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step $k$")
    ax_loss.set_ylabel(r"loss $\|W_{1:N} - \Phi\|_F^2 / 2$")
    ax_loss.set_title(f"depth N = {int(depth)}, {init} start", y=1.0)
    for n, sv in enumerate(TARGET_SINGULAR_VALUES):
        ax_sv.axhline(sv ** (1.0 / int(depth)), color=PALETTE["grey"], linewidth=0.9, linestyle=":",
                      label=r"target $s_i^{1/N}$" if n == 0 else None)
    if run.singular_values:
        for j in range(int(depth)):
            values = torch.stack([step[j] for step in run.singular_values])
            # the first layer widest, each next one narrower on top: layers with equal values (a balanced start)
            # show as nested bands instead of hiding one another
            width = 1.0 + 2.0 * (int(depth) - 1 - j) / max(int(depth) - 1, 1)
            for i in range(values.shape[1]):
                ax_sv.plot(k, values[:, i], color=LAYER_COLORS[j % len(LAYER_COLORS)], linewidth=width,
                           label=f"W{str(j + 1).translate(_SUBSCRIPTS)}" if i == 0 else None)
    ax_sv.set_xlabel("step $k$")
    ax_sv.set_ylabel("singular value")
    ax_sv.set_title("singular values of each layer", y=1.0)
    legend_under(ax_sv, ncol=5)
    ax_bal.plot(k, torch.tensor(run.balancedness, dtype=torch.float64).clamp_min(_FLOOR), linewidth=1.3,
                **optimizer_style("gd"))
    ax_bal.set_yscale("log")
    ax_bal.set_xlabel("step $k$")
    ax_bal.set_ylabel(r"$\max_j\|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F$")
    ax_bal.set_title("balancedness", y=1.0)
    for ax in (ax_loss, ax_sv, ax_bal):  # few ticks, titles at a fixed height: most of a redraw is text layout
        light_ticks(ax)
    if run.diverged_at is not None:
        for ax in (ax_loss, ax_sv, ax_bal):
            mark_diverged(ax, run.diverged_at)
    return fig


def linear_net_panel(depth: int = 3, scale: float = 0.3, lr: float = 0.05, init: str = "balanced", steps: int = 300):
    """Sliders for :func:`linear_net_update` (redrawn when a slider is released)."""
    import ipywidgets as widgets

    style = slider_style()
    controls = {
        "depth": widgets.IntSlider(value=depth, min=1, max=8, description=label("depth"), **style),
        "scale": widgets.FloatLogSlider(value=scale, base=10, min=-3, max=0.3, step=0.1,
                                        description=label("init_scale"), **style),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.1, description=label("lr"), **style),
        "init": widgets.ToggleButtons(options=list(INITS), value=init,
                                      description=label("init"),
                                      style={"description_width": "initial"}),
        "steps": widgets.IntSlider(value=steps, min=50, max=1000, step=50, description=label("steps"), **style),
    }
    return build_panel(linear_net_update, controls)
