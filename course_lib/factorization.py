r"""Matrix completion by deep matrix factorization and by nuclear-norm minimization.

Recover a low-rank matrix :math:`M \in \mathbb R^{m \times n}` from the entries in a set :math:`\Omega`
(a 0/1 ``mask``). Two routes, neither with a rank constraint:

* **Deep matrix factorization** (Arora, Cohen, Hu & Luo, "Implicit regularization in deep matrix
  factorization", NeurIPS 2019): gradient descent from a small start on
  :math:`f(W_1, \dots, W_N) = \tfrac12 \|P_\Omega(W_N \cdots W_1 - M)\|_F^2`, no regularizer.
  The gradient of layer :math:`j` is
  :math:`G_j = (W_N \cdots W_{j+1})^\top\, P_\Omega(W - M)\, (W_{j-1} \cdots W_1)^\top`
  (:func:`factor_gradients`). Depth 1 is gradient descent on :math:`W` itself: the unobserved entries
  never move from their start, and the observed ones converge to :math:`M`'s, so the product tends to
  :math:`P_\Omega(M) + P_{\Omega^c}(W(0))`, close to the zero-filled :math:`P_\Omega(M)` from a small start.
* **Nuclear-norm minimization**, :math:`\min \|X\|_*` subject to :math:`P_\Omega(X) = P_\Omega(M)`
  (Candès & Recht 2009), the convex surrogate of rank minimization, solved by the alternating direction
  method of multipliers (ADMM; Boyd, Parikh, Chu, Peleato & Eckstein 2011) on the split of the nuclear norm
  and the constraint (:func:`nuclear_norm_completion`). Its :math:`X`-step is the proximal operator of
  :math:`\tau\|\cdot\|_*`, **singular value thresholding** :math:`D_\tau`
  (:func:`svt`; Cai, Candès & Shen 2010): :math:`D_\tau(X) = U \operatorname{diag}((\sigma_i - \tau)_+) V^\top`.

Gunasekar, Woodworth, Bhojanapalli, Neyshabur & Srebro ("Implicit regularization in matrix factorization",
NIPS 2017) conjectured that depth 2 from an infinitesimal start, with infinitesimal steps, finds the minimum
nuclear-norm solution (and proved it when the measurement matrices commute); Arora et al. found that depth 3
and more recover with fewer observations than the nuclear norm, questioned that any norm captures the
implicit regularization, and explained the role of depth by the singular values'
dynamics :math:`\dot\sigma_r \propto \sigma_r^{2 - 2/N}` (for balanced starts): small singular values stay
small longer at larger depth.

:func:`effective_rank` is Roy & Vetterli's (2007) :math:`\exp(-\sum_i p_i \ln p_i)` with
:math:`p_i = \sigma_i / \sum_j \sigma_j`. Everything is batched: a leading batch dimension runs several
masks (or seeds) at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["effective_rank", "svt", "low_rank_matrix", "random_mask", "end_to_end_product", "factor_gradients",
           "factor_gradient_step", "init_factors", "train_factorization", "FactorizationRun",
           "nuclear_norm_completion", "unobserved_error"]

F64 = torch.float64


def effective_rank(matrix: torch.Tensor, *, singular_values: bool = False) -> torch.Tensor | float:
    r"""Roy & Vetterli's effective rank :math:`\exp\big(-\sum_i p_i \ln p_i\big)`,
    :math:`p_i = \sigma_i/\|\sigma\|_1` (with :math:`0 \ln 0 = 0`).

    It is 1 for a rank-one matrix, :math:`r` when :math:`r` singular values are equal and the rest zero,
    and lies between 1 and the rank otherwise. ``matrix``: ``(m, n)`` or a batch ``(..., m, n)``; with
    ``singular_values=True`` the input is the singular values ``(..., k)`` themselves. Returns a float
    for one matrix, a tensor for a batch. A zero matrix has no effective rank (ValueError).
    """
    sigma = matrix if singular_values else torch.linalg.svdvals(matrix)
    if singular_values and (sigma < 0).any():
        raise ValueError("singular values must be non-negative")
    total = sigma.sum(-1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("the effective rank of a zero matrix is undefined")
    p = sigma / total
    entropy = -torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), torch.zeros_like(p)).sum(-1)
    out = torch.exp(entropy)
    return float(out) if out.dim() == 0 else out


def svt(matrix: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Singular value thresholding :math:`D_\tau(X) = U \operatorname{diag}((\sigma_i - \tau)_+) V^\top`,
    the proximal operator of :math:`\tau\|\cdot\|_*`: :math:`\arg\min_Y \tfrac12\|Y - X\|_F^2 + \tau\|Y\|_*`
    (Cai, Candès & Shen 2010). Batched over leading dimensions; ``tau >= 0``."""
    if tau < 0:
        raise ValueError(f"tau must be non-negative, got {tau}")
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return (u * (s - tau).clamp_min(0).unsqueeze(-2)) @ vh


