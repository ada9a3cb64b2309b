r"""Deep linear networks (notebook 07): the trajectory view of gradient descent, computed exactly.

A depth-:math:`N` linear network maps :math:`x \mapsto W_N \cdots W_1 x` with
:math:`W_j \in \mathbb R^{d_j \times d_{j-1}}`; it can express only linear maps, so every question
about it is a question about *optimization*. With whitened inputs (:math:`\mathbb E[xx^\top] = I`) the
square loss is, up to a constant, :math:`f(W) = \tfrac12 \|W - \Phi\|_F^2` of the **end-to-end matrix**
:math:`W = W_N \cdots W_1` (:func:`end_to_end`) and the target :math:`\Phi`.

* :class:`DeepLinearNet`, :func:`end_to_end`, :func:`layer_gradients`
  (:math:`\nabla_{W_j} = (W_N\cdots W_{j+1})^\top \nabla f(W)\, (W_{j-1}\cdots W_1)^\top`).
* :func:`balancedness`: :math:`\max_j \|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F`, conserved by gradient flow
  (Arora, Cohen, Golowich & Hu, ICLR 2019); :func:`balanced_factors` / :func:`balanced_init` split an
  end-to-end matrix evenly over the layers (SVD, :math:`\Sigma^{1/N}` per layer), :func:`gaussian_init`,
  :func:`orthogonal_init` the usual alternatives; :func:`deficiency_margin`
  (:math:`\sigma_{\min}(\Phi) - \|W - \Phi\|_F`).
* :func:`saxe_mode_strength` and :func:`saxe_half_time`: the closed-form learning curve of one mode of a
  two-layer net (Saxe, McClelland & Ganguli, ICLR 2014); :func:`saxe_simulation` the same by gradient descent.
* :func:`end_to_end_update`: the update that gradient descent on balanced factors induces on :math:`W`
  (Arora, Cohen & Hazan, ICML 2018),
  :math:`W \leftarrow W - \eta \sum_{j=1}^N [WW^\top]^{\frac{j-1}{N}} \nabla f(W) [W^\top W]^{\frac{N-j}{N}}`;
  :func:`psd_power` takes the fractional powers (small eigenvalues zeroed); :func:`scalar_output_direction`
  its single-output form; :func:`loop_integral` shows that it is not a gradient field.
* :func:`train_factors`: gradient descent on the factors, recording loss, balancedness and every layer's
  singular values, stopping with ``diverged_at`` on a non-finite or exploding loss.
* :func:`identity_start`: the identity start of a linear residual net, optionally with a seeded perturbation of
  stated size (to leave an invariant set on purpose, not by round-off); :func:`first_step_below`.
* :func:`lp_regression_steps`, :func:`lp_regression_curve`, :func:`lp_tuned_steps`: gradient descent on the
  overparameterized :math:`\ell_p` regression of Arora, Cohen & Hazan (2018), batched over step sizes and data sets.
* :func:`scalar_escape_steps`: how long gradient descent needs to leave the origin of a depth-:math:`N`
  scalar net (the saddle of :func:`course_lib.saddles.scalar_linear_net`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

__all__ = ["DeepLinearNet", "end_to_end", "layer_gradients", "balancedness", "balanced_factors", "balanced_init",
           "gaussian_init", "orthogonal_init", "deficiency_margin", "square_loss", "saxe_mode_strength",
           "saxe_half_time", "saxe_simulation", "psd_power", "end_to_end_direction", "end_to_end_update",
           "scalar_output_direction", "loop_integral", "LinearNetRun", "train_factors", "identity_start",
           "first_step_below", "scalar_escape_steps", "lp_regression_steps", "lp_regression_curve", "lp_tuned_steps"]

F64 = torch.float64


def _check_dims(dims: Sequence[int]) -> list[int]:
    dims = [int(d) for d in dims]
    if len(dims) < 2:
        raise ValueError(f"dims needs at least two sizes (input and output), got {dims}")
    if any(d < 1 for d in dims):
        raise ValueError(f"every size in dims must be >= 1, got {dims}")
    return dims


# ---------------------------------------------------------------------------------------------- the network

def end_to_end(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""The end-to-end matrix :math:`W_N \cdots W_1` of ``weights = [W_1, ..., W_N]`` (first layer first)."""
    if len(weights) == 0:
        raise ValueError("weights is empty: a linear network has at least one layer")
    product = weights[0]
    for w in weights[1:]:
        if w.shape[1] != product.shape[0]:
            raise ValueError(f"layer shapes do not chain: {tuple(w.shape)} after {tuple(product.shape)}")
        product = w @ product
    return product


