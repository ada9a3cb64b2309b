r"""Wilson et al.'s linearly separable problem, on which adaptive methods generalize worse than gradient descent.

Wilson, Roelofs, Stern, Srebro & Recht (NeurIPS 2017, "The marginal value of
adaptive gradient methods in machine learning", section 3.3) build a binary
least-squares problem :math:`\min_w \tfrac{1}{2n}\|Xw - y\|^2`, :math:`y_i \in \{\pm 1\}`,
with more features than samples (so it has infinitely many zero-loss solutions).
Sample :math:`i` has the features

.. math::
    x_{i,1} = y_i, \quad x_{i,2} = x_{i,3} = 1, \quad
    x_{i,j} = 1 \text{ for } j \in \{4 + 5(i-1), \dots, 4 + 5(i-1) + 2(1 - y_i)\},

and 0 elsewhere: the label itself, two always-on features, and a private block of
1 (label :math:`+1`) or 5 (label :math:`-1`) features that no other sample uses.
When the positives are the majority, :math:`u = \operatorname{sign}(X^\top y)` satisfies
:math:`Xu = 4y`, and then (their Lemma 3.1):

* gradient descent (and SGD, with or without momentum) started at 0 stays in the row
  space of :math:`X` and converges to the **minimum-norm** solution :math:`X^+ y`, which
  puts enough weight on feature 1 to classify every new sample correctly;
* AdaGrad, RMSprop and Adam started at 0 move along :math:`u` at every step (the
  coordinate-wise scaling turns every gradient :math:`c_t X^\top y` into :math:`\propto u`)
  and converge to :math:`w = u / 4`. On a new sample its private features carry
  weight 0, so :math:`x^\top w = (y + 2)/4 > 0`: **every** new sample is called
  positive, and the test error is the fraction of negatives, the minority label.

The argument needs the adaptive methods' :math:`\epsilon` to be negligible
(:math:`\epsilon \le 10^{-10}` here): :math:`\epsilon` mixes a little plain gradient
into the update and breaks the exact sign structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["WilsonData", "wilson_data", "wilson_features", "min_norm_solution", "sign_solution",
           "train_linear", "least_squares_loss", "classification_error"]


def wilson_features(y: torch.Tensor, n_features: int | None = None, offset: int = 0) -> torch.Tensor:
    r"""The ``(n, n_features)`` design of Wilson et al. for labels ``y`` (``+1``/``-1``).

    Sample ``i`` gets ``x[0] = y_i``, ``x[1] = x[2] = 1`` and ones on its private block
    ``3 + 5 (offset + i) ... `` (1 column for a positive, 5 for a negative);
    ``offset`` shifts the blocks, so that a test set can use columns the training set never touches.
    ``n_features`` defaults to ``3 + 5 (offset + n)``.
    """
    y = torch.as_tensor(y)
    if y.ndim != 1 or not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must be a 1-d tensor of +1 / -1 labels")
    n = y.shape[0]
    d = 3 + 5 * (offset + n) if n_features is None else int(n_features)
    if d < 3 + 5 * (offset + n):
        raise ValueError(f"need at least {3 + 5 * (offset + n)} features, got {d}")
    dtype = y.dtype if y.is_floating_point() else torch.float64
    X = torch.zeros(n, d, dtype=dtype, device=y.device)
    X[:, 0] = y.to(dtype)
    X[:, 1:3] = 1
    for i in range(n):
        start = 3 + 5 * (offset + i)
        width = 1 if y[i] > 0 else 5
        X[i, start:start + width] = 1
    return X


@dataclass(frozen=True, eq=False)
class WilsonData:
    """Training and test samples of the construction; the test samples use columns of their own."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def minority_fraction(self) -> float:
        """The fraction of negative labels in the test set: the test error of the adaptive methods' solution."""
        return float((self.y_test < 0).to(torch.float64).mean())


