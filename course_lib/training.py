r"""A small training loop: :func:`fit` trains a model with any optimizer and keeps a :class:`History`.

Every step calls ``optimizer.step(closure)``, where the closure zeroes the
gradients, runs the forward pass, the loss and the backward pass, and returns
the loss. First-order optimizers call it once; L-BFGS, Newton-type methods and
K-FAC may call it several times. Optimizers that differentiate the gradient again
(Newton, saddle-free Newton) say so with ``optimizer.create_graph = True``; the
backward pass then keeps its graph. The same loop therefore drives every optimizer
of the course.

One epoch visits the training set once: in one full batch (``batch_size=None``,
deterministic gradient descent) or in shuffled mini-batches of ``batch_size``
(stochastic gradients :math:`g_t = \frac{1}{|B_t|}\sum_{i \in B_t} \nabla \ell_i(\theta_t)`).
The loss is the cross-entropy for integer targets (classification) and the mean
squared error otherwise, unless ``loss_fn`` says otherwise.

A run whose loss stops being finite has **diverged**: :func:`fit` stops, warns
``"diverged at step k"`` and records ``k`` in ``History.diverged_at``; it never
raises, so a widget or a learning-rate sweep can go on.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["History", "fit", "evaluate", "default_loss_fn"]


@dataclass
class History:
    """What :func:`fit` recorded.

    ``train_loss``: the loss of every step's mini-batch, before that step's update (floats);
    ``epoch_train_loss``: the mean of ``train_loss`` over each epoch;
    ``val_loss``, ``val_accuracy``: on the validation data after each epoch (accuracy only
    for classification); ``lr``: the first group's learning rate at every step;
    ``diverged_at``: the index (in ``train_loss``) of the first step whose loss was not
    finite, or ``None``; ``seconds``: wall-clock time; ``steps``: optimizer steps taken.
    """

    train_loss: list = field(default_factory=list)
    epoch_train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    diverged_at: int | None = None
    seconds: float = 0.0
    steps: int = 0

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def __repr__(self) -> str:
        last = f"{self.train_loss[-1]:.4g}" if self.train_loss else "-"
        extra = f", diverged_at={self.diverged_at}" if self.diverged else ""
        return f"History(steps={self.steps}, epochs={len(self.epoch_train_loss)}, last train loss={last}{extra})"


def default_loss_fn(y: torch.Tensor):
    """Cross-entropy for integer (class) targets, mean squared error otherwise."""
    if y.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        return F.cross_entropy
    return F.mse_loss


def _check_pair(data, name):
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data)):
        raise ValueError(f"{name} must be an (X, y) pair of tensors")
    X, y = data
    if X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"{name}: X and y need the same, non-zero number of rows, got {X.shape[0]} and {y.shape[0]}")
    return X, y


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, *, loss_fn=None, batch_size: int = 4096) -> tuple[float, float | None]:
    """``(loss, accuracy)`` of ``model`` on an ``(X, y)`` pair, in eval mode (accuracy ``None`` for regression).

    The loss is the mean over all samples (computed in chunks of ``batch_size``).
    """
    X, y = _check_pair(data, "data")
    loss_fn = loss_fn or default_loss_fn(y)
    classification = not torch.is_floating_point(y)
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    try:
        for i in range(0, X.shape[0], batch_size):
            out = model(X[i:i + batch_size])
            yb = y[i:i + batch_size]
            total += float(loss_fn(out, yb)) * yb.shape[0]
            if classification:
                correct += int((out.argmax(-1) == yb).sum())
    finally:
        model.train(was_training)
    n = X.shape[0]
    return total / n, (correct / n if classification else None)


def _switch(optimizer, mode: str) -> None:
    # schedule-free optimizers evaluate at a different point than they train at: they have .eval()/.train()
    method = getattr(optimizer, mode, None)
    if callable(method):
        method()


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_data, *, loss_fn=None, epochs: int = 1,
        batch_size: int | None = None, val_data=None, scheduler=None, scheduler_interval: str = "epoch",
        generator: torch.Generator | None = None, progress: bool = True, desc: str | None = None) -> History:
    """Train ``model`` with ``optimizer`` on ``train_data = (X, y)`` for ``epochs`` epochs; return a :class:`History`.

    ``batch_size=None`` is full-batch training; otherwise each epoch shuffles the training
    set with ``torch.randperm(n, generator=generator)`` (the global RNG when ``generator``
    is None) and takes consecutive slices. ``scheduler`` (a ``torch.optim.lr_scheduler``
    object) is stepped after every epoch, or after every step with
    ``scheduler_interval="step"`` (warm-up over a few hundred steps, say). ``val_data``
    is evaluated after each epoch. An optimizer with ``.train()`` / ``.eval()`` methods
    (schedule-free) is switched to eval mode for each evaluation and left in eval mode at the
    end, so that the returned model is the one to evaluate. A tqdm progress bar shows
    the steps (``progress=False`` hides it).
    """
    X, y = _check_pair(train_data, "train_data")
    if val_data is not None:
        _check_pair(val_data, "val_data")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    loss_fn = loss_fn or default_loss_fn(y)
    classification = not torch.is_floating_point(y)
    n = X.shape[0]
    bs = n if batch_size is None or batch_size >= n else batch_size
    steps_per_epoch = math.ceil(n / bs)

    from tqdm.auto import tqdm

    history = History()
    start = time.perf_counter()
    bar = tqdm(total=epochs * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    model.train()
    _switch(optimizer, "train")
    try:
        create_graph = bool(getattr(optimizer, "create_graph", False))
        for epoch in range(epochs):
            if bs == n:
                batches = [None]
            else:
                perm = torch.randperm(n, generator=generator).to(X.device)
                batches = [perm[i:i + bs] for i in range(0, n, bs)]
            epoch_losses = []
            for idx in batches:
                Xb, yb = (X, y) if idx is None else (X[idx], y[idx])
                first = []

                def closure():
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(model(Xb), yb)
                    loss.backward(create_graph=create_graph)
                    if not first:
                        first.append(loss.detach())
                    return loss

                history.lr.append(float(optimizer.param_groups[0]["lr"]))
                optimizer.step(closure)
                loss_value = float(first[0]) if first else float("nan")
                history.train_loss.append(loss_value)
                epoch_losses.append(loss_value)
                history.steps += 1
                bar.update(1)
                if not math.isfinite(loss_value):
                    history.diverged_at = history.steps - 1
                    break
                if scheduler is not None and scheduler_interval == "step":
                    scheduler.step()
            if history.diverged_at is None and not all(torch.isfinite(p).all() for p in model.parameters()):
                history.diverged_at = history.steps  # the last update left the parameters non-finite
            if history.diverged_at is not None:
                warnings.warn(f"diverged at step {history.diverged_at}", RuntimeWarning, stacklevel=2)
                break
            history.epoch_train_loss.append(sum(epoch_losses) / len(epoch_losses))
            if val_data is not None:
                _switch(optimizer, "eval")
                val_loss, val_acc = evaluate(model, val_data, loss_fn=loss_fn)
                _switch(optimizer, "train")
                history.val_loss.append(val_loss)
                if classification:
                    history.val_accuracy.append(val_acc)
            bar.set_postfix(loss=f"{history.epoch_train_loss[-1]:.4g}")
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
    finally:
        _switch(optimizer, "eval")
        bar.close()
        history.seconds = time.perf_counter() - start
    return history
