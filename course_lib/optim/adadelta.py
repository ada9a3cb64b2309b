r"""Adadelta: a step whose size is the RMS of recent steps over the RMS of recent gradients.

With gradient :math:`g_t = \nabla f(\theta_{t-1})` (negated when ``maximize``),
weight decay :math:`\lambda_{\mathrm{wd}}`, decay rate :math:`\rho`, :math:`\epsilon` and
learning rate :math:`\eta` (all operations elementwise):

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1} \\
    v_t &= \rho\, v_{t-1} + (1 - \rho)\, g_t^2 \qquad (v_0 = 0) \\
    \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
    u_t &= \rho\, u_{t-1} + (1 - \rho)\, \Delta_t^2 \qquad (u_0 = 0) \\
    \theta_t &= \theta_{t-1} - \eta\, \Delta_t

:math:`v` (state ``square_avg``) is a leaky average of squared gradients, as in
RMSprop; :math:`u` (state ``acc_delta``) is the same kind of average of squared
steps. :math:`\sqrt{v_t + \epsilon}` and :math:`\sqrt{u_{t-1} + \epsilon}` are
Zeiler's :math:`\mathrm{RMS}[g]_t` and :math:`\mathrm{RMS}[\Delta x]_{t-1}`.

**The units argument.** If :math:`\theta` is measured in some unit and the loss
has none, the gradient has units of :math:`1/\theta`. SGD's step
:math:`\eta g` therefore has the wrong units unless :math:`\eta` carries
units of :math:`\theta^2`; Adagrad's and RMSprop's :math:`g/\sqrt{v}` has no
units at all, so their :math:`\eta` must carry units of :math:`\theta`. A Newton
step :math:`H^{-1} g` has the right units by construction, since
:math:`\frac{\partial f/\partial\theta}{\partial^2 f/\partial\theta^2}` is in
units of :math:`\theta`. Zeiler rewrites the (diagonal) inverse curvature as
:math:`\frac{1}{\partial^2 f/\partial\theta^2} = \frac{\Delta\theta}{\partial f/\partial\theta}`
and estimates both sides by RMS averages: numerator :math:`\mathrm{RMS}[\Delta\theta]`,
denominator :math:`\mathrm{RMS}[g]`. Multiplying by :math:`g_t` gives a step in
units of :math:`\theta` with no learning rate to tune. :math:`\Delta_t` is not known
when it is needed, so the numerator lags one step (:math:`u_{t-1}`), which
assumes the curvature changes slowly.

Hyperparameters:

* ``lr`` (:math:`\eta`, default 1.0): not in the paper (1.0 is the paper's
  method); torch's extra factor on the step. :math:`u` averages the unscaled
  :math:`\Delta_t`, so ``lr`` does not feed back into later step sizes.
* ``rho`` (:math:`\rho`): the decay of both averages, a window of about
  :math:`1/(1-\rho)` steps (paper: 0.95; torch: 0.9).
* ``eps`` (:math:`\epsilon`): inside both square roots. Besides avoiding 0/0 it
  starts the method: with :math:`u_0 = 0` the first steps have size about
  :math:`\sqrt{\epsilon}/\mathrm{RMS}[g]`, and :math:`u` grows from there.
* ``weight_decay`` (:math:`\lambda_{\mathrm{wd}}`): an L2 penalty added to the gradient.

Reference: Zeiler, "ADADELTA: An Adaptive Learning Rate Method",
arXiv:1212.5701 (2012).
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, check_flags, check_lr, new_step_counter, real, store, to_scalar

__all__ = ["Adadelta"]


def _as_real(tensors):
    """Complex tensors as real views (real and imaginary parts are separate coordinates, as in torch)."""
    return [torch.view_as_real(t) if torch.is_complex(t) else t for t in tensors]


class Adadelta(Optimizer):
    """Adadelta with weight decay and torch's extra learning rate.

    Same arguments, defaults, state (``step``, ``square_avg``, ``acc_delta``) and
    errors as :class:`torch.optim.Adadelta`.
    """

    group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        check_lr(lr)
        check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check_flags(capturable=capturable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["square_avg"] = torch.zeros_like(param)
        state["acc_delta"] = torch.zeros_like(param)

    def update(self, param, grad, state, group):
        rho, eps = group["rho"], group["eps"]
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        if torch.is_complex(param):  # real and imaginary parts are separate coordinates
            param, grad, square_avg, acc_delta = map(torch.view_as_real,
                                                     (param, grad, square_avg, acc_delta))
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        rms_grad = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_()  # RMS of the previous steps ...
        delta.div_(rms_grad).mul_(grad)  # ... over RMS of the gradients, times the gradient
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-to_scalar(group["lr"]))

    def update_differentiable(self, param, grad, state, group):
        rho, eps, lr = group["rho"], group["eps"], to_scalar(group["lr"])
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        g = real(grad)
        square_avg = store(state, "square_avg", rho * real(state["square_avg"]) + (1 - rho) * g * g, param)
        acc_delta = real(state["acc_delta"])
        delta = (acc_delta + eps).sqrt() / (square_avg + eps).sqrt() * g
        store(state, "acc_delta", rho * acc_delta + (1 - rho) * delta * delta, param)
        real(param).sub_(lr * delta)

    def update_foreach(self, group, params, grads, states):
        rho, eps = group["rho"], group["eps"]
        torch._foreach_add_([state["step"] for state in states], 1)
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        params, grads = _as_real(params), _as_real(grads)
        square_avgs = _as_real(state["square_avg"] for state in states)
        acc_deltas = _as_real(state["acc_delta"] for state in states)
        torch._foreach_mul_(square_avgs, rho)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - rho)
        rms_grads = torch._foreach_add(square_avgs, eps)
        torch._foreach_sqrt_(rms_grads)
        deltas = torch._foreach_add(acc_deltas, eps)
        torch._foreach_sqrt_(deltas)
        torch._foreach_div_(deltas, rms_grads)
        torch._foreach_mul_(deltas, grads)
        torch._foreach_mul_(acc_deltas, rho)
        torch._foreach_addcmul_(acc_deltas, deltas, deltas, value=1 - rho)
        torch._foreach_add_(params, deltas, alpha=-to_scalar(group["lr"]))
