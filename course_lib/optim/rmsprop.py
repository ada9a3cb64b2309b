r"""RMSprop: divide the gradient by a running average of its recent magnitude.

With gradient :math:`g_t = \nabla f(\theta_{t-1})` (negated when ``maximize``),
weight decay :math:`\lambda_{\mathrm{wd}}`, smoothing constant :math:`\alpha`, momentum
:math:`\beta`, learning rate :math:`\eta` and :math:`\epsilon` (all operations
elementwise):

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1} \\
    v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2 \qquad (v_0 = 0) \\
    \bar g_t &= \alpha\, \bar g_{t-1} + (1 - \alpha)\, g_t \qquad (\bar g_0 = 0;\ \text{centered only}) \\
    r_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centered)}
        \quad\text{or}\quad r_t = \sqrt{v_t} + \epsilon \\
    m_t &= \beta\, m_{t-1} + g_t / r_t \qquad (m_0 = 0) \\
    \theta_t &= \theta_{t-1} - \eta\, m_t

(with :math:`\beta = 0` this is :math:`\theta_t = \theta_{t-1} - \eta\, g_t / r_t`).
State: :math:`v` is ``square_avg``, :math:`\bar g` is ``grad_avg`` (only when
``centered``), :math:`m` is ``momentum_buffer`` (only when ``momentum > 0``).

Adagrad divides by the root of the *sum* of all past squared gradients, so its
steps only shrink. Hinton's fix: divide by the root of a leaky *average*
instead, which forgets old gradients after about :math:`1/(1-\alpha)` steps,
so the step size follows the current scale of the gradient. It is also
"Rprop for mini-batches": like Rprop the step depends mostly on the sign of
:math:`g`, but averaging :math:`g^2` over batches keeps it from being fooled by
one batch.

The centered variant (Graves, 2013) subtracts the squared running mean of the
gradient, so :math:`v_t - \bar g_t^2` estimates the gradient's *variance*:
coordinates with a steady gradient get larger steps than noisy ones of the
same magnitude. Graves uses it with momentum, as here.

Hyperparameters:

* ``lr`` (:math:`\eta`): the step size; since :math:`g/r` is roughly of size 1,
  it is close to the size of each coordinate's step.
* ``alpha`` (:math:`\alpha`): the smoothing constant of the averages (Hinton
  suggests 0.9; torch's default 0.99 averages over about 100 steps).
* ``eps`` (:math:`\epsilon`): added *after* the square root (TensorFlow and
  Graves put it inside); it bounds the step where :math:`v` is tiny.
* ``momentum`` (:math:`\beta`): heavy-ball momentum on the rescaled gradient.
* ``centered``: normalize by the estimated standard deviation instead of the RMS.
* ``weight_decay`` (:math:`\lambda_{\mathrm{wd}}`): an L2 penalty added to the gradient.

References: Tieleman & Hinton, "Lecture 6.5 - rmsprop: Divide the gradient by
a running average of its recent magnitude", COURSERA: Neural Networks for
Machine Learning (2012); Graves, "Generating Sequences With Recurrent Neural
Networks", arXiv:1308.0850 (2013), eqs. 38-41.
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, check_flags, check_lr, new_step_counter, real, store, to_scalar

__all__ = ["RMSprop"]


def _as_real(tensors):
    """Complex tensors as real views (real and imaginary parts are separate coordinates, as in torch)."""
    return [torch.view_as_real(t) if torch.is_complex(t) else t for t in tensors]


class RMSprop(Optimizer):
    """RMSprop with optional momentum, centering and weight decay.

    Same arguments (in torch's order, all positional), defaults, state (``step``,
    ``square_avg``, ``momentum_buffer``, ``grad_avg``) and errors as :class:`torch.optim.RMSprop`.
    """

    group_fallbacks = {"momentum": 0, "centered": False, "foreach": None, "maximize": False,
                       "differentiable": False, "capturable": False}

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False, differentiable=False):
        check_lr(lr)
        check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        check_flags(capturable=capturable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["square_avg"] = torch.zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param)

    def update(self, param, grad, state, group):
        alpha, momentum = group["alpha"], group["momentum"]
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        square_avg = state["square_avg"]
        grad_avg, buf = state.get("grad_avg"), state.get("momentum_buffer")
        if torch.is_complex(param):  # real and imaginary parts are separate coordinates
            param, grad, square_avg = map(torch.view_as_real, (param, grad, square_avg))
            grad_avg, buf = (None if t is None else torch.view_as_real(t) for t in (grad_avg, buf))
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg.lerp_(grad, 1 - alpha)
            scale = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            scale = square_avg.sqrt()
        scale.add_(group["eps"])
        lr = to_scalar(group["lr"])
        if momentum > 0:
            buf.mul_(momentum).addcdiv_(grad, scale)
            param.add_(buf, alpha=-lr)
        else:
            param.addcdiv_(grad, scale, value=-lr)

    def update_differentiable(self, param, grad, state, group):
        alpha, momentum, lr = group["alpha"], group["momentum"], to_scalar(group["lr"])
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        g = real(grad)
        square_avg = store(state, "square_avg", alpha * real(state["square_avg"]) + (1 - alpha) * g * g, param)
        if group["centered"]:
            grad_avg = store(state, "grad_avg", real(state["grad_avg"]).lerp(g, 1 - alpha), param)
            scale = (square_avg - grad_avg * grad_avg).sqrt() + group["eps"]
        else:
            scale = square_avg.sqrt() + group["eps"]
        direction = g / scale
        if momentum > 0:
            direction = store(state, "momentum_buffer", momentum * real(state["momentum_buffer"]) + direction, param)
        real(param).sub_(lr * direction)

    def update_foreach(self, group, params, grads, states):
        alpha, momentum = group["alpha"], group["momentum"]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        torch._foreach_add_([state["step"] for state in states], 1)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        params, grads = _as_real(params), _as_real(grads)
        square_avgs = _as_real(state["square_avg"] for state in states)
        torch._foreach_mul_(square_avgs, alpha)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
        if group["centered"]:
            grad_avgs = _as_real(state["grad_avg"] for state in states)
            torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
            scales = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
            torch._foreach_sqrt_(scales)
        else:
            scales = torch._foreach_sqrt(square_avgs)
        torch._foreach_add_(scales, group["eps"])
        if momentum > 0:
            bufs = _as_real(state["momentum_buffer"] for state in states)
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_addcdiv_(bufs, grads, scales)
            torch._foreach_add_(params, bufs, alpha=-to_scalar(group["lr"]))
        else:
            torch._foreach_addcdiv_(params, grads, scales, value=-to_scalar(group["lr"]))
