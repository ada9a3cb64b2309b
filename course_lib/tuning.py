r"""A fair learning-rate comparison between optimizers: same budget, selection on validation data, several seeds.

"Optimizer A beats optimizer B" means little unless both were tuned equally well.
The protocol here (in the spirit of Wilson et al. 2017, Choi et al. 2019 and
Schmidt, Schneider & Hennig 2021) is:

1. **Same budget.** Every optimizer gets the same log-spaced learning-rate grid
   (:func:`log_grid`), the same number of epochs, batch size, model and seeds; its
   other hyperparameters stay at their defaults (or at values you state).
2. **Selection on validation data.** For each learning rate :math:`\eta` the runs of
   all seeds :math:`s` are averaged; the chosen rate is
   :math:`\eta^\star = \arg\max_\eta \tfrac{1}{S}\sum_s \mathrm{acc}_{\text{val}}(\eta, s)`,
   ties broken by the lower mean validation loss (:func:`select_best`). A run that
   diverged scores accuracy 0 and loss :math:`+\infty`. The test set is never looked at
   while choosing.
3. **Several seeds, mean and spread.** Each seed fixes the initial weights and the
   order of the mini-batches; we report mean :math:`\pm` standard deviation over seeds
   of the final training loss and the test accuracy at :math:`\eta^\star`.
4. **Sensitivity.** The whole curve of validation accuracy against :math:`\eta` shows
   how wide the good range is (:func:`good_range`): an optimizer that is good only in a
   narrow band costs more tuning than its best number suggests.

:func:`sweep` runs one optimizer class (any ``torch.optim.Optimizer``, with fixed
keyword arguments) over the grid and the seeds; :func:`compare` runs several under one
progress bar; :func:`comparison_table` and :func:`plot_sensitivity` report them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from .printing import fmt
from .training import evaluate, fit

__all__ = ["log_grid", "select_best", "good_range", "Sweep", "sweep", "compare", "comparison_table",
           "plot_sensitivity", "fmt"]


def log_grid(low: float, high: float, points_per_decade: int = 2) -> list[float]:
    r"""Learning rates :math:`10^{a}, 10^{a + 1/k}, \dots, 10^{b}` from ``low`` to ``high`` (both included).

    ``log_grid(1e-3, 1, 2)`` is ``[0.001, 0.003162, 0.01, ..., 1.0]`` (7 rates, half a decade apart).
    Each rate is rounded to 4 significant digits, so that printed grids are exact.
    """
    if not (0 < low <= high) or points_per_decade < 1:
        raise ValueError(f"need 0 < low <= high and points_per_decade >= 1, got {low}, {high}, {points_per_decade}")
    a, b = math.log10(low), math.log10(high)
    n = round((b - a) * points_per_decade) + 1
    exps = [a + i * (b - a) / max(n - 1, 1) for i in range(n)]
    return [float(f"{10 ** e:.4g}") for e in exps]


def select_best(val_accuracy: torch.Tensor, val_loss: torch.Tensor) -> int:
    r"""The selection rule: the index of the learning rate with the highest mean validation accuracy over seeds.

    ``val_accuracy`` and ``val_loss`` are ``(n_lrs, n_seeds)``. A diverged run (non-finite
    loss) counts as accuracy 0 and loss :math:`+\infty`. Ties in mean accuracy (within
    ``1e-12``) go to the lower mean validation loss, then to the smaller learning rate
    (the lower index).
    """
    acc = torch.as_tensor(val_accuracy, dtype=torch.float64)
    loss = torch.as_tensor(val_loss, dtype=torch.float64)
    if acc.ndim != 2 or acc.shape != loss.shape or acc.shape[0] == 0:
        raise ValueError(f"need two (n_lrs, n_seeds) tables of the same shape, got {tuple(acc.shape)} and "
                         f"{tuple(loss.shape)}")
    bad = ~torch.isfinite(loss)
    acc = torch.where(bad, torch.zeros_like(acc), acc).mean(1)
    loss = torch.where(bad, torch.full_like(loss, math.inf), loss).mean(1)
    best_acc = acc.max()
    tied = (acc >= best_acc - 1e-12).nonzero().flatten().tolist()
    return min(tied, key=lambda i: (loss[i].item(), i))


def good_range(lrs, scores: torch.Tensor, tol: float = 0.02) -> tuple[float, float, float]:
    r"""``(low, high, decades)``: the learning rates whose mean score is within ``tol`` of the best one.

    ``scores`` is ``(n_lrs, n_seeds)`` (higher is better, e.g. validation accuracy);
    ``decades`` is :math:`\log_{10}(\text{high}/\text{low})`, the width of the good range on
    the grid (0 when a single grid point qualifies). The range is the span from the
    smallest to the largest qualifying rate.
    """
    mean = torch.as_tensor(scores, dtype=torch.float64).nan_to_num(0.0).mean(1)
    ok = (mean >= mean.max() - tol).nonzero().flatten().tolist()
    low, high = float(lrs[ok[0]]), float(lrs[ok[-1]])
    return low, high, math.log10(high / low)


@dataclass
class Sweep:
    """The results of one optimizer over a learning-rate grid and seeds; every table is ``(n_lrs, n_seeds)``.

    ``train_loss``: the final loss on the whole training set; ``val_*``/``test_*``: final loss
    and accuracy on the validation / test data (test ``nan`` when none was given).
    Diverged runs hold loss ``inf`` and accuracy 0. ``best`` is the index chosen by
    :func:`select_best` on the validation tables; ``histories[i][j]`` (when kept) is the
    :class:`~course_lib.training.History` of learning rate ``i``, seed ``j``.
    """

    name: str
    lrs: list
    seeds: list
    train_loss: torch.Tensor
    val_loss: torch.Tensor
    val_accuracy: torch.Tensor
    test_loss: torch.Tensor
    test_accuracy: torch.Tensor
    diverged: torch.Tensor
    best: int
    histories: list | None = field(default=None, repr=False)

    @property
    def best_lr(self) -> float:
        return float(self.lrs[self.best])

    @property
    def best_at_edge(self) -> bool:
        """True when the chosen rate is the smallest or the largest of the grid: widen the grid."""
        return self.best in (0, len(self.lrs) - 1)

    def at_best(self, table: str) -> tuple[float, float]:
        """``(mean, std)`` over seeds of a table (``"test_accuracy"``, ``"train_loss"``, ...) at the chosen rate."""
        row = getattr(self, table)[self.best].to(torch.float64)
        std = row.std().item() if row.numel() > 1 else 0.0
        return row.mean().item(), std

    def good_range(self, tol: float = 0.02) -> tuple[float, float, float]:
        return good_range(self.lrs, self.val_accuracy, tol)

    def summary(self, tol: float = 0.02) -> dict:
        """The row of the comparison table, as a dict of floats."""
        tr, tr_sd = self.at_best("train_loss")
        te, te_sd = self.at_best("test_accuracy")
        va, va_sd = self.at_best("val_accuracy")
        return {"optimizer": self.name, "best_lr": self.best_lr, "train_loss": tr, "train_loss_std": tr_sd,
                "val_accuracy": va, "val_accuracy_std": va_sd, "test_accuracy": te, "test_accuracy_std": te_sd,
                "good_range_decades": self.good_range(tol)[2], "diverged_runs": int(self.diverged.sum()),
                "best_at_edge": self.best_at_edge}


def _runs(optimizer_cls, lrs, seeds, model_fn, train_data, val_data, test_data, epochs, batch_size,
          optimizer_kwargs, scheduler_fn, scheduler_interval, loss_fn, keep_histories, track_val, on_run):
    n_l, n_s = len(lrs), len(seeds)
    tables = {k: torch.full((n_l, n_s), math.nan, dtype=torch.float64)
              for k in ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")}
    diverged = torch.zeros(n_l, n_s, dtype=torch.bool)
    histories = [[None] * n_s for _ in range(n_l)] if keep_histories else None
    for i, lr in enumerate(lrs):
        for j, seed in enumerate(seeds):
            model = model_fn(seed)
            opt = optimizer_cls(model.parameters(), lr=lr, **optimizer_kwargs)
            sched = scheduler_fn(opt) if scheduler_fn is not None else None
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="diverged at step")  # recorded in the tables instead
                hist = fit(model, opt, train_data, loss_fn=loss_fn, epochs=epochs, batch_size=batch_size,
                           val_data=val_data if track_val else None, scheduler=sched,
                           scheduler_interval=scheduler_interval,
                           generator=torch.Generator().manual_seed(seed), progress=False)
            bad = hist.diverged or not all(torch.isfinite(p).all() for p in model.parameters())
            if bad:
                diverged[i, j] = True
                tables["train_loss"][i, j] = tables["val_loss"][i, j] = math.inf
                tables["val_accuracy"][i, j] = 0.0
                if test_data is not None:
                    tables["test_loss"][i, j], tables["test_accuracy"][i, j] = math.inf, 0.0
            else:
                tables["train_loss"][i, j] = evaluate(model, train_data, loss_fn=loss_fn)[0]
                vl, va = evaluate(model, val_data, loss_fn=loss_fn)
                tables["val_loss"][i, j], tables["val_accuracy"][i, j] = vl, va if va is not None else math.nan
                if test_data is not None:
                    tl, ta = evaluate(model, test_data, loss_fn=loss_fn)
                    tables["test_loss"][i, j], tables["test_accuracy"][i, j] = tl, ta if ta is not None else math.nan
            if keep_histories:
                histories[i][j] = hist
            on_run()
    return tables, diverged, histories


def sweep(optimizer_cls, lrs, seeds=(0, 1, 2), *, model_fn: Callable[[int], torch.nn.Module], train_data, val_data,
          test_data=None, epochs: int = 10, batch_size: int | None = None, optimizer_kwargs: dict | None = None,
          scheduler_fn=None, scheduler_interval: str = "epoch", loss_fn=None, name: str | None = None,
          keep_histories: bool = False, track_val: bool = False, progress: bool = True,
          _bar=None) -> Sweep:
    r"""Train ``optimizer_cls(model.parameters(), lr=lr, **optimizer_kwargs)`` for every ``lr`` and seed.

    ``model_fn(seed)`` returns a fresh model (on the right device) whose weights depend on
    ``seed`` only; the same seed also orders the mini-batches
    (``torch.Generator().manual_seed(seed)``), so optimizers see identical models and batches.
    ``scheduler_fn(optimizer)`` may return a ``torch.optim.lr_scheduler`` object (stepped per
    epoch or per step, see :func:`~course_lib.training.fit`). ``track_val=True`` records the
    validation curve per epoch in the histories. Works with any optimizer class that takes
    ``lr``: pass its other hyperparameters in ``optimizer_kwargs``.
    """
    lrs, seeds = [float(lr) for lr in lrs], [int(s) for s in seeds]
    if not lrs or not seeds:
        raise ValueError("need at least one learning rate and one seed")
    if any(lr <= 0 for lr in lrs):
        raise ValueError(f"learning rates must be positive, got {lrs}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    name = name or getattr(optimizer_cls, "__name__", str(optimizer_cls))
    from tqdm.auto import tqdm

    bar = _bar if _bar is not None else tqdm(total=len(lrs) * len(seeds), desc=name, disable=not progress, leave=False)
    try:
        tables, diverged, histories = _runs(optimizer_cls, lrs, seeds, model_fn, train_data, val_data, test_data,
                                            epochs, batch_size, dict(optimizer_kwargs or {}), scheduler_fn,
                                            scheduler_interval, loss_fn, keep_histories, track_val,
                                            lambda: bar.update(1))
    finally:
        if _bar is None:
            bar.close()
    # regression (no accuracy): every rate ties on accuracy, so the validation loss decides
    best = select_best(tables["val_accuracy"].nan_to_num(0.0), tables["val_loss"])
    return Sweep(name, lrs, seeds, diverged=diverged, best=best, histories=histories, **tables)


def compare(optimizers: dict, lrs, seeds=(0, 1, 2), *, progress: bool = True, **kwargs) -> dict:
    """Run :func:`sweep` for each entry of ``optimizers`` (name -> class, or name -> (class, kwargs)).

    Every optimizer gets the same grid, seeds, model, data and epochs (the fair budget);
    one progress bar counts all runs. Returns name -> :class:`Sweep`, in the given order.
    """
    from tqdm.auto import tqdm

    entries = {}
    for name, spec in optimizers.items():
        cls, okw = (spec if isinstance(spec, tuple) else (spec, {}))
        entries[name] = (cls, okw)
    bar = tqdm(total=len(entries) * len(lrs) * len(seeds), desc="runs", disable=not progress, leave=False)
    try:
        return {name: sweep(cls, lrs, seeds, optimizer_kwargs=okw, name=name, _bar=bar, **kwargs)
                for name, (cls, okw) in entries.items()}
    finally:
        bar.close()


def comparison_table(sweeps: dict, tol: float = 0.02, digits: int = 4) -> str:
    """A plain-text table, one row per optimizer, numbers to ``digits`` significant digits (spreads to 2);
    rows sorted by test accuracy (ties keep the given order).

    Columns: chosen learning rate (``*`` when it sits at the edge of the grid), final training
    loss and test accuracy at that rate (mean +- std over seeds), the width of the good range
    in decades (mean validation accuracy within ``tol`` of the best), and diverged runs in the sweep.
    """
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    rows = sorted((s.summary(tol) for s in sweeps.values()), key=lambda r: -r["test_accuracy"])
    head = f"{'optimizer':<14}{'best lr':>10}  {'train loss':>18}  {'test accuracy':>18}  {'good range':>10}  {'diverged':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lr = fmt(r["best_lr"]) + ("*" if r["best_at_edge"] else " ")
        lines.append(f"{r['optimizer']:<14}{lr:>10}  "
                     f"{fmt(r['train_loss'], digits) + ' +- ' + fmt(r['train_loss_std'], min(2, digits)):>18}  "
                     f"{fmt(r['test_accuracy'], digits) + ' +- ' + fmt(r['test_accuracy_std'], min(2, digits)):>18}  "
                     f"{fmt(r['good_range_decades'], 3) + ' dec':>10}  {r['diverged_runs']:>8}")
    return "\n".join(lines)


def plot_sensitivity(sweeps: dict, table: str = "val_accuracy", ax=None, *, log_y: bool | None = None):
    """Mean +- std over seeds of ``table`` against the learning rate, one line per optimizer; the chosen rate marked.

    Each optimizer is drawn in its course-wide colour and line style (:func:`course_lib.plotting.optimizer_style`;
    a name it does not know takes the next colour of the cycle); the legend sits under the axes, outside the
    curves. Diverged runs are left out of the mean (a gap where every seed diverged). Returns the axes.
    """
    from .plotting import legend_below
    from .surface_plots import path_styles

    if ax is None:
        from .plotting import subplots

        _, ax = subplots(width=5.5, height=3.6)
    styles = path_styles(sweeps)
    for k, (name, s) in enumerate(sweeps.items()):
        vals = getattr(s, table).clone()
        vals[s.diverged] = math.nan
        mean = vals.nanmean(1)
        n_ok = (~torch.isnan(vals)).sum(1)
        std = torch.where(n_ok > 1, torch.sqrt(((vals - mean[:, None]) ** 2).nansum(1) / (n_ok - 1).clamp(min=1)),
                          torch.zeros_like(mean))
        line, = ax.plot(s.lrs, mean.numpy(), marker="o", ms=3, label=name, lw=1.3, **styles[k])
        ax.fill_between(s.lrs, (mean - std).numpy(), (mean + std).numpy(), color=line.get_color(), alpha=0.15)
        ax.plot([s.best_lr], [mean[s.best].item()], marker="*", ms=10, color=line.get_color())
    ax.set_xscale("log")
    if log_y if log_y is not None else table.endswith("loss"):
        ax.set_yscale("log")
    ax.set_xlabel(r"learning rate $\eta$")
    ax.set_ylabel(table.replace("_", " ").replace("val ", "validation ") + "\n(mean ± std over seeds)")
    legend_below(ax, ncol=min(len(sweeps), 4))
    return ax
