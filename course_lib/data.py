r"""Small data sets, made on the spot from a seed or shipped inside an installed package
(nothing is downloaded).

:func:`make_linear_regression` draws :math:`y = X w_{\text{true}} + \varepsilon`:
the simplest problem on which stochastic gradients can be studied exactly,
because its loss :math:`\tfrac{1}{2n}\|Xw - y\|^2` is a quadratic with Hessian
:math:`X^\top X / n` and a closed-form minimizer (the least-squares solution).

:func:`load_digits` gives real data: scikit-learn's bundled handwritten digits
(1,797 grey-level images of 8x8 pixels, ten classes; the UCI "optical recognition
of handwritten digits" test set, Alpaydin & Kaynak 1998), split by a seed into
train / validation / test and standardized with the *training* statistics only,
so that nothing about the held-out data leaks into the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["LinearRegressionData", "make_linear_regression", "DigitsData", "load_digits"]


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


_SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class DigitsData:
    r"""The digits, split three ways: ``X_train``, ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test``.

    Features are the 64 pixels, standardized per pixel with the training mean and standard
    deviation, :math:`x \mapsto (x - \mu_{\text{train}}) / \sigma_{\text{train}}` (a pixel that
    is constant on the training set keeps :math:`\sigma = 1`). ``X_*`` are ``(n, 64)``, or
    ``(n, 1, 8, 8)`` when loaded with ``as_images=True``; labels ``y_*`` are int64 in ``0..9``.
    ``mean`` and ``std`` are the ``(64,)`` training statistics.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    n_classes: int = 10

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, y)`` of ``"train"``, ``"val"`` or ``"test"``: the pair that ``training.fit`` takes."""
        if name not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {name!r}")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split("train")

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split("val")

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split("test")

    def images(self, name: str) -> torch.Tensor:
        """The features of a split as ``(n, 1, 8, 8)`` images (a view, for a convolutional net)."""
        return self.split(name)[0].reshape(-1, 1, 8, 8)

    def flat(self, name: str) -> torch.Tensor:
        """The features of a split as ``(n, 64)`` vectors (a view, for an MLP)."""
        return self.split(name)[0].reshape(-1, 64)

    def as_images(self) -> "DigitsData":
        """The same data with every ``X_*`` shaped ``(n, 1, 8, 8)``."""
        return self._reshaped((1, 8, 8))

    def as_flat(self) -> "DigitsData":
        """The same data with every ``X_*`` shaped ``(n, 64)``."""
        return self._reshaped((64,))

    def _reshaped(self, shape) -> "DigitsData":
        Xs = {f"X_{s}": getattr(self, f"X_{s}").reshape(-1, *shape) for s in _SPLITS}
        ys = {f"y_{s}": getattr(self, f"y_{s}") for s in _SPLITS}
        return DigitsData(**Xs, **ys, mean=self.mean, std=self.std, n_classes=self.n_classes)

    def to(self, *args, **kwargs) -> "DigitsData":
        """Move (or cast) the features and statistics; labels keep their int64 dtype."""
        Xs = {f"X_{s}": getattr(self, f"X_{s}").to(*args, **kwargs) for s in _SPLITS}
        ys = {f"y_{s}": getattr(self, f"y_{s}").to(device=Xs["X_train"].device) for s in _SPLITS}
        return DigitsData(**Xs, **ys, mean=self.mean.to(*args, **kwargs), std=self.std.to(*args, **kwargs),
                          n_classes=self.n_classes)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={getattr(self, f'y_{s}').shape[0]}" for s in _SPLITS)
        return f"DigitsData({sizes}, features={tuple(self.X_train.shape[1:])}, dtype={self.X_train.dtype})"


def load_digits(seed: int = 0, *, val_fraction: float = 0.2, test_fraction: float = 0.2, as_images: bool = False,
                device=None, dtype=torch.float32) -> DigitsData:
    """scikit-learn's bundled 8x8 digits (no download), split by ``seed`` and standardized on the training split.

    The split is a seeded permutation drawn on the CPU (the global RNG is not touched): the
    first ``round(test_fraction * n)`` samples are the test set, the next
    ``round(val_fraction * n)`` the validation set, the rest the training set. The same seed
    gives the same split on every machine.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"need 0 <= val_fraction, test_fraction and val_fraction + test_fraction < 1, "
                         f"got val_fraction={val_fraction}, test_fraction={test_fraction}")
    from sklearn.datasets import load_digits as _sk_load_digits  # bundled with scikit-learn

    bunch = _sk_load_digits()
    X = torch.as_tensor(bunch.data, dtype=torch.float64)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    n = X.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    parts = {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}
    Xtr = X[parts["train"]]
    mean = Xtr.mean(0)
    std = Xtr.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    shape = (1, 8, 8) if as_images else (64,)
    fields = {}
    for name, idx in parts.items():
        fields[f"X_{name}"] = ((X[idx] - mean) / std).reshape(-1, *shape).to(device=device, dtype=dtype)
        fields[f"y_{name}"] = y[idx].to(device=device)
    return DigitsData(**fields, mean=mean.to(device=device, dtype=dtype), std=std.to(device=device, dtype=dtype))
