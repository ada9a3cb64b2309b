r"""Adam, and its two best-known repairs: AdamW (decoupled weight decay) and AMSGrad.

Adam keeps two leaky averages per coordinate, of the gradient (momentum) and of
its square (a scale), and steps along the first divided by the root of the
second. With gradient :math:`g_t` (negated when ``maximize``), learning rate
:math:`\eta`, betas :math:`(\beta_1, \beta_2)`, weight decay :math:`\lambda_{\mathrm{wd}}`:

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1}
        \quad\text{(L2 penalty; with decoupled decay instead }
        \theta_{t-1} \leftarrow (1 - \eta\lambda_{\mathrm{wd}})\,\theta_{t-1}\text{)} \\
    m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \qquad (m_0 = v_0 = 0) \\
    v_t^{\max} &= \max(v_{t-1}^{\max}, v_t) \quad \text{(AMSGrad only: it then replaces } v_t
        \text{ below)} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

Both averages start at zero, so early on they are biased towards zero;
dividing by :math:`1 - \beta^t` removes the bias exactly when the gradients are
stationary. :math:`\epsilon` only guards against division by zero.

* ``lr`` :math:`\eta` bounds the step: :math:`|\Delta\theta| \lesssim \eta` per coordinate.
* ``betas``: memory of the momentum (:math:`\beta_1`, about :math:`1/(1-\beta_1)` steps) and
  of the scale (:math:`\beta_2`, about 1000 steps by default).
* ``amsgrad``: never let the scale shrink (Reddi et al.'s fix for Adam's non-convergence).
* ``weight_decay`` with ``decoupled_weight_decay``: see :class:`Adam`.

References: Kingma & Ba, "Adam: A method for stochastic optimization" (ICLR 2015);
Loshchilov & Hutter, "Decoupled weight decay regularization" (ICLR 2019);
Reddi, Kale & Kumar, "On the convergence of Adam and beyond" (ICLR 2018).
"""

from __future__ import annotations

import torch

from ._base import (Optimizer, check, check_flags, check_lr, new_step_counter, real,
                    store, to_scalar, value_of)