def layer_gradients(weights: Sequence[torch.Tensor], grad_end_to_end: torch.Tensor) -> list[torch.Tensor]:
    r"""The gradients :math:`G_j = (W_N \cdots W_{j+1})^\top\, \nabla f(W)\, (W_{j-1} \cdots W_1)^\top` of
    :math:`f(W_N \cdots W_1)` with respect to each layer, given :math:`\nabla f` at the end-to-end matrix."""
    n = len(weights)
    # prefix[j] = W_j ... W_1 (prefix[0] = I), suffix[j] = W_N ... W_{j+1} (suffix[N] = I)
    eye_in = torch.eye(weights[0].shape[1], dtype=weights[0].dtype, device=weights[0].device)
    eye_out = torch.eye(weights[-1].shape[0], dtype=weights[0].dtype, device=weights[0].device)
    prefix = [eye_in]
    for w in weights:
        prefix.append(w @ prefix[-1])
    suffix = [eye_out]
    for w in reversed(weights):
        suffix.append(suffix[-1] @ w)
    suffix = suffix[::-1]  # suffix[j] = W_N ... W_{j+1}
    return [suffix[j + 1].T @ grad_end_to_end @ prefix[j].T for j in range(n)]


class DeepLinearNet(torch.nn.Module):
    r"""``x -> W_N ... W_1 x`` for inputs of shape ``(n, dims[0])``; ``self.weights[j - 1]`` is :math:`W_j`.

    ``init``: ``"gaussian"`` (:func:`gaussian_init`), ``"balanced"`` (:func:`balanced_init`),
    ``"orthogonal"`` (:func:`orthogonal_init`) or ``"identity"`` (every layer the identity, as in a linear
    residual net at initialization; needs equal sizes); ``scale`` is passed on.
    """

    def __init__(self, dims: Sequence[int], *, init: str = "gaussian", scale: float = 1.0,
                 generator: torch.Generator | None = None, device=None, dtype: torch.dtype = F64):
        super().__init__()
        self.dims = _check_dims(dims)
        if init == "gaussian":
            weights = gaussian_init(self.dims, scale, generator=generator, device=device, dtype=dtype)
        elif init == "balanced":
            weights = balanced_init(self.dims, scale, generator=generator, device=device, dtype=dtype)
        elif init == "orthogonal":
            weights = orthogonal_init(self.dims, scale, generator=generator, device=device, dtype=dtype)
        elif init == "identity":
            if len(set(self.dims)) != 1:
                raise ValueError(f"init='identity' needs equal sizes, got dims={self.dims}")
            weights = [scale * torch.eye(self.dims[0], device=device, dtype=dtype) for _ in self.dims[1:]]
        else:
            raise ValueError(f"unknown init {init!r}: use 'gaussian', 'balanced', 'orthogonal' or 'identity'")
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(w) for w in weights])

    @property
    def depth(self) -> int:
        return len(self.weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = x @ w.T
        return x

    def end_to_end(self) -> torch.Tensor:
        return end_to_end(list(self.weights))

    def balancedness(self) -> float:
        return balancedness(list(self.weights))


# ---------------------------------------------------------------------------------------------- balancedness

def balancedness(weights: Sequence[torch.Tensor]) -> float:
    r""":math:`\max_{j} \|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F` over consecutive layers (0.0 for one layer).

    Gradient flow on any loss of the end-to-end matrix keeps every :math:`W_{j+1}^\top W_{j+1} - W_j W_j^\top`
    constant (Arora, Cohen, Golowich & Hu 2019); a step of size :math:`\eta` changes it by exactly
    :math:`\eta^2 (G_{j+1}^\top G_{j+1} - G_j G_j^\top)`.
    """
    worst = 0.0
    for w, w_next in zip(weights[:-1], weights[1:]):
        w, w_next = w.detach(), w_next.detach()
        gap = w_next.T @ w_next - w @ w.T
        worst = max(worst, float(torch.linalg.matrix_norm(gap)))
    return worst


def balanced_factors(end_to_end_matrix: torch.Tensor, dims: Sequence[int]) -> list[torch.Tensor]:
    r"""Layers ``[W_1, ..., W_N]`` with product ``end_to_end_matrix`` and balancedness zero (up to round-off).

    With the thin SVD :math:`A = U \Sigma V^\top` (:math:`k = \min(d_0, d_N)` singular values) and
    :math:`S = \Sigma^{1/N}`: :math:`W_1 = \begin{pmatrix} S V^\top \\ 0\end{pmatrix}`, hidden layers
    :math:`W_j = \begin{pmatrix} S & 0 \\ 0 & 0\end{pmatrix}`, :math:`W_N = \begin{pmatrix} U S & 0\end{pmatrix}`
    (zero padding to the sizes ``dims``). Then :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top =
    \operatorname{diag}(\Sigma^{2/N}, 0)` for every :math:`j` (the procedure of Arora et al. 2019, §3.3).
    Hidden sizes must be at least :math:`k`.
    """
    dims = _check_dims(dims)
    a = end_to_end_matrix
    if a.dim() != 2 or tuple(a.shape) != (dims[-1], dims[0]):
        raise ValueError(f"end_to_end_matrix has shape {tuple(a.shape)}, expected ({dims[-1]}, {dims[0]})")
    n = len(dims) - 1
    k = min(dims[0], dims[-1])
    if any(d < k for d in dims[1:-1]):
        raise ValueError(f"hidden sizes must be >= min(d_0, d_N) = {k} to split the matrix evenly, got dims={dims}")
    u, sigma, vh = torch.linalg.svd(a, full_matrices=False)
    s = sigma.clamp_min(0) ** (1.0 / n)
    if n == 1:
        return [a.clone()]
    weights = []
    for j in range(1, n + 1):
        w = torch.zeros(dims[j], dims[j - 1], dtype=a.dtype, device=a.device)
        if j == 1:
            w[:k, :] = s[:, None] * vh
        elif j == n:
            w[:, :k] = u * s[None, :]
        else:
            w[:k, :k] = torch.diag(s)
        weights.append(w)
    return weights


def balanced_init(dims: Sequence[int], scale: float = 1.0, *, end_to_end: torch.Tensor | None = None,
                  generator: torch.Generator | None = None, device=None, dtype: torch.dtype = F64) -> list[torch.Tensor]:
    r"""Balanced initialization (Arora, Cohen, Golowich & Hu 2019): sample an end-to-end matrix
    :math:`A` with i.i.d. :math:`\mathcal N(0, \text{scale}^2 / d_0)` entries (or take ``end_to_end``), then
    split it evenly over the layers with :func:`balanced_factors`."""
    dims = _check_dims(dims)
    if end_to_end is None:
        a = torch.randn(dims[-1], dims[0], generator=generator, dtype=dtype) * (scale / math.sqrt(dims[0]))
        end_to_end = a.to(device)
    return balanced_factors(end_to_end.to(device=device, dtype=dtype), dims)


def gaussian_init(dims: Sequence[int], scale: float = 1.0, *, generator: torch.Generator | None = None,
                  device=None, dtype: torch.dtype = F64) -> list[torch.Tensor]:
    r"""Independent layers with i.i.d. :math:`\mathcal N(0, \text{scale}^2 / d_{j-1})` entries (LeCun scaling at
    ``scale = 1``): each layer preserves the norm of a random vector on average, but the product's singular
    values spread out as the depth grows."""
    dims = _check_dims(dims)
    return [(torch.randn(dims[j], dims[j - 1], generator=generator, dtype=dtype) * (scale / math.sqrt(dims[j - 1])))
            .to(device) for j in range(1, len(dims))]


def orthogonal_init(dims: Sequence[int], scale: float = 1.0, *, generator: torch.Generator | None = None,
                    device=None, dtype: torch.dtype = F64) -> list[torch.Tensor]:
    r"""Random (semi-)orthogonal layers times ``scale`` (QR of a Gaussian matrix, signs fixed by
    :math:`\operatorname{diag} R`): with equal sizes every singular value of the product is
    :math:`\text{scale}^N`, whatever the depth (Saxe et al. 2014)."""
    dims = _check_dims(dims)
    weights = []
    for j in range(1, len(dims)):
        rows, cols = dims[j], dims[j - 1]
        g = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=dtype)
        q, r = torch.linalg.qr(g)
        q = q * torch.sign(torch.diagonal(r))[None, :]
        w = q if rows >= cols else q.T
        weights.append((scale * w).to(device))
    return weights


