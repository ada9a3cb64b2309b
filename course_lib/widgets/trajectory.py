r"""Panel of notebook 12: what the trajectory decides.

Left, the **edge of stability** (Cohen et al., ICLR 2021): full-batch gradient descent with step size
``lr`` on a tanh MLP 64-32-32-10 with the squared loss on 300 training digits (float64,
:func:`eos_problem`); the sharpness :math:`\lambda_{\max}` every 10 steps against the line :math:`2/\eta`,
and the loss. Right, **deep matrix factorization** (Arora, Cohen, Hu & Luo, NeurIPS 2019): gradient
descent on :math:`N` factors of a :math:`30\times 30` matrix of rank 3 seen on 40% of its entries
(:func:`completion_problem`), from an end-to-end start of size ``scale``; the singular values of the
product over the steps (dotted: the target's three).

Runs are cached (:func:`eos_run`, :func:`completion_run`), so moving a control back redraws at once, and
the notebook's own runs are the panel's.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from matplotlib.figure import Figure
from torch.nn import functional as F

from .. import factorization as fz
from ..data import load_digits
from ..plotting import PALETTE, mark_diverged, new_figure, optimizer_style
from ..quadratics import single_threaded
from ..second_order.sharpness import MLPProblem, SharpnessRun, gd_with_sharpness
from ..surface_plots import legend_under, light_ticks, right_margin
from ._panel import build_panel, label, slider_style

__all__ = ["eos_problem", "eos_run", "completion_problem", "completion_run", "trajectory_update", "trajectory_panel",
           "LEARNING_RATES", "EOS_STEPS", "COMPLETION_STEPS"]

LEARNING_RATES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
EOS_STEPS = 600
COMPLETION_STEPS = 5000
COMPLETION_LR = 0.2


@lru_cache(maxsize=1)
def eos_problem(n: int = 300, width: int = 32, out_scale: float = 0.3, seed: int = 0) -> MLPProblem:
    """The tanh MLP 64-width-width-10 on the first ``n`` training digits, one-hot targets, float64."""
    digits = load_digits(0, dtype=torch.float64)
    X, y = digits.X_train[:n], digits.y_train[:n]
    return MLPProblem(X, F.one_hot(y, 10).to(torch.float64), (64, width, width, 10), out_scale, seed)


@lru_cache(maxsize=32)
@single_threaded
def eos_run(lr: float, steps: int = EOS_STEPS, perturbation: float = 0.0, every: int = 10) -> SharpnessRun:
    """Gradient descent on :func:`eos_problem` with the sharpness every ``every`` steps (cached)."""
    problem = eos_problem()
    return gd_with_sharpness(problem.loss, problem.init(perturbation), float(lr), int(steps), every=int(every),
                             iters=20, warm_iters=6, generator=torch.Generator().manual_seed(0))


@lru_cache(maxsize=1)
def completion_problem(fraction: float = 0.4, seed: int = 0):
    """``(target, mask)``: :func:`course_lib.factorization.low_rank_matrix` (30 x 30, rank 3) and a mask
    with ``fraction`` of the entries."""
    target = fz.low_rank_matrix(30, 3, seed=0)
    return target, fz.random_mask(target.shape, fraction, seed=seed)


@lru_cache(maxsize=32)
@single_threaded
def completion_run(depth: int, scale: float, steps: int = COMPLETION_STEPS) -> fz.FactorizationRun:
    """Gradient descent on ``depth`` factors from an end-to-end start of size ``scale`` (cached)."""
    target, mask = completion_problem()
    return fz.train_factorization(target, mask, int(depth), float(scale), COMPLETION_LR, int(steps), record_every=25)


def trajectory_update(lr: float = 0.5, depth: int = 3, scale: float = 1e-4) -> Figure:
    """Sharpness against 2/lr and the loss (edge of stability), and the singular values of the recovered matrix."""
    run = eos_run(float(lr))
    fig, (ax_sharp, ax_loss, ax_sv) = new_figure(3, width=3.6, height=3.0, legend_rows=2)
    right_margin(fig, 0.2)
    ax_sharp.plot(run.sharpness_steps, run.sharpness, color=PALETTE["blue"], linewidth=1.3,
                  label=r"sharpness $\lambda_{\max}$")
    ax_sharp.axhline(2.0 / float(lr), color="black", linestyle="--", linewidth=1.0, label=r"$2/\eta$")
    top = max(max(run.sharpness), 2.0 / float(lr))
    ax_sharp.set_ylim(0, 1.15 * top)
    ax_sharp.set_xlabel("step $k$")
    ax_sharp.set_ylabel(r"sharpness $\lambda_{\max}$")
    ax_sharp.set_title(f"full-batch GD, η = {float(lr):g}", y=1.0)
    legend_under(ax_sharp, ncol=2)
    ax_loss.plot(range(len(run.loss)), run.loss, linewidth=1.2, **optimizer_style("gd"))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step $k$")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training loss", y=1.0)
    if run.diverged_at is not None:
        for ax in (ax_sharp, ax_loss):
            mark_diverged(ax, run.diverged_at)
    completion = completion_run(int(depth), float(scale))
    target, _ = completion_problem()
    for n, value in enumerate(torch.linalg.svdvals(target)[:3].tolist()):
        ax_sv.axhline(value, color="black", linestyle=":", linewidth=1.2, zorder=3,  # over the curves that reach it
                      label="target's singular values" if n == 0 else None)
    svs = completion.singular_values
    colors = [PALETTE[c] for c in ("blue", "vermillion", "bluish green", "orange", "reddish purple", "sky blue")]
    for i in range(min(6, svs.shape[-1])):
        ax_sv.plot(completion.steps, svs[:, i], color=colors[i], linewidth=1.2)
    ax_sv.set_yscale("log")
    ax_sv.set_ylim(max(0.5 * float(svs[:, :6].min()), 1e-8), 3.0)  # from the lowest curve drawn
    ax_sv.set_xlabel("step $k$")
    ax_sv.set_ylabel(r"singular values of $W_{1:N}$")
    error = float(completion.test_error[-1])
    ax_sv.set_title(f"depth N = {int(depth)}: test error {error:.2g}", y=1.0)
    legend_under(ax_sv, ncol=1)
    for ax in (ax_sharp, ax_loss, ax_sv):
        light_ticks(ax)
    return fig


def trajectory_panel(lr: float = 0.5, depth: int = 3, scale: float = 1e-4):
    """Controls for :func:`trajectory_update` (redrawn when a control is released)."""
    import ipywidgets as widgets

    style = slider_style()
    controls = {
        "lr": widgets.SelectionSlider(options=list(LEARNING_RATES), value=lr, description=label("lr", "left panels"),
                                      **style),
        "depth": widgets.IntSlider(value=depth, min=1, max=4, description=label("depth", "right panel"), **style),
        "scale": widgets.FloatLogSlider(value=scale, base=10, min=-5, max=-0.5, step=0.5,
                                        description=label("init_scale", "right panel"), readout_format=".1e", **style),
    }
    return build_panel(trajectory_update, controls)