__all__ = ["Adam", "AdamW", "AMSGrad"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, ICLR 2015), optionally AMSGrad and with decoupled weight decay.

    The bias-corrected update:

    .. math::

        \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    ``weight_decay`` :math:`\lambda_{\mathrm{wd}}` is, by default, an L2 penalty: :math:`\lambda_{\mathrm{wd}}\theta`
    is added to the gradient, so it enters :math:`m_t` and :math:`v_t` and is divided
    by :math:`\sqrt{\hat v_t}` like the gradient is, so weights whose gradients have
    been large are decayed less than the others. With ``decoupled_weight_decay=True`` (AdamW,
    Loshchilov & Hutter, ICLR 2019) the weights are instead shrunk directly,
    :math:`\theta \leftarrow (1 - \eta\lambda_{\mathrm{wd}})\theta`, before the Adam step, the same
    relative amount for every weight. As in torch, the shrink is scaled by ``lr``.

    Same arguments, defaults, state (``step``, ``exp_avg``, ``exp_avg_sq``, and
    ``max_exp_avg_sq`` when ``amsgrad``) and errors as :class:`torch.optim.Adam`
    (``capturable=True`` excepted). ``lr`` and ``betas`` may be one-element tensors; the
    arithmetic on them is torch's, in their own dtype where torch's is (a float32 ``lr``
    rounds the step size to float32 on the per-tensor path; the multi-tensor path reads it
    as a number).
    """

    group_fallbacks = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                       "differentiable": False, "decoupled_weight_decay": False, "fused": None}
    sparse_message = "Adam does not support sparse gradients, please consider SparseAdam instead"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        check_lr(lr, foreach=foreach, capturable=capturable, refuse_tensor_foreach=True)
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(all(isinstance(beta, float) for beta in betas)
              or all(isinstance(beta, torch.Tensor) for beta in betas),
              "betas must be either both floats or both Tensors")
        for index, beta in enumerate(betas):
            if isinstance(beta, torch.Tensor):
                check(capturable or not foreach,
                      f"betas[{index}] as a Tensor is not supported for capturable=False and foreach=True")
                check(beta.numel() == 1, f"Tensor betas[{index}] must be 1-element")
        check_flags(capturable=capturable)
        defaults = dict(lr=lr, betas=tuple(map(to_scalar, betas)), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        check_flags(foreach=foreach, differentiable=differentiable, fused=fused)

    def init_state(self, param, state, group):
        state["step"] = new_step_counter(bool(group.get("fused")), param.device)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, weight_decay = to_scalar(group["lr"]), group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        max_exp_avg_sq = state["max_exp_avg_sq"] if group["amsgrad"] else None
        if param.is_complex():  # real and imaginary parts get their own scale
            param, grad, exp_avg, exp_avg_sq = map(torch.view_as_real, (param, grad, exp_avg, exp_avg_sq))
            if max_exp_avg_sq is not None:
                max_exp_avg_sq = torch.view_as_real(max_exp_avg_sq)

        # a tensor beta1 is first cast to the parameter's dtype, as torch does (pytorch#140601)
        lerp_beta1 = beta1.to(device=param.device, dtype=param.dtype) if torch.is_tensor(beta1) else beta1
        exp_avg.lerp_(grad, 1 - lerp_beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = state["step"].item()
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if max_exp_avg_sq is not None:
            torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            exp_avg_sq = max_exp_avg_sq
        denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(group["eps"])
        param.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))

    def update_differentiable(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, weight_decay = to_scalar(group["lr"]), group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        g = real(grad)
        exp_avg = store(state, "exp_avg", real(state["exp_avg"]).lerp(g, 1 - beta1), param)
        exp_avg_sq = store(state, "exp_avg_sq", beta2 * real(state["exp_avg_sq"]) + (1 - beta2) * g * g, param)
        if group["amsgrad"]:
            exp_avg_sq = store(state, "max_exp_avg_sq", torch.maximum(real(state["max_exp_avg_sq"]), exp_avg_sq),
                               param)
        # As torch's differentiable path: the scalars are 0-dim tensors in the step counter's dtype
        # (float32 unless float64 is the default dtype), and the step size -lr / (1 - beta1^t) is
        # folded into the denominator, so that one addcdiv_ with a tensor lr stays differentiable.
        step = state["step"]
        minus_step_size = -(lr / (1 - beta1**step))
        scale = (1 - beta2**step).sqrt() * minus_step_size
        denom = exp_avg_sq.sqrt() / scale + group["eps"] / minus_step_size
        real(param).addcdiv_(exp_avg, denom)

    def update_foreach(self, group, params, grads, states):
        if group.get("foreach") and torch.is_tensor(group["lr"]):
            raise RuntimeError("lr as a Tensor is not supported for capturable=False and foreach=True")
        # torch's multi-tensor and fused kernels read tensor hyperparameters as numbers
        beta1, beta2 = map(value_of, group["betas"])
        lr, weight_decay = value_of(group["lr"]), group["weight_decay"]
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        max_exp_avg_sqs = [state["max_exp_avg_sq"] for state in states] if group["amsgrad"] else []
        steps = []
        for state in states:
            state["step"] += 1
            steps.append(state["step"].item())
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * weight_decay)
            else:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)
        if any(param.is_complex() for param in params):
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs = (
                [torch.view_as_real(t) if t.is_complex() else t for t in tensors]
                for tensors in (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs))

        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        if group["amsgrad"]:
            torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
            exp_avg_sqs = max_exp_avg_sqs
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denoms, [(1 - beta2**step) ** 0.5 for step in steps])
        torch._foreach_add_(denoms, group["eps"])
        torch._foreach_addcdiv_(params, exp_avgs, denoms, [-lr / (1 - beta1**step) for step in steps])


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019):
    :math:`\theta \leftarrow (1 - \eta\lambda_{\mathrm{wd}})\,\theta` before each Adam step.

    :class:`Adam` with ``decoupled_weight_decay=True`` always (also after
    ``load_state_dict``) and ``weight_decay=1e-2`` by default, as :class:`torch.optim.AdamW`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 *, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class AMSGrad(Adam):
    r"""AMSGrad (Reddi, Kale & Kumar, ICLR 2018): Adam whose scale never shrinks.

    Adam can forget a rare large gradient within :math:`1/(1-\beta_2)` steps and then
    take large steps again; Reddi et al. build convex problems on which it therefore
    fails to converge. AMSGrad divides by :math:`\sqrt{\max_{s \le t} v_s}` instead
    (torch then applies Adam's bias correction to it). This is :class:`Adam` with
    ``amsgrad=True`` by default; its state dict is that of ``torch.optim.Adam(amsgrad=True)``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=True,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=decoupled_weight_decay)
