r"""SWATS: start with Adam, switch to SGD with momentum once Adam's step size has settled.

Keskar & Socher (2017, "Improving generalization performance by switching from
Adam to SGD", Algorithm 1). In the Adam phase, with :math:`g_k` the gradient,

.. math::
    m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k,\qquad
    a_k = \beta_2 a_{k-1} + (1-\beta_2) g_k^2,\qquad
    p_k = -\alpha\,\frac{\sqrt{1-\beta_2^k}}{1-\beta_1^k}\,\frac{m_k}{\sqrt{a_k}+\epsilon},\qquad
    w_k = w_{k-1} + p_k .

(:math:`a_k` and :math:`v_k` below are the paper's names: :math:`a_k` is Adam's second
moment, torch's ``exp_avg_sq``.) Which SGD learning rate :math:`\gamma` would have made
the same progress? Asking that the SGD step :math:`-\gamma g_k` projected on :math:`p_k`
equal :math:`p_k` gives the **projected learning rate** :math:`\gamma_k`, and the optimizer
keeps its running average :math:`\bar\gamma_k` (the paper calls it :math:`\lambda_k`; the
course keeps :math:`\lambda` for eigenvalues):

.. math::
    \gamma_k = \frac{p_k^\top p_k}{-p_k^\top g_k}\quad(\text{when } p_k^\top g_k \ne 0),\qquad
    \bar\gamma_k = \beta_2 \bar\gamma_{k-1} + (1-\beta_2)\gamma_k \quad (\bar\gamma_0 = 0).

When the bias-corrected average agrees with the newest estimate,
:math:`k > 1` and :math:`|\bar\gamma_k/(1-\beta_2^k) - \gamma_k| < \varepsilon_{\text{switch}}`, the
optimizer switches for good to SGD with momentum and learning rate
:math:`\Lambda = \bar\gamma_k / (1-\beta_2^k)`:

.. math::
    v_k = \beta_1 v_{k-1} + g_k,\quad v = 0 \text{ at the switch},\qquad
    w_k = w_{k-1} - (1-\beta_1)\,\Lambda\, v_k .

Here the vectors :math:`w, p, g` are **all parameters of a parameter group together**
(one projection, one switch per group); implementations differ on this (per layer, or
global), the paper's algorithm is written for one vector. The paper's
:math:`\epsilon = 10^{-9}` serves both as Adam's :math:`\epsilon` and as the switching
tolerance; here they are two arguments, ``eps`` and ``switch_tol``. Whether and when
the switch happens depends on the problem and the noise: report it, do not assume it.

State: per parameter ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`a`),
``momentum_buffer`` (:math:`v`, after the switch); per group ``phase`` (``"adam"`` or
``"sgd"``), ``proj_lr_avg`` (:math:`\bar\gamma_k`), ``sgd_lr`` (:math:`\Lambda`) and
``switched_at`` (the step of the switch, or ``None``).
"""

from __future__ import annotations

import torch

from ._base import check, check_adam_hyperparameters, new_step_counter

__all__ = ["SWATS"]


class SWATS(torch.optim.Optimizer):
    """Adam, then SGD with momentum at the projected learning rate (Keskar & Socher 2017)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-9, switch_tol: float = 1e-9):
        check_adam_hyperparameters(lr, eps, betas)
        check(0.0 <= switch_tol, f"Invalid switch_tol value: {switch_tol}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, switch_tol=switch_tol, phase="adam", proj_lr_avg=0.0,
                        sgd_lr=None, switched_at=None)
        super().__init__(params, defaults)

    @property
    def switched_at(self):
        """The step at which the first group switched to SGD, or ``None``."""
        steps = [g["switched_at"] for g in self.param_groups if g["switched_at"] is not None]
        return min(steps) if steps else None

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            if group["phase"] == "sgd":
                step_size = (1 - beta1) * group["sgd_lr"]
                for p in params:
                    state = self.state[p]
                    if "momentum_buffer" not in state:  # a tensor that had no gradient before the switch
                        state.setdefault("step", new_step_counter())
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["step"] += 1
                    buf = state["momentum_buffer"]
                    buf.mul_(beta1).add_(p.grad)
                    p.add_(buf, alpha=-step_size)
                continue
            p_dot_p, p_dot_g, k = 0.0, 0.0, 0
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = new_step_counter()
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                k = int(state["step"].item())
                g = p.grad
                state["exp_avg"].lerp_(g, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                scale = group["lr"] * (1 - beta2 ** k) ** 0.5 / (1 - beta1 ** k)
                update = state["exp_avg"] / (state["exp_avg_sq"].sqrt() + group["eps"]) * (-scale)
                p.add_(update)
                p_dot_p += float((update * update).sum())
                p_dot_g += float((update * g).sum())
            if p_dot_g != 0.0:
                gamma = p_dot_p / -p_dot_g
                group["proj_lr_avg"] = beta2 * group["proj_lr_avg"] + (1 - beta2) * gamma
                corrected = group["proj_lr_avg"] / (1 - beta2 ** k)
                if k > 1 and abs(corrected - gamma) < group["switch_tol"]:
                    group["phase"], group["sgd_lr"], group["switched_at"] = "sgd", corrected, k
                    for p in params:
                        self.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return loss
