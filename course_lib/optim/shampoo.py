r"""Shampoo: one preconditioner per dimension of a tensor (Gupta, Koren & Singer, 2018).

**Full-matrix Adagrad** (Duchi et al., 2011) preconditions the flattened gradient
:math:`g_t = \operatorname{vec}(G_t) \in \mathbb{R}^{mn}` with
:math:`P_t = \big(\epsilon I + \sum_{s \le t} g_s g_s^\top\big)^{1/2}` and steps
:math:`\theta \leftarrow \theta - \eta P_t^{-1} g_t` (Duchi et al. put :math:`\epsilon I` outside the root,
:math:`\epsilon I + (\sum_s g_s g_s^\top)^{1/2}`; inside is the course's variant, the one Shampoo's
statistics mirror): the best preconditioner of its kind in hindsight, but an :math:`mn \times mn`
matrix, far too big for a layer. (:math:`P`, not :math:`H`: :math:`H` is the Hessian in this course.)

**Shampoo** keeps, for a matrix parameter :math:`W \in \mathbb{R}^{m \times n}`, one
:math:`m \times m` and one :math:`n \times n` statistic (this :math:`L` is not a smoothness constant),

.. math::

    L_t = \epsilon I_m + \sum_{s \le t} G_s G_s^\top, \qquad
    R_t = \epsilon I_n + \sum_{s \le t} G_s^\top G_s, \qquad
    W_t = W_{t-1} - \eta\, L_t^{-1/4}\, G_t\, R_t^{-1/4}.

With row-major :math:`\operatorname{vec}`, :math:`\operatorname{vec}(L^{-1/4} G R^{-1/4}) =
(L^{-1/4} \otimes R^{-1/4}) \operatorname{vec}(G) = (L \otimes R)^{-1/4} \operatorname{vec}(G)`:
Shampoo *is* full-matrix Adagrad with :math:`P_t^2` replaced by the Kronecker product
:math:`(L_t \otimes R_t)^{1/2}`, which the paper shows dominates it
(:math:`\sum_s g_s g_s^\top \preceq r\,(L_t \otimes R_t)^{1/2}` for :math:`\epsilon = 0`, :math:`r \ge` the
rank of every :math:`G_s`), hence Shampoo's regret bound in online convex optimization:
:math:`\sum_{t \le T} (f_t(W_t) - f_t(W^\star)) \le \sqrt{2r}\,\Delta\,\operatorname{tr}(L_T^{1/4})
\operatorname{tr}(R_T^{1/4})` for any comparator :math:`W^\star`, with
:math:`\Delta = \max_{t \le T} \|W_t - W^\star\|_F` (the paper's :math:`D`). Storage falls from
:math:`m^2 n^2` to :math:`m^2 + n^2`.
The same Kronecker structure is K-FAC's (Martens & Grosse, 2015), whose factors are
second moments of a layer's inputs and of the gradients at its outputs (an approximate Fisher,
inverted with power :math:`-1`); Shampoo's are second moments of the weight gradient
itself, taken to power :math:`-1/4` each. Shampoo stands in :math:`(L_t \otimes R_t)^{1/2}` for the Adagrad
matrix :math:`\mathcal{G}_t = \sum_s g_s g_s^\top`; Morwani et al. (2024) show that the square of that
stand-in, :math:`L_t \otimes R_t`, is, up to a scalar, one step of power iteration (started at the
identity) toward the best Kronecker-product approximation of :math:`\mathcal{G}_t` (of the Gauss-Newton
matrix, in the Hessian view). When :math:`\mathcal{G}_t = X \otimes Y` is itself a Kronecker product
(:math:`\epsilon = 0`), :math:`L_t = \operatorname{tr}(Y) X`, :math:`R_t = \operatorname{tr}(X) Y` and
:math:`L_t \otimes R_t = \operatorname{tr}(\mathcal{G}_t)\, \mathcal{G}_t`.

For a tensor of order :math:`k` (shape :math:`d_1 \times \dots \times d_k`), dimension
:math:`i` gets a statistic :math:`L^{(i)} \mathrel{+}= G_{(i)} G_{(i)}^\top` (:math:`G_{(i)}` the
:math:`d_i \times \prod_{j \ne i} d_j` unfolding; for a matrix :math:`L^{(1)} = L`,
:math:`L^{(2)} = R`) and the step multiplies the gradient along each dimension by
:math:`(L^{(i)})^{-1/(2k)}`. A vector (:math:`k = 1`) gets exactly full-matrix Adagrad,
:math:`(L^{(1)})^{-1/2} g = P^{-1} g`; a 0-dim tensor, Adagrad.

Practical options of this implementation: the inverse roots are recomputed every ``update_freq``
steps (their eigendecomposition is the expensive part), ``momentum`` is heavy-ball momentum on the
preconditioned step, ``weight_decay`` an L2 penalty added to the gradient. (``torch-optimizer``'s
Shampoo, whose argument names and defaults these are, differs in the update: it raises each statistic
to :math:`-1/k`, not the paper's :math:`-1/(2k)`, and mixes the previous preconditioned step into the
gradient before preconditioning.) A dimension longer than ``max_preconditioner_dim`` (a
:math:`d \times d` statistic would not fit, or its eigendecomposition would dominate the step) keeps
only the diagonal of its statistic, a common fallback in Shampoo implementations (Anil et al. (2020)
discuss splitting large layers into blocks); a huge vector then gets diagonal Adagrad.

References: Gupta, Koren & Singer, "Shampoo: preconditioned stochastic tensor optimization"
(ICML 2018); Duchi, Hazan & Singer, "Adaptive subgradient methods" (JMLR 2011); Martens &
Grosse, "Optimizing neural networks with Kronecker-factored approximate curvature" (ICML 2015);
Anil et al., "Scalable second order optimization for deep learning" (2020); Morwani, Shapira, Vyas,
Malach, Kakade & Janson, "A new perspective on Shampoo's preconditioner" (2024).
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, new_step_counter

__all__ = ["Shampoo", "matrix_power_psd"]


def matrix_power_psd(matrix: torch.Tensor, power: float) -> torch.Tensor:
    r""":math:`A^{p}` of a symmetric positive semi-definite ``matrix`` via its eigendecomposition.

    :math:`A = Q \Lambda Q^\top \Rightarrow A^p = Q \Lambda^p Q^\top`; eigenvalues that rounding made
    slightly negative (or zero) are clamped to the largest times machine epsilon first.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    floor = eigenvalues.abs().max().clamp(min=torch.finfo(matrix.dtype).tiny) * torch.finfo(matrix.dtype).eps
    return (eigenvectors * eigenvalues.clamp(min=floor).pow(power)) @ eigenvectors.mT


