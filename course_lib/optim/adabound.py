r"""AdaBound: Adam whose per-coordinate learning rates are clipped into a band that shrinks to SGD.

Adam's effective learning rate :math:`\eta_t / (\sqrt{v_t} + \epsilon)` can be extremely
large or small for some coordinates late in training, which the authors link to
Adam's worse generalization. AdaBound clips it, coordinate by coordinate, between a
lower and an upper bound that both tend to one SGD learning rate :math:`\eta^*`
(``final_lr``): the method starts as Adam and ends as SGD, smoothly.

With gradient :math:`g_t` (negated when ``maximize``), weight decay :math:`\lambda_{\mathrm{wd}}`
(L2, added to the gradient), ``betas`` :math:`(\beta_1, \beta_2)`, ``lr`` :math:`\alpha`
and ``gamma`` :math:`\gamma`:

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1} \\
    m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2
    \quad (\text{AMSBound: } \hat v_t = \max(\hat v_{t-1}, v_t) \text{ in its place}) \\
    \eta_l(t) &= \eta^* \Bigl(1 - \frac{1}{\gamma t + 1}\Bigr), \qquad
    \eta_u(t) = \eta^* \Bigl(1 + \frac{1}{\gamma t}\Bigr) \\
    \eta_t &= \operatorname{clip}\Bigl(\frac{\alpha \sqrt{1 - \beta_2^t}}{(1 - \beta_1^t)(\sqrt{v_t} + \epsilon)},
    \ \eta_l(t),\ \eta_u(t)\Bigr) \\
    \theta_t &= \theta_{t-1} - \eta_t \odot m_t

At :math:`t = 1` the band :math:`[\eta^* \gamma/(1+\gamma),\ \eta^*(1 + 1/\gamma)]` is
wide and the step is Adam's; as :math:`t \to \infty` both bounds tend to :math:`\eta^*`
and the step becomes SGD with momentum, :math:`\theta_t = \theta_{t-1} - \eta^* m_t`.
``gamma`` sets how fast the band closes (after about :math:`1/\gamma` steps it is
within a factor of two of :math:`\eta^*`).

As in the authors' package, an LR scheduler that changes ``lr`` scales the band too:
:math:`\eta^*` is ``final_lr * lr / base_lr``, where ``base_lr`` is the group's ``lr``
when the group was added (kept in the param group, so it survives ``state_dict``).

**The paper and the package.** The equations above are those of the authors' package
``adabound`` (``adabound.AdaBound``), which the course follows and tests against. The
paper's Algorithm 2 differs from it:

* it corrects no bias: the clipped quantity is :math:`\alpha/\sqrt{v_t}`, without the factor
  :math:`\sqrt{1 - \beta_2^t}/(1 - \beta_1^t)` and without :math:`\epsilon`;
* it divides the clipped step size by :math:`\sqrt{t}`, a decay the package does not have;
* its analysis lets :math:`\beta_1` decay with :math:`t` (:math:`\beta_{1,t}`); the package keeps
  it constant;
* its band is a pair of functions :math:`\eta_l(t), \eta_u(t)` with a fixed limit (its
  experiments close it at the rate :math:`1 - \beta_2`); the package's band is the one above,
  with its own rate ``gamma`` and a limit :math:`\eta^*` = ``final_lr`` that follows the
  current ``lr`` through the ratio ``lr / base_lr``, so a schedule on ``lr`` moves the final
  SGD step size too (in the paper it is fixed).

Reference: Luo, Xiong, Liu & Sun, "Adaptive gradient methods with dynamic bound of
learning rate", ICLR 2019 (Algorithm 2); the authors' package ``adabound`` is the test
reference.
"""

from __future__ import annotations

import math

import torch

from ._base import Optimizer, check, check_adam_hyperparameters, new_step_counter

__all__ = ["AdaBound"]


class AdaBound(Optimizer):
    """AdaBound, and AMSBound with ``amsbound=True``.

    Same arguments, defaults, state (``step``, ``exp_avg``, ``exp_avg_sq``,
    ``max_exp_avg_sq``) and errors as the authors' ``adabound.AdaBound``, plus
    torch.optim's keyword-only ``maximize`` and ``foreach``. ``step`` is a tensor,
    as in torch.optim.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8,
                 weight_decay=0, amsbound=False, *, maximize=False, foreach=None):
        check_adam_hyperparameters(lr, eps, betas)
        check(0.0 <= final_lr, f"Invalid final learning rate: {final_lr}")
        check(0.0 <= gamma < 1.0, f"Invalid gamma parameter: {gamma}")
        defaults = dict(lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps,
                        weight_decay=weight_decay, amsbound=amsbound, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("base_lr", group["lr"])

    def load_state_dict(self, state_dict):
        # A state dict of the authors' package lacks these keys: keep ours (the package, too,
        # keeps the base lrs of its construction).
        groups = [dict(saved) for saved in state_dict["param_groups"]]
        for saved, current in zip(groups, self.param_groups):
            for key in ("base_lr", "maximize", "foreach"):
                saved.setdefault(key, current[key])
        super().load_state_dict({**state_dict, "param_groups": groups})

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("base_lr", group["lr"])  # a state dict of the adabound package lacks it

    def init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["amsbound"]:
            state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    @staticmethod
    def _step_size_and_bounds(group, step):
        """Adam's bias-corrected step size and the band [lower, upper] at step ``step``."""
        beta1, beta2 = group["betas"]
        step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        # a scheduler scales final_lr with lr; with a base lr of 0 there is no ratio (the package divides by 0)
        lr_scale = group["lr"] / group["base_lr"] if group["base_lr"] != 0 else 1.0
        final_lr = group["final_lr"] * lr_scale
        lower = final_lr * (1 - 1 / (group["gamma"] * step + 1))
        upper = final_lr * (1 + 1 / (group["gamma"] * step))
        return step_size, lower, upper

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        state["step"] += 1
        step_size, lower, upper = self._step_size_and_bounds(group, state["step"].item())

        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["amsbound"]:
            second_moment = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        else:
            second_moment = exp_avg_sq
        denom = second_moment.sqrt().add_(group["eps"])
        # per-coordinate learning rate step_size / denom (an exact division, written into denom)
        coord_lr = torch.div(torch.tensor(step_size, dtype=denom.dtype), denom, out=denom)
        param.sub_(coord_lr.clamp_(lower, upper).mul_(exp_avg))

    def update_foreach(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1.0)
        step_sizes, lowers, uppers = zip(*(self._step_size_and_bounds(group, s.item()) for s in steps))

        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        if group["amsbound"]:
            second_moments = [state["max_exp_avg_sq"] for state in states]
            torch._foreach_maximum_(second_moments, exp_avg_sqs)
        else:
            second_moments = exp_avg_sqs
        coord_lrs = torch._foreach_sqrt(second_moments)
        torch._foreach_add_(coord_lrs, group["eps"])
        torch._foreach_reciprocal_(coord_lrs)  # s * (1/denom): within an ulp of update's s / denom
        torch._foreach_mul_(coord_lrs, list(step_sizes))
        torch._foreach_clamp_min_(coord_lrs, list(lowers))
        torch._foreach_clamp_max_(coord_lrs, list(uppers))
        torch._foreach_mul_(coord_lrs, exp_avgs)
        torch._foreach_sub_(params, coord_lrs)
