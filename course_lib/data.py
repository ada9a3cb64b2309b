r"""Small data sets, made on the spot from a seed (nothing is downloaded).

:func:`make_linear_regression` draws :math:`y = X w_{\text{true}} + \varepsilon`:
the simplest problem on which stochastic gradients can be studied exactly,
because its loss :math:`\tfrac{1}{2n}\|Xw - y\|^2` is a quadratic with Hessian
:math:`X^\top X / n` and a closed-form minimizer (the least-squares solution).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["LinearRegressionData", "make_linear_regression"]


@dataclass(frozen=True, eq=False)
class LinearRegressionData:
    r"""Features ``X`` ``(n, d)``, targets ``y`` ``(n,)``, the true weights and the noise level.

    The loss is :math:`f(w) = \tfrac{1}{2n}\sum_i (x_i^\top w - y_i)^2`; per-sample
    gradients :math:`x_i (x_i^\top w - y_i)` average to :math:`\nabla f(w)`. The Hessian,
    the minimizer and the minimum are computed once, when first asked for.
    """

    X: torch.Tensor
    y: torch.Tensor
    w_true: torch.Tensor
    noise_std: float

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        """The mean of ``0.5 (x_i^T w - y_i)^2``; ``w`` may be a batch ``(..., d)`` of weight vectors."""
        residual = w @ self.X.T - self.y
        return 0.5 * (residual ** 2).mean(-1)

    def grad(self, w: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The gradient of the loss at ``w``, on the samples ``idx`` (all of them by default)."""
        X, y = (self.X, self.y) if idx is None else (self.X[idx], self.y[idx])
        return X.T @ (X @ w - y) / X.shape[0]

    def per_sample_grads(self, w: torch.Tensor) -> torch.Tensor:
        """The ``(n, d)`` gradients of each sample's loss at ``w``."""
        return self.X * (self.X @ w - self.y)[:, None]

    @cached_property
    def hessian(self) -> torch.Tensor:
        return self.X.T @ self.X / self.n

    @cached_property
    def w_star(self) -> torch.Tensor:
        """The least-squares solution, the minimizer of the loss."""
        return torch.linalg.lstsq(self.X, self.y[:, None]).solution[:, 0]

    @cached_property
    def loss_star(self) -> float:
        return float(self.loss(self.w_star))

    def to(self, *args, **kwargs) -> "LinearRegressionData":
        return LinearRegressionData(self.X.to(*args, **kwargs), self.y.to(*args, **kwargs),
                                    self.w_true.to(*args, **kwargs), self.noise_std)


def make_linear_regression(n: int = 500, d: int = 10, *, noise_std: float = 0.5, kappa: float = 10.0,
                           seed: int = 0, dtype=torch.float64, device=None) -> LinearRegressionData:
    """A linear-regression data set drawn from ``seed`` on the CPU, then moved to ``device``.

    Feature ``j`` is Gaussian with standard deviation ``kappa ** (-j / (2 (d-1)))``, so the
    Hessian ``X^T X / n`` has a condition number close to ``kappa``; the true weights are
    standard Gaussian and the targets carry Gaussian noise of standard deviation ``noise_std``.
    The same seed gives the same numbers on every machine.
    """
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    if kappa < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    g = torch.Generator().manual_seed(seed)
    exponents = torch.arange(d, dtype=torch.float64) / max(d - 1, 1)
    scales = float(kappa) ** (-0.5 * exponents)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    w_true = torch.randn(d, generator=g, dtype=torch.float64)
    y = X @ w_true + noise_std * torch.randn(n, generator=g, dtype=torch.float64)
    data = LinearRegressionData(X, y, w_true, float(noise_std))
    return data.to(dtype=dtype, device=device)
