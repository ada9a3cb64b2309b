r"""Lion: the sign of an interpolated momentum (Chen et al., 2023).

Lion ("EvoLved Sign Momentum") was found by a program search over update rules,
not derived. With gradient :math:`g_t` (negated when ``maximize``), learning rate
:math:`\eta`, betas :math:`(\beta_1, \beta_2)` and weight decay :math:`\lambda_{\mathrm{wd}}`,
the paper's Algorithm 2 is

.. math::

    u_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t
        \qquad\text{(interpolate: the direction of this step)} \\
    \theta_t &= \theta_{t-1} - \eta\,\big(\operatorname{sign}(u_t) + \lambda_{\mathrm{wd}}\,\theta_{t-1}\big) \\
    m_t &= \beta_2 m_{t-1} + (1 - \beta_2)\, g_t
        \qquad\text{(the momentum that is kept, with a longer memory)}

with :math:`m_0 = 0` (the paper calls the interpolation :math:`c_t`; the course writes :math:`u_t`,
keeping :math:`c_t` for schedule-free's averaging weight). Three consequences:

* **Memory.** One state tensor per parameter (``exp_avg``), half of Adam's two.
* **Every coordinate moves by exactly** :math:`\eta` (plus the decay): the sign makes the
  update's RMS norm 1, larger than Adam's (whose per-coordinate ratio
  :math:`\hat m / \sqrt{\hat v}` is usually well below 1 for noisy gradients, though not bounded by 1:
  after a sudden large gradient it can reach about :math:`(1-\beta_1)/\sqrt{1-\beta_2}`, Kingma & Ba
  2015, section 2.1). So Lion's learning rate is
  typically 3-10x smaller than AdamW's, and, since decoupled weight decay shrinks by
  :math:`\eta\lambda_{\mathrm{wd}}` per step, its ``weight_decay`` is 3-10x larger to keep the product
  :math:`\eta\lambda_{\mathrm{wd}}` the same.
* :math:`\beta_1 = 0.9 < \beta_2 = 0.99`: the step uses a fresher mix of the gradient
  than the momentum that is carried forward.

Reference: Chen, Liang, Huang, Real, Wang, Liu, Pham, Dong, Luong, Hsieh, Lu & Le,
"Symbolic discovery of optimization algorithms" (NeurIPS 2023), Algorithm 2.
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion (Chen et al., NeurIPS 2023): :math:`\theta \leftarrow \theta - \eta(\operatorname{sign}(\beta_1 m + (1-\beta_1) g) + \lambda_{\mathrm{wd}}\theta)`,
    then :math:`m \leftarrow \beta_2 m + (1 - \beta_2) g`.

    torch.optim has no Lion; the arguments follow the paper and the authors' code
    (``lr=1e-4``, ``betas=(0.9, 0.99)``, ``weight_decay=0.0``), with torch's keyword-only
    ``maximize`` and ``foreach``, torch's wording for errors, and one state tensor,
    ``exp_avg`` (the momentum :math:`m`), as Adam names its first moment. The weight decay
    is decoupled, as in AdamW: :math:`\theta \leftarrow (1 - \eta\lambda_{\mathrm{wd}})\theta` before the sign step.
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, maximize=False, foreach=None):
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def init_state(self, param, state, group):
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        exp_avg = state["exp_avg"]
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        direction = exp_avg.lerp(grad, 1 - beta1)          # u_t = beta1 m + (1 - beta1) g
        param.add_(torch.sign(direction), alpha=-lr)
        exp_avg.lerp_(grad, 1 - beta2)                     # m_t = beta2 m + (1 - beta2) g

    def update_foreach(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        exp_avgs = [state["exp_avg"] for state in states]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if weight_decay != 0:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        directions = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
        torch._foreach_sign_(directions)
        torch._foreach_add_(params, directions, alpha=-lr)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)