def deficiency_margin(end_to_end: torch.Tensor, target: torch.Tensor) -> float:
    r""":math:`\sigma_{\min}(\Phi) - \|W - \Phi\|_F`: positive when :math:`W` has a deficiency margin
    :math:`c` of that size with respect to :math:`\Phi` (Arora, Cohen, Golowich & Hu 2019, Definition 2).

    Every matrix within that distance of :math:`\Phi` has :math:`\sigma_{\min} \ge c`, so gradient descent from a
    balanced start never meets a rank-deficient end-to-end matrix.
    """
    if end_to_end.shape != target.shape:
        raise ValueError(f"end_to_end has shape {tuple(end_to_end.shape)}, target {tuple(target.shape)}")
    end_to_end, target = end_to_end.detach(), target.detach()
    sigma_min = torch.linalg.svdvals(target).min()
    return float(sigma_min - torch.linalg.matrix_norm(end_to_end - target))


def square_loss(end_to_end: torch.Tensor, target: torch.Tensor) -> tuple[float, torch.Tensor]:
    r""":math:`f(W) = \tfrac12\|W - \Phi\|_F^2` (whitened square loss, constant dropped) and its gradient
    :math:`W - \Phi`."""
    diff = end_to_end - target
    return 0.5 * float((diff * diff).sum()), diff


