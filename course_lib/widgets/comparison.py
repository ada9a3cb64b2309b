r"""Panel of notebook 10: pick an optimizer and a learning rate, train on the digits, see the curves.

Two plots for the chosen optimizer (and, for comparison, SGD with momentum at its own
learning rate): the training loss of every mini-batch, and the validation accuracy after
every epoch. The model is the small MLP of the notebook (64-32-10) trained on
:func:`course_lib.data.load_digits` with batches of 128; runs are cached, so moving back
to a setting is instant. A run whose loss stops being finite is cut there and marked
"diverged at step k".
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import torch
from matplotlib.figure import Figure

from .. import optim
from ..data import load_digits
from ..models import mlp
from ..plotting import PALETTE, mark_diverged, new_figure, optimizer_style
from ..surface_plots import legend_under, light_ticks, right_margin
from ..training import evaluate, fit
from ._panel import build_panel, label, slider_style

__all__ = ["COMPARISON_OPTIMIZERS", "comparison_update", "comparison_panel"]

#: name -> (class, fixed keyword arguments): the optimizers of the notebook's comparison
COMPARISON_OPTIMIZERS = {
    "SGD": (optim.SGD, {}),
    "momentum": (optim.SGD, {"momentum": 0.9}),
    "Nesterov": (optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "Adagrad": (optim.Adagrad, {}),
    "RMSprop": (optim.RMSprop, {}),
    "Adam": (optim.Adam, {}),
    "AdamW": (optim.AdamW, {"weight_decay": 1e-2}),
    "AMSGrad": (optim.AMSGrad, {}),
    "AdaBound": (optim.AdaBound, {}),
}


@lru_cache(maxsize=1)
def _data():
    return load_digits(seed=0)


@lru_cache(maxsize=64)
def _run(name: str, lr: float, epochs: int, seed: int):
    cls, kwargs = COMPARISON_OPTIMIZERS[name]
    data = _data()
    model = mlp([64, 32, 10], seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = fit(model, cls(model.parameters(), lr=lr, **kwargs), data.train, epochs=epochs, batch_size=128,
                   val_data=data.val, generator=torch.Generator().manual_seed(seed), progress=False)
    test_acc = None if hist.diverged else evaluate(model, data.test)[1]
    return hist, test_acc


def comparison_update(optimizer: str = "Adam", lr: float = 1e-2, epochs: int = 6, seed: int = 0,
                      reference_lr: float = 0.1) -> Figure:
    """Train ``optimizer`` at ``lr`` (and SGD with momentum at ``reference_lr``); return the figure.

    Left: training loss per step (log scale); right: validation accuracy per epoch; the titles
    give the final test accuracy. Raises ValueError for an unknown optimizer or a bad lr.
    """
    if optimizer not in COMPARISON_OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(COMPARISON_OPTIMIZERS)}")
    if not (lr > 0 and math.isfinite(lr)) or not (reference_lr > 0):
        raise ValueError(f"learning rates must be positive, got {lr} and {reference_lr}")
    runs = {f"{optimizer}, η = {lr:.3g}": _run(optimizer, float(lr), int(epochs), int(seed)),
            f"momentum, η = {reference_lr:.3g}": _run("momentum", float(reference_lr), int(epochs), int(seed))}
    # each optimizer in its course-wide style; the reference is grey and dashed when it is the chosen one too
    reference = optimizer_style("momentum") if optimizer != "momentum" else dict(color=PALETTE["grey"], linestyle="--")
    styles = (optimizer_style(optimizer), reference)
    fig, (ax_loss, ax_acc) = new_figure(2, width=4.2, height=3.2, legend_rows=1)
    right_margin(fig)
    for (name, (hist, test_acc)), style in zip(runs.items(), styles):
        losses = [v for v in hist.train_loss if math.isfinite(v)]
        suffix = "diverged" if test_acc is None else f"test acc {test_acc:.3f}"
        ax_loss.plot(range(len(losses)), losses, lw=1.2, label=f"{name} ({suffix})", **style)
        if hist.val_accuracy:
            ax_acc.plot(range(1, len(hist.val_accuracy) + 1), hist.val_accuracy, marker="o", ms=3, **style)
        if hist.diverged:
            mark_diverged(ax_loss, hist.diverged_at)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step $k$ (mini-batches of 128)")
    ax_loss.set_ylabel("training loss (mini-batch)")
    ax_loss.set_title("training loss", y=1.0)
    ax_acc.set_title("validation accuracy after each epoch", y=1.0)
    for ax in (ax_loss, ax_acc):  # few ticks, plain labels: most of a redraw is text layout
        light_ticks(ax)
    from matplotlib.ticker import MaxNLocator

    ax_acc.xaxis.set_major_locator(MaxNLocator(4, integer=True))  # epochs are whole numbers
    legend_under(ax_loss, ncol=2, across=True)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.set_ylim(0, 1.02)
    return fig


def comparison_panel(optimizer: str = "Adam", lr: float = 1e-2, epochs: int = 6, reference_lr: float = 0.1):
    """The panel: optimizer menu, learning-rate slider (log scale), epochs, seed."""
    import ipywidgets as widgets

    controls = {
        "optimizer": widgets.Dropdown(options=list(COMPARISON_OPTIMIZERS), value=optimizer,
                                      description=label("optimizer")),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-4, max=1, step=0.25, description=label("lr"),
                                     readout_format=".3g", **slider_style()),
        "epochs": widgets.IntSlider(value=epochs, min=1, max=30, description=label("epochs"), **slider_style()),
        "seed": widgets.IntSlider(value=0, min=0, max=4, description=label("seed"), **slider_style()),
    }
    return build_panel(comparison_update, controls, fixed={"reference_lr": reference_lr})
