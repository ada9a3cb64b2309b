r"""Adamax: Adam with the infinity norm in place of the root mean square.

Adam scales by :math:`(\text{leaky mean of } |g|^2)^{1/2}`. Kingma & Ba let the
exponent 2 grow to :math:`p \to \infty`, and the leaky :math:`L^p` mean becomes a
leaky maximum, which needs no bias correction and no square root. With gradient
:math:`g_t` (negated when ``maximize``), learning rate :math:`\eta`, betas
:math:`(\beta_1, \beta_2)`, weight decay :math:`\lambda_{\mathrm{wd}}`:

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1} \\
    m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \qquad (m_0 = 0) \\
    u_t &= \max\big(\beta_2 u_{t-1},\ |g_t| + \epsilon\big) \qquad (u_0 = 0) \\
    \theta_t &= \theta_{t-1} - \frac{\eta}{1 - \beta_1^t}\, \frac{m_t}{u_t}

Only the momentum :math:`m_t` is biased towards its zero start, so only it is
corrected. Since :math:`|m_t| \le u_t`, no coordinate moves by more than about
:math:`\eta / (1-\beta_1^t)` in a step, which makes the step size easy to reason
about. :math:`\epsilon` sits inside the maximum (as in torch; the paper has none)
so that :math:`u_t > 0` even for coordinates whose gradient has always been zero.

* ``lr`` :math:`\eta` (default 2e-3): the largest step per coordinate.
* ``betas``: memory of the momentum (:math:`\beta_1`) and how fast the
  remembered maximum :math:`u_t` fades (:math:`\beta_2`).
* ``weight_decay``: an L2 penalty added to the gradient.

Reference: Kingma & Ba, "Adam: A method for stochastic optimization" (ICLR 2015), section 7.1.
"""

from __future__ import annotations

import torch

from ._base import (Optimizer, check, check_adam_hyperparameters, check_flags, new_step_counter, real, store,
                    to_scalar, value_of)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax, the infinity-norm variant of Adam (Kingma & Ba, ICLR 2015).

    Same arguments (``foreach`` is positional, as in torch), defaults, state
    (``step``, ``exp_avg``, ``exp_inf``) and errors as :class:`torch.optim.Adamax`
    (``capturable=True`` excepted).
    """

    group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}
    sparse_message = "Adamax does not support sparse gradients"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None,
                 *, maximize=False, differentiable=False, capturable=False):
        check_adam_hyperparameters(lr, eps, betas)
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check_flags(capturable=capturable)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_inf"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        if param.is_complex():  # real and imaginary parts get their own maximum
            param, grad, exp_avg, exp_inf = map(torch.view_as_real, (param, grad, exp_avg, exp_inf))

        exp_avg.lerp_(grad, 1 - beta1)
        torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(group["eps"]), out=exp_inf)
        bias_correction = 1 - beta1 ** state["step"].item()
        param.addcdiv_(exp_avg, exp_inf, value=-(to_scalar(group["lr"]) / bias_correction))

    def update_differentiable(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        g = real(grad)
        exp_avg = store(state, "exp_avg", real(state["exp_avg"]).lerp(g, 1 - beta1), param)
        exp_inf = store(state, "exp_inf", torch.maximum(beta2 * real(state["exp_inf"]), g.abs() + group["eps"]),
                        param)
        bias_correction = 1 - beta1 ** state["step"].item()
        real(param).sub_(to_scalar(group["lr"]) / bias_correction * exp_avg / exp_inf)

    def update_foreach(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        exp_avgs = [state["exp_avg"] for state in states]
        exp_infs = [state["exp_inf"] for state in states]
        steps = []
        for state in states:
            state["step"] += 1
            steps.append(state["step"].item())
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        if any(param.is_complex() for param in params):
            params, grads, exp_avgs, exp_infs = (
                [torch.view_as_real(t) if t.is_complex() else t for t in tensors]
                for tensors in (params, grads, exp_avgs, exp_infs))

        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_infs, beta2)
        abs_grads = torch._foreach_abs(grads)
        torch._foreach_add_(abs_grads, group["eps"])
        torch._foreach_maximum_(exp_infs, abs_grads)
        lr = value_of(group["lr"])  # torch's multi-tensor path reads a tensor lr as a number
        torch._foreach_addcdiv_(params, exp_avgs, exp_infs, [-lr / (1 - beta1**step) for step in steps])