def _unfold(tensor: torch.Tensor, dim: int) -> torch.Tensor:
    """The ``d_dim x (numel / d_dim)`` matrix whose rows are the slices of ``tensor`` along ``dim``."""
    return tensor.movedim(dim, 0).reshape(tensor.shape[dim], -1)


class Shampoo(Optimizer):
    r"""Shampoo (Gupta, Koren & Singer, ICML 2018): for a matrix, :math:`W \leftarrow W - \eta L^{-1/4} G R^{-1/4}`.

    Arguments (torch.optim has no Shampoo; the names and defaults are those of ``torch-optimizer``'s code,
    the update is the paper's): ``lr=1e-1``, ``momentum=0.0``, ``weight_decay=0.0``, ``epsilon=1e-4`` (each
    statistic starts at :math:`\epsilon I`), ``update_freq=1`` (steps between recomputing the inverse
    roots), and torch's keyword-only ``maximize``. State: ``step``; ``precond_i`` (the statistic
    :math:`L^{(i)}`) and ``inv_precond_i`` (its inverse root) for each dimension ``i`` (vectors: the
    diagonals, for a dimension longer than ``max_preconditioner_dim``); ``momentum_buffer`` when
    ``momentum > 0``. A 0-dim tensor is treated as shape ``(1,)``.
    """

    def __init__(self, params, lr=1e-1, momentum=0.0, weight_decay=0.0, epsilon=1e-4, update_freq=1,
                 *, max_preconditioner_dim=2048, maximize=False):
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(0.0 <= epsilon, f"Invalid epsilon value: {epsilon}")
        check(isinstance(update_freq, int) and update_freq >= 1, f"Invalid update_freq value: {update_freq}")
        check(max_preconditioner_dim >= 1, f"Invalid max_preconditioner_dim value: {max_preconditioner_dim}")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, epsilon=epsilon,
                        update_freq=update_freq, max_preconditioner_dim=max_preconditioner_dim,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param, state, group):
        state["step"] = new_step_counter()
        for i, size in enumerate(param.shape or (1,)):
            if size > group["max_preconditioner_dim"]:  # the diagonal only
                ones = torch.ones(size, dtype=param.dtype, device=param.device)
            else:
                ones = torch.eye(size, dtype=param.dtype, device=param.device)
            state[f"precond_{i}"] = group["epsilon"] * ones
            state[f"inv_precond_{i}"] = ones.clone()
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update(self, param, grad, state, group):
        if param.is_complex():
            raise RuntimeError("Shampoo does not support complex parameters")
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        state["step"] += 1
        step = int(state["step"].item())
        shape = param.shape
        grad = grad.reshape(shape or (1,))
        order = grad.dim()
        refresh = (step - 1) % group["update_freq"] == 0
        direction = grad
        for i in range(order):
            unfolded = _unfold(grad, i)
            precond, inverse = state[f"precond_{i}"], state[f"inv_precond_{i}"]
            if precond.dim() == 1:  # diagonal: H_i += diag(G_(i) G_(i)^T), a row-wise sum of squares
                precond.add_(unfolded.square().sum(1))
                if refresh:
                    torch.pow(precond, -1.0 / (2 * order), out=inverse)
                shape_i = [1] * order
                shape_i[i] = -1
                direction = direction * inverse.view(shape_i)
                continue
            precond.addmm_(unfolded, unfolded.T)                          # H_i += G_(i) G_(i)^T
            if refresh:
                inverse.copy_(matrix_power_psd(precond, -1.0 / (2 * order)))
            # multiply dimension i of the direction by H_i^{-1/(2k)}
            direction = torch.tensordot(inverse, direction, dims=([1], [i])).movedim(0, i)
        direction = direction.reshape(shape)
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer.mul_(group["momentum"]).add_(direction)
            direction = buffer
        param.add_(direction, alpha=-group["lr"])