# ---------------------------------------------------------------------------------------------- Saxe et al.

def saxe_mode_strength(t, s: float, u0: float, tau: float = 1.0):
    r"""The strength of one mode of a two-layer linear net under gradient flow (Saxe et al. 2014, eq. 6):

    .. math:: u(t) = \frac{s\, e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0},

    the solution of :math:`\tau \dot u = 2u(s - u)` from :math:`u(0) = u_0`: a sigmoid from :math:`u_0` to the
    mode's singular value :math:`s`. ``t`` may be a number or a tensor.
    """
    if s <= 0 or u0 <= 0 or tau <= 0:
        raise ValueError(f"s, u0 and tau must be positive, got s={s}, u0={u0}, tau={tau}")
    t = torch.as_tensor(t, dtype=F64) if not isinstance(t, torch.Tensor) else t
    # divide through by e^{2st/tau}: stable for large t
    decay = torch.exp(-2.0 * s * t / tau)
    return s / (1.0 - decay + (s / u0) * decay)


def saxe_half_time(s: float, u0: float, tau: float = 1.0) -> float:
    r"""The time at which :math:`u(t) = s/2`: :math:`\frac{\tau}{2s} \ln\frac{s - u_0}{u_0}`."""
    return tau / (2.0 * s) * math.log((s - u0) / u0)


def saxe_simulation(singular_values: Sequence[float], u0: float, lr: float, steps: int, *, hidden: int | None = None,
                    generator: torch.Generator | None = None, perturbation: float = 0.0) -> torch.Tensor:
    r"""Gradient descent on :math:`\tfrac12\|W_2 W_1 - \Phi\|_F^2` with :math:`\Phi = \operatorname{diag}(s)`
    (any input-output correlation rotated into its SVD basis), from the decoupled balanced start
    :math:`W_1 = W_2^\top = \sqrt{u_0}\, I` plus ``perturbation`` times a Gaussian matrix.

    Returns the mode strengths :math:`u_i(k) = (W_2 W_1)_{ii}` as a ``(steps + 1, len(s))`` tensor. Gradient
    descent is the Euler scheme of the flow :math:`\tau \dot u = 2u(s - u)` with :math:`\tau = 1/\eta` when time
    counts steps (:math:`t = k`), or equivalently with :math:`\tau = 1` at time :math:`t = k\eta`: compare row
    :math:`k` with ``saxe_mode_strength(k * lr, s, u0)`` (the default ``tau = 1``).
    """
    s = torch.as_tensor(list(singular_values), dtype=F64)
    m = len(s)
    hidden = m if hidden is None else hidden
    target = torch.diag(s)
    w1 = torch.zeros(hidden, m, dtype=F64)
    w1[:m, :m] = math.sqrt(u0) * torch.eye(m, dtype=F64)
    w2 = w1.T.clone()
    if perturbation:
        w1 = w1 + perturbation * torch.randn(hidden, m, generator=generator, dtype=F64)
        w2 = w2 + perturbation * torch.randn(m, hidden, generator=generator, dtype=F64)
    strengths = [torch.diagonal(w2 @ w1).clone()]
    for _ in range(steps):
        g = w2 @ w1 - target
        w1, w2 = w1 - lr * (w2.T @ g), w2 - lr * (g @ w1.T)
        strengths.append(torch.diagonal(w2 @ w1).clone())
    return torch.stack(strengths)


