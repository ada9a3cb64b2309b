r"""NAdam: Adam with Nesterov momentum.

Nesterov's idea is to take the momentum step first and look at the gradient
where it lands. Dozat folds this into Adam by using, at step :math:`t`, the
momentum of step :math:`t+1` already: the numerator mixes the next momentum
:math:`\beta_{1,t+1} m_t` with the fresh gradient :math:`(1-\beta_{1,t}) g_t`. The momentum
coefficient follows a warm-up schedule :math:`\beta_{1,t}` that rises from
:math:`\beta_1/2` towards :math:`\beta_1`. (Dozat, and torch's code, call the schedule
:math:`\mu_t`, hence torch's state key ``mu_product``; the course keeps :math:`\mu` for the
strong-convexity constant.) With gradient :math:`g_t` (negated when
``maximize``), learning rate :math:`\eta`, betas :math:`(\beta_1, \beta_2)`,
momentum decay :math:`\psi`, weight decay :math:`\lambda_{\mathrm{wd}}`:

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1}
        \quad\text{(or, decoupled, } \theta_{t-1} \leftarrow (1 - \eta\lambda_{\mathrm{wd}})\,\theta_{t-1}\text{)} \\
    \beta_{1,t} &= \beta_1 \big(1 - \tfrac12\, 0.96^{\,t\psi}\big), \qquad
    \Pi_t = \textstyle\prod_{i=1}^{t} \beta_{1,i} \\
    m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \qquad (m_0 = v_0 = 0) \\
    \hat m_t &= \frac{\beta_{1,t+1}\, m_t}{1 - \Pi_{t+1}} + \frac{(1 - \beta_{1,t})\, g_t}{1 - \Pi_t}, \qquad
    \hat v_t = \frac{v_t}{1 - \beta_2^t} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

* ``lr`` :math:`\eta` (default 2e-3) and ``betas``, ``eps``: as in Adam.
* ``momentum_decay`` :math:`\psi` (default 4e-3): how fast :math:`\beta_{1,t}` warms up;
  :math:`\beta_{1,t}` is within 1% of :math:`\beta_1` after about :math:`\log(0.02)/(\psi\log 0.96)`
  steps (about 24 000 by default).
* ``weight_decay``: an L2 penalty, or with ``decoupled_weight_decay=True`` a direct
  shrink of the weights as in AdamW ("NAdamW").

The running product :math:`\Pi_t` is kept in ``state["mu_product"]`` (torch's name), a 0-dim CPU
tensor like ``step`` (float32 unless float64 is the default dtype).

References: Dozat, "Incorporating Nesterov momentum into Adam" (ICLR workshop 2016);
Loshchilov & Hutter, "Decoupled weight decay regularization" (ICLR 2019).
"""

from __future__ import annotations

import torch

from ._base import (Optimizer, check, check_adam_hyperparameters, check_flags, new_step_counter, real, store,
                    to_scalar, value_of)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), optionally with decoupled weight decay.

    Same arguments, defaults, state (``step``, ``mu_product``, ``exp_avg``,
    ``exp_avg_sq``) and errors as :class:`torch.optim.NAdam` (``capturable=True`` excepted).
    """

    scalar_state_keys = ("step", "mu_product")  # both 0-dim CPU tensors, as in torch
    group_fallbacks = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                       "decoupled_weight_decay": False}
    sparse_message = "NAdam does not support sparse gradients"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_adam_hyperparameters(lr, eps, betas)
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        check_flags(capturable=capturable)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["mu_product"] = torch.ones_like(state["step"])  # 0-dim CPU, step's dtype, as in torch
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def momentum_schedule(self, step, group):
        """The momentum coefficients :math:`(\\beta_{1,t}, \\beta_{1,t+1})` of step ``t`` (torch's ``mu``, ``mu_next``)."""
        beta1, psi = group["betas"][0], group["momentum_decay"]
        return (beta1 * (1.0 - 0.5 * (0.96 ** (step * psi))),
                beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi))))

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, weight_decay = to_scalar(group["lr"]), group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"].item()
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        if param.is_complex():  # real and imaginary parts get their own scale
            param, grad, exp_avg, exp_avg_sq = map(torch.view_as_real, (param, grad, exp_avg, exp_avg_sq))
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)

        mu, mu_next = self.momentum_schedule(step, group)
        state["mu_product"] *= mu  # in place, in its own dtype, exactly as torch rounds it
        mu_product = state["mu_product"].item()
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.div(1 - beta2**step).sqrt_().add_(group["eps"])
        param.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1.0 - mu_product * mu_next))

    def update_differentiable(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, weight_decay = to_scalar(group["lr"]), group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"].item()
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        mu, mu_next = self.momentum_schedule(step, group)
        # as torch's differentiable path: the running product stays a tensor (in its own dtype)
        mu_product = state["mu_product"] = state["mu_product"] * mu
        g = real(grad)
        exp_avg = store(state, "exp_avg", real(state["exp_avg"]).lerp(g, 1 - beta1), param)
        exp_avg_sq = store(state, "exp_avg_sq", beta2 * real(state["exp_avg_sq"]) + (1 - beta2) * g * g, param)
        denom = (exp_avg_sq / (1 - beta2**step)).sqrt() + group["eps"]
        grad_weight = lr * (1.0 - mu) / (1.0 - mu_product)
        momentum_weight = lr * mu_next / (1.0 - mu_product * mu_next)
        real(param).sub_((grad_weight * g + momentum_weight * exp_avg) / denom)

    def update_foreach(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        lr, weight_decay = value_of(group["lr"]), group["weight_decay"]  # a tensor lr read as a number, as torch
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        steps, mus, mu_nexts, mu_products = [], [], [], []
        for state in states:
            state["step"] += 1
            steps.append(state["step"].item())
            mu, mu_next = self.momentum_schedule(steps[-1], group)
            state["mu_product"] *= mu
            mus.append(mu)
            mu_nexts.append(mu_next)
            mu_products.append(state["mu_product"].item())
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if any(param.is_complex() for param in params):
            params, grads, exp_avgs, exp_avg_sqs = (
                [torch.view_as_real(t) if t.is_complex() else t for t in tensors]
                for tensors in (params, grads, exp_avgs, exp_avg_sqs))
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * weight_decay)
            else:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)

        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        denoms = torch._foreach_div(exp_avg_sqs, [1 - beta2**step for step in steps])
        torch._foreach_sqrt_(denoms)
        torch._foreach_add_(denoms, group["eps"])
        grad_step_sizes = [-lr * (1.0 - mu) / (1.0 - prod) for mu, prod in zip(mus, mu_products)]
        momentum_step_sizes = [-lr * mu_next / (1.0 - prod * mu_next)
                               for mu_next, prod in zip(mu_nexts, mu_products)]
        torch._foreach_addcdiv_(params, grads, denoms, grad_step_sizes)
        torch._foreach_addcdiv_(params, exp_avgs, denoms, momentum_step_sizes)
