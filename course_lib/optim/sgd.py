r"""Stochastic gradient descent, with momentum (heavy ball) and Nesterov momentum.

With gradient :math:`g_t = \nabla f(\theta_{t-1})` (negated when ``maximize``),
weight decay :math:`\lambda`, momentum :math:`\mu`, dampening :math:`\tau`:

.. math::

    g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
    b_t &= \mu b_{t-1} + (1 - \tau) g_t \qquad (b_1 = g_1) \\
    d_t &= g_t + \mu b_t \ \text{(Nesterov)} \quad\text{or}\quad d_t = b_t \\
    \theta_t &= \theta_{t-1} - \eta\, d_t

This is torch's form of momentum (the learning rate multiplies the buffer, it is
not inside it) and Sutskever et al.'s (ICML 2013) form of Nesterov, rewritten so
that it needs the gradient at the current point only.

References: Polyak, "Some methods of speeding up the convergence of iteration
methods" (1964); Nesterov (1983); Sutskever, Martens, Dahl & Hinton, "On the
importance of initialization and momentum in deep learning" (ICML 2013).
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and weight decay.

    Same arguments, defaults, state (``momentum_buffer``) and errors as
    :class:`torch.optim.SGD`.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None):
        check(lr >= 0.0, f"Invalid learning rate: {lr}")
        check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check(not nesterov or (momentum > 0 and dampening == 0),
              "Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def update(self, param, grad, state, group):
        momentum = group["momentum"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # the first step starts the buffer at the gradient itself
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])

    def update_foreach(self, group, params, grads, states):
        momentum = group["momentum"]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        if momentum != 0:
            old_bufs, their_grads = [], []
            for grad, state in zip(grads, states):
                if state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = grad.detach().clone()
                else:
                    old_bufs.append(state["momentum_buffer"])
                    their_grads.append(grad)
            if old_bufs:
                torch._foreach_mul_(old_bufs, momentum)
                torch._foreach_add_(old_bufs, their_grads, alpha=1 - group["dampening"])
            bufs = [state["momentum_buffer"] for state in states]
            grads = torch._foreach_add(grads, bufs, alpha=momentum) if group["nesterov"] else bufs
        torch._foreach_add_(params, grads, alpha=-group["lr"])
