r"""Stochastic gradient descent, with momentum (heavy ball) and Nesterov momentum.

With gradient :math:`g_t = \nabla f(\theta_{t-1})` (negated when ``maximize``),
weight decay :math:`\lambda_{\mathrm{wd}}`, momentum :math:`\beta`, dampening :math:`\tau`:

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1} \\
    m_t &= \beta m_{t-1} + (1 - \tau) g_t \qquad (m_1 = g_1) \\
    d_t &= g_t + \beta m_t \ \text{(Nesterov)} \quad\text{or}\quad d_t = m_t \\
    \theta_t &= \theta_{t-1} - \eta\, d_t

(:math:`m_t` is ``state["momentum_buffer"]``.)

This is torch's form of momentum (the learning rate multiplies the buffer, it is
not inside it) and Sutskever et al.'s (ICML 2013) form of Nesterov, rewritten so
that it needs the gradient at the current point only.

Sparse gradients (``nn.Embedding(sparse=True)``) are taken as torch takes them: the
same operations on a sparse tensor, so only the rows that received a gradient move
(with momentum the buffer is then a sparse tensor too). ``differentiable=True``
makes the step differentiable (see :mod:`course_lib.optim._base`); ``fused=True``
runs the multi-tensor path.

References: Polyak, "Some methods of speeding up the convergence of iteration
methods" (1964); Nesterov (1983); Sutskever, Martens, Dahl & Hinton, "On the
importance of initialization and momentum in deep learning" (ICML 2013).
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, check_flags, check_lr, to_scalar

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and weight decay.

    Same arguments, defaults, state (``momentum_buffer``, only with momentum), errors and
    sparse-gradient support as :class:`torch.optim.SGD`.
    """

    group_fallbacks = {"nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
                       "fused": False}  # torch's SGD falls back to fused=False (its other optimizers: None)
    supports_sparse = True

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        check_lr(lr)
        check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        check(not nesterov or (momentum > 0 and dampening == 0),
              "Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        check_flags(foreach=foreach, differentiable=differentiable, fused=fused)

    def init_state(self, param, state, group):
        pass  # the momentum buffer is created at the first step, and only with momentum

    def _step(self, closure):
        for group in self.param_groups:
            if group.get("fused") and any(p.grad is not None and p.grad.is_sparse for p in group["params"]):
                raise RuntimeError("`_fused_sgd` does not support sparse gradients")  # torch's words
        return super()._step(closure)

    def _momentum_direction(self, grad, state, group, differentiable=False):
        """The heavy-ball buffer (created at the first step as the gradient itself) and the step direction."""
        momentum = group["momentum"]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = torch.clone(grad).detach()
        elif differentiable:
            buf = state["momentum_buffer"] = buf * momentum + (1 - group["dampening"]) * grad
        else:
            buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
        if group["nesterov"]:
            return grad.add(buf, alpha=momentum)
        return buf

    def update(self, param, grad, state, group):
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        if group["momentum"] != 0:
            grad = self._momentum_direction(grad, state, group)
        param.add_(grad, alpha=-to_scalar(group["lr"]))

    def update_differentiable(self, param, grad, state, group):
        lr, weight_decay = to_scalar(group["lr"]), group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param.clone()
        if group["momentum"] != 0:
            grad = self._momentum_direction(grad, state, group, differentiable=True)
        if torch.is_tensor(lr) and lr.requires_grad:
            param.addcmul_(grad, lr, value=-1)
        else:
            param.add_(grad, alpha=-lr)

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
        torch._foreach_add_(params, grads, alpha=-to_scalar(group["lr"]))