def wilson_data(n_train: int = 30, n_test: int = 200, p_positive: float = 0.7, *, seed: int = 0,
                dtype=torch.float64, device=None) -> WilsonData:
    """Labels drawn i.i.d. (``+1`` with probability ``p_positive``) from ``seed``, then the features.

    The argument needs a positive majority in the training set; a draw without one is
    replaced by the next draw of the same generator (so a seed always gives the same data).
    """
    if n_train < 1 or n_test < 1 or not 0.5 < p_positive < 1:
        raise ValueError(f"need n_train, n_test >= 1 and 0.5 < p_positive < 1, got {n_train}, {n_test}, {p_positive}")
    g = torch.Generator().manual_seed(seed)
    for _ in range(1000):
        y = torch.where(torch.rand(n_train + n_test, generator=g, dtype=torch.float64) < p_positive, 1.0, -1.0)
        if y[:n_train].sum() > 0:
            break
    else:  # pragma: no cover - needs p_positive very close to 1/2 and tiny n_train
        raise ValueError("could not draw a training set with a positive majority")
    X = wilson_features(y)
    return WilsonData(X[:n_train].to(device=device, dtype=dtype), y[:n_train].to(device=device, dtype=dtype),
                      X[n_train:].to(device=device, dtype=dtype), y[n_train:].to(device=device, dtype=dtype))


def least_squares_loss(w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\tfrac{1}{2n}\|Xw - y\|^2`."""
    return 0.5 * ((X @ w - y) ** 2).mean()


def classification_error(w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of samples with ``sign(x^T w) != y`` (a score of exactly 0 counts as an error)."""
    return float((torch.sign(X @ w) != y).to(torch.float64).mean())


def min_norm_solution(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The minimum-norm interpolant :math:`X^\top (X X^\top)^{-1} y = X^+ y` (``X`` has full row rank)."""
    return X.T @ torch.linalg.solve(X @ X.T, y)


def sign_solution(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The adaptive methods' limit :math:`u / c`, :math:`u = \operatorname{sign}(X^\top y)`, with :math:`c` from :math:`Xu = cy`.

    Columns with :math:`(X^\top y)_j = 0` (unused columns) get weight 0. Raises ValueError when
    :math:`Xu` is not a multiple of :math:`y` (the lemma's assumption fails).
    """
    u = torch.sign(X.T @ y)
    Xu = X @ u
    c = (Xu @ y) / (y @ y)
    if not torch.allclose(Xu, c * y):
        raise ValueError("X sign(X^T y) is not a multiple of y: the construction's assumption does not hold")
    return u / c


def train_linear(optimizer_cls, X: torch.Tensor, y: torch.Tensor, steps: int, *, w0: torch.Tensor | None = None,
                 scheduler_fn=None, loss_tol: float | None = None, **hparams) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Minimize the least-squares loss full-batch with ``optimizer_cls(**hparams)`` from ``w0`` (default 0).

    Returns the final weights and the ``(steps + 1,)`` losses (``losses[0]`` at the start).
    Stops early (the remaining losses ``nan``) if the loss stops being finite, or, with
    ``loss_tol``, as soon as the loss is at most ``loss_tol``: the run has converged.

    Why stop at convergence: with a constant learning rate, RMSprop and Adam do not stay at a
    solution. Once the gradient is at round-off level their second-moment average
    :math:`v` keeps decaying (by :math:`\beta_2` per step), the effective step
    :math:`\eta/(\sqrt{v} + \epsilon)` grows without bound, and the iteration eventually turns
    unstable and amplifies round-off into steps of size about :math:`\eta`. What such a run
    does after convergence is decided by the last bits of the arithmetic, not by the method.
    """
    if loss_tol is not None and not loss_tol > 0:
        raise ValueError(f"loss_tol must be positive, got {loss_tol}")
    w = (torch.zeros(X.shape[1], dtype=X.dtype, device=X.device) if w0 is None else w0.clone()).requires_grad_(True)
    opt = optimizer_cls([w], **hparams)
    sched = scheduler_fn(opt) if scheduler_fn is not None else None
    losses = torch.full((steps + 1,), float("nan"), dtype=torch.float64)
    for k in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = least_squares_loss(w, X, y)
        losses[k] = loss.item()
        if k == steps or not torch.isfinite(loss) or (loss_tol is not None and loss.item() <= loss_tol):
            break
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return w.detach(), losses
