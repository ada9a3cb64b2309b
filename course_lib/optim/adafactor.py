r"""Adafactor: Adam's second moment stored in sublinear memory, with a relative step size.

For a matrix gradient :math:`G_t \in \mathbb{R}^{n \times m}` (negated when
``maximize``) Adam keeps :math:`nm` running squares. Adafactor keeps only their
row means :math:`R_t \in \mathbb{R}^{n}` and column means :math:`C_t \in \mathbb{R}^{m}`
and rebuilds the full matrix as a rank-one outer product, the best such fit in
I-divergence. Tensors with more than two dimensions are factored over their last
two; vectors and scalars keep the full running square :math:`V_t`. With step
:math:`t`, learning rate :math:`\eta`, ``beta2_decay`` :math:`\tau`,
``eps`` :math:`(\epsilon_1, \epsilon_2)`, clipping threshold :math:`d_{\mathrm{clip}}` and
weight decay :math:`\lambda_{\mathrm{wd}}`:

.. math::

    \hat\beta_{2,t} &= 1 - t^{\tau}, \qquad
    \rho_t = \min\bigl(\eta, 1/\sqrt{t}\bigr), \qquad
    \alpha_t = \max\bigl(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\bigr)\,\rho_t \\
    \theta_{t-1} &\leftarrow (1 - \eta\lambda_{\mathrm{wd}})\,\theta_{t-1} \\
    R_t &= \hat\beta_{2,t} R_{t-1} + (1 - \hat\beta_{2,t})\,\operatorname{mean}_{\text{cols}}(G_t^2), \qquad
    C_t = \hat\beta_{2,t} C_{t-1} + (1 - \hat\beta_{2,t})\,\operatorname{mean}_{\text{rows}}(G_t^2) \\
    \hat V_t &= \frac{R_t C_t^\top}{\max(\operatorname{mean}(R_t), \epsilon_1)}
    \quad\text{(a vector: } \hat V_t = \hat\beta_{2,t} \hat V_{t-1} + (1 - \hat\beta_{2,t}) G_t^2 \text{)} \\
    U_t &= \frac{G_t}{\sqrt{\max(\hat V_t, \epsilon_1^2)}}, \qquad
    \theta_t = \theta_{t-1} - \frac{\alpha_t}{\max\bigl(1, \operatorname{RMS}(U_t)/d_{\mathrm{clip}}\bigr)}\, U_t

What the hyperparameters do:

* ``beta2_decay`` :math:`\tau \le 0`: :math:`\hat\beta_{2,1} = 0` (the first step sees
  the gradient alone) and :math:`\hat\beta_{2,t} \to 1`, so the average forgets ever more
  slowly; no bias correction is needed. :math:`\tau = 0` freezes it at :math:`\hat\beta_2 = 0`.
* ``lr`` :math:`\eta` caps the *relative* step size :math:`\rho_t`: a step moves a
  tensor by about :math:`\rho_t` times its own RMS (at least :math:`\epsilon_2 \rho_t`,
  so that tensors starting at zero can move).
* ``d`` (:math:`d_{\mathrm{clip}}`): update clipping. Whenever the update's RMS exceeds
  :math:`d_{\mathrm{clip}}` it is scaled down to :math:`d_{\mathrm{clip}}`; this replaces Adam's bias correction and tames a stale second moment.
* ``eps`` :math:`(\epsilon_1, \epsilon_2)`: :math:`\epsilon_1` (``None``: the machine
  epsilon of the parameter's dtype) floors the second-moment estimate; :math:`\epsilon_2`
  floors the parameter scale.
* ``weight_decay`` :math:`\lambda_{\mathrm{wd}}`: decoupled, as in AdamW, scaled by :math:`\eta`.

Reference: Shazeer & Stern, "Adafactor: Adaptive learning rates with sublinear memory
cost", ICML 2018. This is torch.optim.Adafactor's variant, which differs from the paper:

* no first moment (the paper's optional momentum :math:`\beta_1` is left out), so the
  optimizer state is :math:`O(n + m)` per matrix;
* the paper's constant 0.01 in :math:`\rho_t = \min(10^{-2}, 1/\sqrt{t})` becomes ``lr``
  (the default 0.01 gives the paper's schedule), and ``lr`` also scales the weight decay;
* :math:`\epsilon_1` floors :math:`\operatorname{mean}(R_t)` and :math:`\hat V_t` instead of
  being added to :math:`G_t^2` inside the running averages;
* the factors store means (not sums) of squares, which gives the same :math:`\hat V_t`.
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, new_step_counter

__all__ = ["Adafactor"]


def _rms(tensor: torch.Tensor) -> float:
    return tensor.norm(2).item() / (tensor.numel() ** 0.5)


def _mean_square(grad: torch.Tensor, dim: int) -> torch.Tensor:
    # mean of grad**2 along dim through the norm: no temporary as large as grad
    return torch.norm(grad, dim=dim, keepdim=True).square_().div_(grad.size(dim))


class Adafactor(Optimizer):
    """Adafactor with factored second moments, relative step size and update clipping.

    Same arguments, defaults, state (``step``, and ``row_var`` / ``col_var`` for tensors
    of two or more dimensions, ``variance`` otherwise) and errors as
    :class:`torch.optim.Adafactor`. Like torch, ``foreach=None`` means the per-tensor
    loop on every device (the multi-tensor path needs more peak memory, and saving
    memory is Adafactor's purpose); pass ``foreach=True`` for it.
    """

    group_fallbacks = {"foreach": None}  # torch's Adafactor.__setstate__ sets nothing else
    sparse_message = "Adafactor does not support sparse gradients"

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0,
                 *, foreach=None, maximize=False):
        if isinstance(lr, torch.Tensor):
            check(lr.numel() == 1, "Tensor lr must be 1-element")
        check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        check(0.0 >= beta2_decay, f"beta2_decay should be <= 0 but is: {beta2_decay}")
        check(eps[0] is None or 0.0 <= eps[0], f"epsilon1 should be >= 0 but is: {eps[0]}")
        check(0.0 <= eps[1], f"epsilon2 should be >= 0 but is: {eps[1]}")
        check(1.0 <= d, f"Clipping threshold d should be >= 1 but is: {d}")
        check(0.0 <= weight_decay, f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def use_foreach(self, group, params):
        return bool(group.get("foreach"))

    def init_state(self, param, state, group):
        if torch.is_complex(param):
            raise RuntimeError("Adafactor does not support complex parameters")
        grad = param.grad
        state["step"] = new_step_counter()
        if grad.dim() > 1:
            state["row_var"] = grad.new_zeros((*grad.shape[:-1], 1))
            state["col_var"] = grad.new_zeros((*grad.shape[:-2], 1, grad.shape[-1]))
        else:
            state["variance"] = torch.zeros_like(grad, memory_format=torch.preserve_format)

    @staticmethod
    def _epsilons(group, param):
        eps1, eps2 = group["eps"]
        return (torch.finfo(param.dtype).eps if eps1 is None else eps1), eps2

    def update(self, param, grad, state, group):
        lr, weight_decay = group["lr"], group["weight_decay"]
        eps1, eps2 = self._epsilons(group, param)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"].item()
        one_minus_beta2 = step ** group["beta2_decay"]
        relative_step = min(lr, 1 / (step ** 0.5))
        alpha = max(eps2, _rms(param)) * relative_step
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        if grad.dim() > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            row_var.lerp_(_mean_square(grad, -1), one_minus_beta2)
            col_var.lerp_(_mean_square(grad, -2), one_minus_beta2)
            var_estimate = row_var @ col_var  # rank-one outer product, the shape of grad
            var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
        else:
            state["variance"].lerp_(grad * grad, one_minus_beta2)
            var_estimate = state["variance"].clone()
        update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
        clip = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * group["d"]))
        param.add_(update, alpha=-alpha / clip)

    def update_foreach(self, group, params, grads, states):
        lr, weight_decay = group["lr"], group["weight_decay"]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1.0)
        steps = [step.item() for step in steps]
        eps = [self._epsilons(group, param) for param in params]
        one_minus_beta2 = [step ** group["beta2_decay"] for step in steps]
        alphas = [max(eps2, norm.item() / (param.numel() ** 0.5)) * min(lr, 1 / (step ** 0.5))
                  for (_, eps2), norm, param, step in zip(eps, torch._foreach_norm(params), params, steps)]
        if weight_decay != 0:
            torch._foreach_mul_(params, 1 - lr * weight_decay)

        var_estimates = [None] * len(params)
        factored = [i for i, grad in enumerate(grads) if grad.dim() > 1]
        if factored:
            f_grads = [grads[i] for i in factored]
            f_weights = [one_minus_beta2[i] for i in factored]
            row_vars = [states[i]["row_var"] for i in factored]
            col_vars = [states[i]["col_var"] for i in factored]
            torch._foreach_lerp_(row_vars, [_mean_square(g, -1) for g in f_grads], f_weights)
            torch._foreach_lerp_(col_vars, [_mean_square(g, -2) for g in f_grads], f_weights)
            row_var_means = [row_var.mean(dim=-2, keepdim=True) for row_var in row_vars]
            torch._foreach_clamp_min_(row_var_means, [eps[i][0] for i in factored])
            f_estimates = [row_var @ col_var for row_var, col_var in zip(row_vars, col_vars)]
            torch._foreach_div_(f_estimates, row_var_means)
            for i, estimate in zip(factored, f_estimates):
                var_estimates[i] = estimate
        unfactored = [i for i, grad in enumerate(grads) if grad.dim() <= 1]
        if unfactored:
            variances = [states[i]["variance"] for i in unfactored]
            u_grads = [grads[i] for i in unfactored]
            torch._foreach_lerp_(variances, torch._foreach_mul(u_grads, u_grads),
                                 [one_minus_beta2[i] for i in unfactored])
            for i, variance in zip(unfactored, variances):
                var_estimates[i] = variance.clone()

        updates = var_estimates
        torch._foreach_clamp_min_(updates, [eps1 * eps1 for eps1, _ in eps])
        torch._foreach_rsqrt_(updates)
        torch._foreach_mul_(updates, grads)
        # one add_ per tensor: its fused multiply-add rounds like update()'s, a _foreach_mul_ would not
        for param, update, alpha, norm in zip(params, updates, alphas, torch._foreach_norm(updates)):
            clip = max(1.0, norm.item() / ((update.numel() ** 0.5) * group["d"]))
            param.add_(update, alpha=-alpha / clip)