# ---------------------------------------------------------------------------------------------- end-to-end update

def psd_power(matrix: torch.Tensor, power: float, tol: float = 1e-10) -> torch.Tensor:
    r""":math:`M^p` of a symmetric positive semi-definite matrix through its eigendecomposition.

    Eigenvalues below ``tol`` times the largest are set to zero *before* taking the power (round-off makes
    the zero eigenvalues of a rank-deficient :math:`WW^\top` slightly negative or tiny positive, and
    :math:`(\pm 10^{-17})^{1/3}` is NaN or far from 0). :math:`M^0 = I` by convention.
    """
    n = matrix.shape[0]
    if power == 0:
        return torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    sym = (matrix + matrix.T) / 2
    values, vectors = torch.linalg.eigh(sym)
    top = values.abs().max()
    kept = torch.where(values > tol * top, values, torch.zeros_like(values)).clamp_min(0)
    return (vectors * kept.pow(power)[None, :]) @ vectors.T


def end_to_end_direction(end_to_end: torch.Tensor, gradient: torch.Tensor, depth: int,
                         tol: float = 1e-10) -> torch.Tensor:
    r""":math:`\sum_{j=1}^N [WW^\top]^{\frac{j-1}{N}} \nabla f(W) [W^\top W]^{\frac{N-j}{N}}` (Arora, Cohen &
    Hazan 2018, Theorem 1): the direction in which balanced gradient flow moves the end-to-end matrix."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    w = end_to_end
    left, right = w @ w.T, w.T @ w
    total = torch.zeros_like(gradient)
    for j in range(1, depth + 1):
        total = total + psd_power(left, (j - 1) / depth, tol) @ gradient @ psd_power(right, (depth - j) / depth, tol)
    return total


def end_to_end_update(end_to_end: torch.Tensor, gradient: torch.Tensor, lr: float, depth: int,
                      tol: float = 1e-10) -> torch.Tensor:
    r"""One step of the end-to-end update rule of Arora, Cohen & Hazan (ICML 2018):

    .. math:: W \leftarrow W - \eta \sum_{j=1}^N [WW^\top]^{\frac{j-1}{N}}\, \nabla f(W)\, [W^\top W]^{\frac{N-j}{N}}.

    Gradient descent on balanced factors :math:`W_N, \dots, W_1` moves their product by this rule up to
    :math:`O(\eta^2)` per step. ``gradient`` is :math:`\nabla f` at ``end_to_end``; fractional powers by
    :func:`psd_power`. Depth 1 is plain gradient descent.
    """
    return end_to_end - lr * end_to_end_direction(end_to_end, gradient, depth, tol)


def scalar_output_direction(w: torch.Tensor, gradient: torch.Tensor, depth: int) -> torch.Tensor:
    r"""The single-output form of :func:`end_to_end_direction` (:math:`W = w^\top` a row):

    .. math:: \|w\|^{2 - 2/N} \big(\nabla f(w) + (N - 1)\, \mathrm{Pr}_w(\nabla f(w))\big),

    an adaptive step size :math:`\|w\|^{2-2/N}` and an extra push along :math:`w` (the projection
    :math:`\mathrm{Pr}_w`). From a start near 0, :math:`w` is the sum of the past steps, so the push favours the
    direction already travelled: a form of momentum (Arora, Cohen & Hazan 2018).
    """
    w = w.reshape(-1)
    g = gradient.reshape(-1)
    norm = torch.linalg.vector_norm(w)
    if not bool(norm > 0):
        return torch.zeros_like(g) if depth > 1 else g.clone()
    unit = w / norm
    return norm ** (2.0 - 2.0 / depth) * (g + (depth - 1) * (unit @ g) * unit)


def loop_integral(field_fn: Callable[[torch.Tensor], torch.Tensor], center: torch.Tensor, e1: torch.Tensor,
                  e2: torch.Tensor, radius: float, points: int = 400) -> float:
    r""":math:`\oint V \cdot dr` of the vector field :math:`V` (``field_fn``) around the circle :math:`c + r(\cos\theta\, e_1 + \sin\theta\, e_2)`
    (midpoint rule, ``points`` pieces). Zero for every loop exactly when :math:`V` is a gradient field."""
    theta = torch.linspace(0.0, 2 * math.pi, points + 1, dtype=F64)
    mid = (theta[:-1] + theta[1:]) / 2
    total = 0.0
    step = 2 * math.pi / points
    for angle in mid.tolist():
        position = center + radius * (math.cos(angle) * e1 + math.sin(angle) * e2)
        tangent = radius * (-math.sin(angle) * e1 + math.cos(angle) * e2)
        total += float(field_fn(position).reshape(-1) @ tangent.reshape(-1)) * step
    return total


# ---------------------------------------------------------------------------------------------- training runs

@dataclass
class LinearNetRun:
    """What :func:`train_factors` records: one entry per step (the start first)."""

    loss: list = field(default_factory=list)
    balancedness: list = field(default_factory=list)
    singular_values: list = field(default_factory=list)  # per step: a list (one tensor per layer)
    end_to_end: list = field(default_factory=list)
    weights: list = field(default_factory=list)  # the final layers
    diverged_at: int | None = None


def train_factors(weights: Sequence[torch.Tensor], target: torch.Tensor | None = None, lr: float = 0.01,
                  steps: int = 100, *, loss_grad: Callable | None = None, record_singular_values: bool = False,
                  record_end_to_end: bool = False, stop_loss: float | None = None,
                  blowup: float = 1e12) -> LinearNetRun:
    r"""Gradient descent :math:`W_j \leftarrow W_j - \eta G_j` on the layers (:func:`layer_gradients`).

    ``loss_grad(W) -> (loss, gradient)``: the loss of the end-to-end matrix; default :func:`square_loss`
    against ``target``. Stops early when the loss falls below ``stop_loss``, and with ``diverged_at = k``
    when the loss at step ``k`` is not finite or exceeds ``blowup``.
    """
    if loss_grad is None:
        if target is None:
            raise ValueError("give a target or a loss_grad function")
        loss_grad = lambda w: square_loss(w, target)  # noqa: E731
    weights = [w.detach().clone() for w in weights]
    run = LinearNetRun()
    for k in range(steps + 1):
        product = end_to_end(weights)
        loss, grad = loss_grad(product)
        if not math.isfinite(loss) or loss > blowup:
            run.diverged_at = k
            break
        run.loss.append(loss)
        run.balancedness.append(balancedness(weights))
        if record_singular_values:
            run.singular_values.append([torch.linalg.svdvals(w) for w in weights])
        if record_end_to_end:
            run.end_to_end.append(product.clone())
        if k == steps or (stop_loss is not None and loss <= stop_loss):
            break
        grads = layer_gradients(weights, grad)
        weights = [w - lr * g for w, g in zip(weights, grads)]
    run.weights = weights
    return run


def identity_start(size: int, depth: int, perturbation: float = 0.0, *, generator: torch.Generator | None = None,
                   device=None, dtype: torch.dtype = F64) -> list[torch.Tensor]:
    r"""``depth`` layers :math:`W_j = I + \rho Z_j` of size ``size x size``, with :math:`\rho` = ``perturbation`` and
    :math:`Z_j` independent standard Gaussian matrices drawn from ``generator`` (layer 1 first).

    ``perturbation = 0`` is the identity start of a linear residual net (Bartlett, Helmbold & Long 2018). For a
    symmetric target it lies on a set that gradient descent never leaves in exact arithmetic (every layer the same
    symmetric matrix with the target's eigenvectors); a seeded :math:`\rho > 0` leaves that set on purpose,
    by an amount that does not depend on the machine's round-off.
    """
    if size < 1 or depth < 1:
        raise ValueError(f"size and depth must be >= 1, got size={size}, depth={depth}")
    if not math.isfinite(perturbation) or perturbation < 0:
        raise ValueError(f"perturbation must be a finite number >= 0, got {perturbation}")
    eye = torch.eye(size, dtype=dtype)
    if perturbation == 0:
        return [eye.clone().to(device) for _ in range(depth)]
    return [(eye + perturbation * torch.randn(size, size, generator=generator, dtype=dtype)).to(device)
            for _ in range(depth)]


def first_step_below(values: Sequence[float], threshold: float) -> int | None:
    """The first index ``k`` with ``values[k] < threshold`` (a recorded loss curve, say), or ``None``."""
    return next((k for k, v in enumerate(values) if v < threshold), None)


def scalar_escape_steps(depth: int, a0: float, lr: float, threshold: float = 0.5, max_steps: int = 10_000_000) -> int:
    r"""Steps of gradient descent on :math:`\tfrac12(1 - w_N\cdots w_1)^2` from :math:`w_j = a_0` for all
    :math:`j` until the product reaches ``threshold``.

    By symmetry the weights stay equal, :math:`w \leftarrow w + \eta\, w^{N-1}(1 - w^N)`: near the origin
    :math:`\dot w \approx w^{N-1}`, so depth 2 escapes in time :math:`\approx \ln(1/a_0)` and depth
    :math:`N \ge 3` in time :math:`\approx a_0^{2-N}/(N-2)`. Plain Python floats: fast enough for millions of steps.
    """
    if depth < 2:
        raise ValueError(f"depth must be >= 2 (depth 1 has no saddle), got {depth}")
    w = float(a0)
    for k in range(max_steps + 1):
        if w ** depth >= threshold:
            return k
        w = w + lr * w ** (depth - 1) * (1.0 - w ** depth)
    raise RuntimeError(f"no escape within {max_steps} steps (a0={a0}, lr={lr})")


# ---------------------------------------------------------------------------------------------- l_p regression

def _int_pow(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x ** k`` for an integer ``k >= 1`` by repeated squaring (``torch.pow`` with an exponent of 4 or more is
    many times slower on float64)."""
    result, base = None, x
    while k:
        if k & 1:
            result = base if result is None else result * base
        k >>= 1
        if k:
            base = base * base
    return result


def _lp_losses(X, y, w0, p, depth, lr):
    """Yield the ``(S, B)`` losses of the batched runs (``S`` data sets, ``B`` step sizes), step by step (forever).

    ``X``: ``(S, m, d)``, ``y``: ``(S, m)``, ``w0``: ``(S, d)``, ``lr``: ``(B,)``.
    """
    if p < 2 or p % 2:
        raise ValueError(f"p must be an even integer >= 2, got {p}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    b, m = len(lr), X.shape[1]
    norm = torch.linalg.vector_norm(w0, dim=1)  # (S,)
    v = (w0 * norm[:, None] ** (1.0 / depth - 1.0))[:, None, :].expand(-1, b, -1).clone()  # (S, B, d): the vector a_1
    c = (norm ** (1.0 / depth))[:, None].expand(-1, b).clone()  # (S, B): the common value a of the scalars
    xt = X.transpose(1, 2)
    while True:
        scale = c ** (depth - 1)
        residual = (scale[..., None] * v) @ xt - y[:, None, :]  # (S, B, m)
        odd = _int_pow(residual, p - 1)  # r^(p-1)
        loss = (odd * residual).mean(dim=2) / p
        finite = torch.isfinite(loss) & (loss <= 1e12)
        yield torch.where(finite, loss, torch.full_like(loss, float("inf")))
        grad_w = odd @ X / m  # (S, B, d): the gradient of the end-to-end vector
        grad_w = torch.where(finite[..., None], grad_w, torch.zeros_like(grad_w))
        if depth > 1:
            grad_c = (grad_w * v).sum(dim=2) * c ** (depth - 2)
            c = c - lr * grad_c
        v = v - lr[:, None] * (scale[..., None] * grad_w)


def _single(X, y, w0):
    if X.dim() != 2 or y.dim() != 1 or w0.dim() != 1 or X.shape[0] != y.shape[0] or X.shape[1] != w0.shape[0]:
        raise ValueError(f"expected X (m, d), y (m,), w0 (d,), got {tuple(X.shape)}, {tuple(y.shape)}, "
                         f"{tuple(w0.shape)}")
    return X[None], y[None], w0[None]


def lp_regression_steps(X: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, p: int, depth: int, lrs: Sequence[float],
                        steps: int, target: float, *, stop_at_first: bool = False) -> torch.Tensor:
    r"""Steps until :math:`\frac1{pm}\sum_i (x_i^\top w - y_i)^p \le` ``target`` for gradient descent on the
    depth-``depth`` overparameterization :math:`w = a_N \cdots a_2\, a_1` (hidden width one: a vector :math:`a_1` and
    :math:`N - 1` scalars, Arora, Cohen & Hazan 2018, §7), one run per learning rate in ``lrs``, all at once.

    The start is the balanced split of ``w0``: :math:`a_1 = \|w_0\|^{1/N - 1} w_0`, every scalar
    :math:`a_j = \|w_0\|^{1/N}` (:math:`j \ge 2`); the scalars then stay equal, so one number :math:`a` stands for
    them all and :math:`w = a^{N-1} a_1`. Returns a ``(len(lrs),)`` long tensor: the step count, or ``-1`` where the run
    diverged or did not reach ``target`` within ``steps``. Depth 1 is plain gradient descent on :math:`w`.
    ``stop_at_first``: stop as soon as one run arrives (enough to know the tuned step count, ``min``).
    """
    lr = torch.as_tensor(list(lrs), dtype=X.dtype, device=X.device)
    result = torch.full((len(lr),), -1, dtype=torch.long, device=X.device)
    for k, losses in enumerate(_lp_losses(*_single(X, y, w0), p, depth, lr)):
        loss = losses[0]
        reached = (result < 0) & (loss <= target)
        result[reached] = k
        if (stop_at_first and bool(reached.any())) or bool((result >= 0).all()) or k == steps:
            break
    return result


def lp_regression_curve(X: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, p: int, depth: int, lr: float,
                        steps: int) -> torch.Tensor:
    """The ``(steps + 1,)`` losses of one run of :func:`lp_regression_steps` (``inf`` once diverged)."""
    lr_t = torch.tensor([float(lr)], dtype=X.dtype, device=X.device)
    losses = []
    for k, loss in enumerate(_lp_losses(*_single(X, y, w0), p, depth, lr_t)):
        losses.append(loss[0, 0])
        if k == steps:
            break
    return torch.stack(losses)


def lp_tuned_steps(X: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, p: int, depth: int, lrs: Sequence[float],
                   steps: int, target) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The *tuned* step count of :func:`lp_regression_steps` for ``S`` data sets at once: for each data set the
    fewest steps any step size in ``lrs`` needs to reach its ``target``, and the index of that step size.

    ``X``: ``(S, m, d)``, ``y``: ``(S, m)``, ``w0``: ``(S, d)``, ``target``: a number or ``(S,)``. All
    ``S * len(lrs)`` runs advance together and stop once every data set has one run at its target (or after
    ``steps``). Returns two ``(S,)`` long tensors; ``-1`` where no step size arrived within ``steps``.
    """
    if X.dim() != 3 or y.dim() != 2 or w0.dim() != 2 or not (X.shape[0] == y.shape[0] == w0.shape[0]) \
            or X.shape[1] != y.shape[1] or X.shape[2] != w0.shape[1]:
        raise ValueError(f"expected X (S, m, d), y (S, m), w0 (S, d), got {tuple(X.shape)}, {tuple(y.shape)}, "
                         f"{tuple(w0.shape)}")
    lr = torch.as_tensor(list(lrs), dtype=X.dtype, device=X.device)
    goal = torch.as_tensor(target, dtype=X.dtype, device=X.device).reshape(-1).expand(X.shape[0])
    count = torch.full((X.shape[0],), -1, dtype=torch.long, device=X.device)
    index = torch.full((X.shape[0],), -1, dtype=torch.long, device=X.device)
    for k, loss in enumerate(_lp_losses(X, y, w0, p, depth, lr)):
        arrived = loss <= goal[:, None]  # (S, B)
        new = (count < 0) & arrived.any(dim=1)
        if bool(new.any()):
            count[new] = k
            index[new] = arrived.to(torch.int8).argmax(dim=1)[new]  # the first in lrs among those that arrived
        if bool((count >= 0).all()) or k == steps:
            break
    return count, index