def low_rank_matrix(size: int = 30, rank: int = 3, *, seed: int = 0, cols: int | None = None) -> torch.Tensor:
    r"""A ``(size, cols)`` matrix :math:`M = UV^\top` of the given rank (``U``, ``V`` with i.i.d. standard
    Gaussian entries from ``seed``), scaled to Frobenius norm :math:`\sqrt{\text{rank}}`: its squared singular
    values sum to ``rank``, so its entries have root mean square :math:`\sqrt{\text{rank}/(\text{size}\cdot
    \text{cols})}` (``cols`` defaults to ``size``). float64."""
    cols = size if cols is None else cols
    if not 1 <= rank <= min(size, cols):
        raise ValueError(f"rank must be between 1 and {min(size, cols)}, got {rank}")
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(size, rank, generator=g, dtype=F64)
    v = torch.randn(cols, rank, generator=g, dtype=F64)
    m = u @ v.T
    return m * (rank ** 0.5 / torch.linalg.matrix_norm(m))


def random_mask(shape, fraction: float, *, seed: int = 0) -> torch.Tensor:
    """A float64 0/1 mask with exactly ``round(fraction * numel)`` ones at random positions."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    numel = 1
    for s in shape:
        numel *= int(s)
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(numel, generator=g)[:round(fraction * numel)]
    mask = torch.zeros(numel, dtype=F64)
    mask[chosen] = 1.0
    return mask.reshape(*shape)


def end_to_end_product(factors) -> torch.Tensor:
    """:math:`W_N \\cdots W_1` for ``factors = [W_1, ..., W_N]`` (each may carry a batch dimension)."""
    product = factors[0]
    for w in factors[1:]:
        product = w @ product
    return product


def factor_gradients(factors, mask: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    r"""The gradients :math:`G_j = (W_N \cdots W_{j+1})^\top P_\Omega(W - M) (W_{j-1} \cdots W_1)^\top` of
    :math:`\tfrac12\|P_\Omega(W_N\cdots W_1 - M)\|_F^2`, one per factor."""
    n = len(factors)
    prefix = [None] * (n + 1)  # prefix[j] = W_j ... W_1 (prefix[0]: identity, never formed)
    for j in range(1, n + 1):
        prefix[j] = factors[0] if j == 1 else factors[j - 1] @ prefix[j - 1]
    residual = mask * (prefix[n] - target)
    grads = [None] * n
    back = residual  # (W_N ... W_{j+1})^T residual, built from the top down
    for j in range(n, 0, -1):
        grads[j - 1] = back if j == 1 else back @ prefix[j - 1].transpose(-1, -2)
        if j > 1:
            back = factors[j - 1].transpose(-1, -2) @ back
    return grads


def factor_gradient_step(factors, mask: torch.Tensor, target: torch.Tensor, lr: float) -> list[torch.Tensor]:
    """One gradient step on every factor at once: ``[W_j - lr G_j]`` (new tensors)."""
    return [w - lr * g for w, g in zip(factors, factor_gradients(factors, mask, target))]


def init_factors(size: int, depth: int, scale: float, *, batch: int | None = None, seed: int = 0) -> list[torch.Tensor]:
    r"""``depth`` factors ``(size, size)`` (or ``(batch, size, size)``), a near-zero Gaussian start whose
    **end-to-end** product has size about ``scale``: each factor has i.i.d. entries of standard deviation
    :math:`\text{scale}^{1/N}/\sqrt{\text{size}}` (a Gaussian matrix with that scaling has singular values of
    order :math:`\text{scale}^{1/N}`), so that every depth starts from a product of the same order. float64."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    g = torch.Generator().manual_seed(seed)
    shape = (size, size) if batch is None else (batch, size, size)
    std = scale ** (1.0 / depth) / size ** 0.5
    return [std * torch.randn(*shape, generator=g, dtype=F64) for _ in range(depth)]


