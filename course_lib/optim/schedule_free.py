r"""Schedule-free SGD and AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, 2024).

A learning-rate schedule that decays to zero at a known final step :math:`T` is what makes
SGD's last iterate good; averaging the iterates (Polyak-Ruppert) does it without knowing
:math:`T`, but the plain average lags far behind in practice. Schedule-free optimization keeps
three sequences and gets both: the *base* sequence :math:`z` takes plain gradient steps, the
*average* :math:`x` (the weights to evaluate) averages :math:`z`, and the gradient is taken
at an interpolation :math:`y` between them:

.. math::

    y_t &= (1 - \beta)\, z_t + \beta\, x_t \\
    z_{t+1} &= z_t - \eta_t\, \nabla f(y_t) \\
    x_{t+1} &= (1 - c_{t+1})\, x_t + c_{t+1}\, z_{t+1}, \qquad
    c_{t+1} = \frac{w_{t+1}}{\sum_{i \le t+1} w_i}

with :math:`x_1 = z_1 = y_1` the initial weights. With equal weights :math:`w_i`, the
:math:`t`-th step has :math:`c = 1/t` (the first step sets :math:`x = z`) and :math:`x` is the running
average of the :math:`z`'s the steps produced (the start itself is not counted, as in the authors'
package; the paper's indexing counts it). The paper
weights step :math:`i` by :math:`w_i = i^r\, \eta_{\max,i}^{\,p}` (``r``, ``weight_lr_power``
:math:`p`; :math:`\eta_{\max}` the largest step size so far), so that warmup steps count less.
:math:`\beta` interpolates between two classical averaging methods:
:math:`\beta = 0` gives :math:`y = z`, plain SGD on :math:`z` with :math:`x` its running average
(Polyak-Ruppert averaging); :math:`\beta = 1` gives :math:`y = x`, the gradient taken at the
average while :math:`z` still takes the steps (primal averaging). Neither is SGD on :math:`x`. In
between, :math:`\beta` plays the part of momentum (0.9 by default). For a convex objective
:math:`f(x) = \mathbb{E}_\zeta f(x, \zeta)` with each :math:`f(\cdot, \zeta)` :math:`\Gamma`-Lipschitz, the
paper's Theorem 1 gives, for every :math:`\beta \in [0, 1]`,
:math:`\mathbb{E}[f(x_T) - f^\star] \le \Delta\Gamma/\sqrt T` with the constant step
:math:`\eta = \Delta/(\Gamma\sqrt T)`, :math:`\Delta = \|x_1 - x^\star\|` (the paper's :math:`D` and
:math:`G`): the step never changes during the run, but its size depends on :math:`T`. SGD's *last
iterate* reaches this rate only with a decaying schedule. With the weights :math:`w_i`
above, :math:`c_t \approx (r+1)/t` once the step size is constant.

The parameter tensor holds :math:`y` while training (where the gradient is taken) and the state
holds :math:`z`; :math:`x` is never stored, since :math:`x = (y - (1-\beta) z)/\beta`. One update
of the pair, in place:

.. math::

    y \leftarrow (1 - c)\, y + c\, z + \eta\big(\beta(1 - c) - 1\big)\, g, \qquad
    z \leftarrow z - \eta g

(substitute the three equations). ``eval()`` replaces :math:`y` by :math:`x` in the parameters
(evaluate and save checkpoints there) and ``train()`` puts :math:`y` back: call ``train()`` before
training (``step`` refuses to run otherwise) and ``eval()`` before evaluating.

**AdamW** variant: the gradient is divided by Adam's bias-corrected
:math:`\sqrt{\hat v_t} + \epsilon` before it enters :math:`z` and :math:`y`, and
:math:`\beta_1` plays :math:`\beta`'s part (there is no first moment: the averaging replaces it);
the weight decay :math:`\lambda_{\mathrm{wd}} y` is added after that division.

``warmup_steps``: the step size ramps up linearly, :math:`\eta_t = \eta \min(1, t/\text{warmup})`.

These classes equal the authors' package ``schedulefree`` (``SGDScheduleFree``,
``AdamWScheduleFree``): same arguments, defaults, group entries (``k``, ``train_mode``,
``weight_sum``, ``lr_max``, ``scheduled_lr``, ...) and state (``z``, ``exp_avg_sq``), so a state
dict moves both ways; unlike the package they leave ``p.grad`` unchanged, and ``foreach=None``
means torch's rule (multi-tensor kernels on CUDA).

Reference: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The road less scheduled"
(NeurIPS 2024); https://github.com/facebookresearch/schedule_free.
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, check_adam_hyperparameters

__all__ = ["ScheduleFreeSGD", "ScheduleFreeAdamW"]

NOT_IN_TRAIN_MODE = ("Optimizer was not in train mode when step is called. Please insert .train() and .eval() "
                     "calls on the optimizer. See documentation for details.")


class _ScheduleFree(Optimizer):
    """What both schedule-free optimizers share: the averaging weights and the train/eval switch."""

    scalar_state_keys = ()

    def interpolation(self, group) -> float:
        """:math:`\\beta`: momentum (SGD) or betas[0] (AdamW)."""
        raise NotImplementedError

    @torch.no_grad()
    def eval(self):
        """Put :math:`x = y + (1 - 1/\\beta)(z - y)` into the parameters (for evaluation, checkpoints)."""
        for group in self.param_groups:
            if group["train_mode"]:
                beta = self.interpolation(group)
                for param in group["params"]:
                    state = self.state[param]
                    if "z" in state:
                        param.lerp_(state["z"].to(param.device), 1 - 1 / beta)
                group["train_mode"] = False

    @torch.no_grad()
    def train(self):
        """Put :math:`y = (1 - \\beta) z + \\beta x` back into the parameters (for training)."""
        for group in self.param_groups:
            if not group["train_mode"]:
                beta = self.interpolation(group)
                for param in group["params"]:
                    state = self.state[param]
                    if "z" in state:
                        param.lerp_(state["z"].to(param.device), 1 - beta)
                group["train_mode"] = True

    def advance(self, group) -> tuple[float, float]:
        """Count this step in ``group`` (``k``, ``lr_max``, ``weight_sum``); return ``(lr, c)`` for it."""
        k = group["k"]
        warmup = group["warmup_steps"]
        lr = group["lr"] * ((k + 1) / warmup if k < warmup else 1.0)
        group["scheduled_lr"] = lr
        group["lr_max"] = lr_max = max(lr, group["lr_max"])
        weight = (k + 1) ** group["r"] * lr_max ** group["weight_lr_power"]
        group["weight_sum"] = group["weight_sum"] + weight
        try:
            c = weight / group["weight_sum"]
        except ZeroDivisionError:  # lr = 0 so far: no weight yet
            c = 0
        return lr, c

    def init_state(self, param, state, group):
        state["z"] = param.detach().clone(memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self, closure=None):
        """One step (in train mode only); with a ``closure``, return its loss."""
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(NOT_IN_TRAIN_MODE)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, c = self.advance(group)  # every group counts the step, with gradients or not
            params = [p for p in group["params"] if p.grad is not None]
            states = []
            for param in params:
                if param.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[param]
                if len(state) == 0:
                    self.init_state(param, state, group)
                states.append(state)
            group_step = dict(group, lr=lr, c=c)
            if params and self.use_foreach(group, params):
                self.update_foreach(group_step, params, [p.grad for p in params], states)
            else:
                for param, state in zip(params, states):
                    self.update(param, param.grad, state, group_step)
            group["k"] += 1
        return loss


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-free SGD (Defazio et al., NeurIPS 2024), equal to ``schedulefree.SGDScheduleFree``.

    Arguments and defaults as the package: ``lr=1.0``, ``momentum=0.9`` (the interpolation
    :math:`\beta`, in :math:`(0, 1)`), ``weight_decay=0`` (an L2 penalty, taken at :math:`y`),
    ``warmup_steps=0``, ``r=0.0``, ``weight_lr_power=2``, ``foreach``. State: ``z``.
    """

    def __init__(self, params, lr=1.0, momentum=0.9, weight_decay=0, warmup_steps=0, r=0.0, weight_lr_power=2,
                 foreach=None):
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(0 < momentum < 1, f"Momentum must be between 0 and 1 exclusive: {momentum}")
        defaults = dict(lr=lr, momentum=momentum, r=r, k=0, warmup_steps=warmup_steps, train_mode=False,
                        weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0, weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)

    def interpolation(self, group):
        return group["momentum"]

    def update(self, param, grad, state, group):
        lr, c, beta = group["lr"], group["c"], group["momentum"]
        z = state["z"]
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        param.lerp_(z, c)                                  # y <- (1 - c) y + c z
        param.add_(grad, alpha=lr * (beta * (1 - c) - 1))  #      + lr (beta (1 - c) - 1) g
        z.sub_(grad, alpha=lr)                             # z <- z - lr g

    def update_foreach(self, group, params, grads, states):
        lr, c, beta = group["lr"], group["c"], group["momentum"]
        zs = [state["z"] for state in states]
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        torch._foreach_lerp_(params, zs, c)
        torch._foreach_add_(params, grads, alpha=lr * (beta * (1 - c) - 1))
        torch._foreach_sub_(zs, grads, alpha=lr)


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-free AdamW (Defazio et al., NeurIPS 2024), equal to ``schedulefree.AdamWScheduleFree``.

    Arguments and defaults as the package: ``lr=0.0025``, ``betas=(0.9, 0.999)`` (:math:`\beta_1` is
    the interpolation), ``eps=1e-8``, ``weight_decay=0`` (decoupled: added to the normalized gradient),
    ``warmup_steps=0``, ``r=0.0``, ``weight_lr_power=2.0``, ``foreach``. State: ``z``, ``exp_avg_sq``.
    The package checks no argument; this class raises Adam's errors (and needs :math:`\beta_1 > 0`).
    """

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, foreach=None):
        check_adam_hyperparameters(lr, eps, betas)
        check(0.0 < betas[0], f"Invalid beta parameter at index 0: {betas[0]}")  # eval() divides by it
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, r=r, k=0, warmup_steps=warmup_steps, train_mode=False,
                        weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0, weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)

    def interpolation(self, group):
        return group["betas"][0]

    def init_state(self, param, state, group):
        super().init_state(param, state, group)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update(self, param, grad, state, group):
        lr, c = group["lr"], group["c"]
        beta1, beta2 = group["betas"]
        z, exp_avg_sq = state["z"], state["exp_avg_sq"]
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction2 = 1 - beta2 ** (group["k"] + 1)
        denom = exp_avg_sq.div(bias_correction2).sqrt_().add_(group["eps"])
        normalized = torch.div(grad, denom, out=denom)  # g / (sqrt(v_hat) + eps), reusing denom's memory
        if group["weight_decay"] != 0:
            normalized.add_(param, alpha=group["weight_decay"])  # decay taken at y
        param.lerp_(z, c)
        param.add_(normalized, alpha=lr * (beta1 * (1 - c) - 1))
        z.sub_(normalized, alpha=lr)

    def update_foreach(self, group, params, grads, states):
        lr, c = group["lr"], group["c"]
        beta1, beta2 = group["betas"]
        zs = [state["z"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        denoms = torch._foreach_div(exp_avg_sqs, 1 - beta2 ** (group["k"] + 1))
        torch._foreach_sqrt_(denoms)
        torch._foreach_add_(denoms, group["eps"])
        normalized = torch._foreach_div(grads, denoms)
        if group["weight_decay"] != 0:
            torch._foreach_add_(normalized, params, alpha=group["weight_decay"])
        torch._foreach_lerp_(params, zs, c)
        torch._foreach_add_(params, normalized, alpha=lr * (beta1 * (1 - c) - 1))
        torch._foreach_sub_(zs, normalized, alpha=lr)