@dataclass
class FactorizationRun:
    """A recorded run: ``steps`` (the recorded step numbers), ``singular_values`` (``(records, ..., k)``),
    ``test_error`` (relative error on the unobserved entries, ``(records, ...)``), ``train_loss`` and the
    final end-to-end matrix ``product``."""

    steps: list[int] = field(default_factory=list)
    singular_values: torch.Tensor | None = None
    test_error: torch.Tensor | None = None
    train_loss: torch.Tensor | None = None
    product: torch.Tensor | None = None


def unobserved_error(product: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r""":math:`\|P_{\Omega^c}(W - M)\|_F / \|P_{\Omega^c}(M)\|_F`, the relative error on the entries not seen."""
    hidden = 1.0 - mask
    return (torch.linalg.matrix_norm(hidden * (product - target))
            / torch.linalg.matrix_norm(hidden * target).clamp_min(1e-300))


def train_factorization(target: torch.Tensor, mask: torch.Tensor, depth: int, scale: float, lr: float, steps: int,
                        *, record_every: int = 100, seed: int = 0, factors=None) -> FactorizationRun:
    r"""Gradient descent on :math:`\tfrac12\|P_\Omega(W_N\cdots W_1 - M)\|_F^2` from :func:`init_factors`
    (or the given ``factors``). ``mask`` may be a batch ``(B, m, n)``: then ``B`` runs at once. Records
    the singular values of the product, the error on unobserved entries and the loss every
    ``record_every`` steps (and at the first and last step)."""
    size = target.shape[-1]
    if target.shape[-2] != size:
        raise ValueError("train_factorization expects square matrices")
    batch = mask.shape[0] if mask.dim() == 3 else None
    if factors is None:
        factors = init_factors(size, depth, scale, batch=batch, seed=seed)
    run = FactorizationRun()
    svs, errs, losses = [], [], []
    for step in range(int(steps) + 1):
        if step % record_every == 0 or step == int(steps):
            product = end_to_end_product(factors)
            run.steps.append(step)
            svs.append(torch.linalg.svdvals(product))
            errs.append(unobserved_error(product, target, mask))
            losses.append(0.5 * (mask * (product - target)).pow(2).sum((-1, -2)))
        if step == int(steps):
            break
        factors = factor_gradient_step(factors, mask, target, lr)
    run.singular_values, run.test_error, run.train_loss = torch.stack(svs), torch.stack(errs), torch.stack(losses)
    run.product = end_to_end_product(factors)
    return run


def nuclear_norm_completion(target: torch.Tensor, mask: torch.Tensor, *, iters: int = 500,
                            rho: float | None = None) -> torch.Tensor:
    r"""The minimum-nuclear-norm completion :math:`\min \|X\|_*` s.t. :math:`P_\Omega X = P_\Omega M`, by the
    alternating direction method of multipliers (ADMM; Boyd et al. 2011, scaled form) on the split
    :math:`\min \|X\|_* + \iota_{\mathcal C}(Z)` s.t. :math:`X = Z`, where :math:`\iota_{\mathcal C}` is the
    indicator of the affine set :math:`\mathcal C` of matrices that agree with :math:`M` on :math:`\Omega`.
    With the scaled dual variable :math:`Y` (zero at the start) and :math:`Z = P_\Omega M` at the start, each
    iteration is

    .. math::
        X \leftarrow D_{1/\rho}(Z - Y), \qquad
        Z \leftarrow P_\Omega(M) + P_{\Omega^c}(X + Y), \qquad
        Y \leftarrow Y + X - Z,

    where :math:`D_\tau` is singular value thresholding (:func:`svt`, the proximal operator of
    :math:`\tau\|\cdot\|_*`) and the :math:`Z`-step is the projection onto :math:`\mathcal C`. Both functions
    are closed, proper and convex, so the objective converges to the minimum from any start (Boyd et al.,
    §3.2). This is ADMM, not Cai, Candès & Shen's SVT iteration (which thresholds a dual matrix with a fixed
    :math:`\tau` and solves a regularized problem). ``rho`` defaults to :math:`10/\sigma_{\max}(P_\Omega M)`
    (the largest over a batch). Returns the last :math:`Z`, which satisfies the constraint exactly. ``mask``
    (and ``target``) may carry a leading batch dimension."""
    observed = mask * target
    if rho is None:
        rho = 10.0 / torch.linalg.matrix_norm(observed, ord=2).max().item()
    z = observed.clone()
    dual = torch.zeros_like(z)
    for _ in range(int(iters)):
        x = svt(z - dual, 1.0 / rho)
        z = observed + (1.0 - mask) * (x + dual)
        dual = dual + x - z
    return z
