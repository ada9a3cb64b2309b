r"""Adagrad: every coordinate gets its own learning rate, shrinking with the sum of its squared gradients.

With gradient :math:`g_t = \nabla f(\theta_{t-1})` (negated when ``maximize``),
weight decay :math:`\lambda_{\mathrm{wd}}`, learning rate :math:`\eta`, learning-rate decay
``lr_decay``, initial accumulator value :math:`\tau` and :math:`\epsilon`
(all operations elementwise):

.. math::

    g_t &\leftarrow g_t + \lambda_{\mathrm{wd}} \theta_{t-1} \\
    s_t &= s_{t-1} + g_t \odot g_t \qquad (s_0 = \tau) \\
    \eta_t &= \frac{\eta}{1 + (t - 1)\cdot\texttt{lr\_decay}} \\
    \theta_t &= \theta_{t-1} - \eta_t \, \frac{g_t}{\sqrt{s_t} + \epsilon}

(:math:`s_t` is ``state["sum"]``.) Coordinate :math:`i` moves with the step size :math:`\eta_t / \sqrt{s_{t,i}}`:
a coordinate whose gradients are large or frequent takes small steps, a rarely
seen one (a rare word's embedding, a rare feature) keeps a large one. This is
the diagonal version of the paper's method; the full-matrix version preconditions by
the inverse square root of the sum of outer products :math:`\sum_s g_s g_s^\top`; the
paper proves regret bounds for both.

Hyperparameters:

* ``lr`` (:math:`\eta`): the global step size, divided coordinate by coordinate
  by :math:`\sqrt{s_t}`; a constant gradient gives steps of size
  :math:`\eta/\sqrt{t}`, the rate the convex theory asks for.
* ``lr_decay``: an extra :math:`1/t`-style decay of
  :math:`\eta` (0, the default, turns it off).
* ``initial_accumulator_value`` (:math:`\tau`): where :math:`s` starts. With
  :math:`\tau = 0` the first step of every coordinate is :math:`\pm\eta`
  whatever the gradient's size; :math:`\tau > 0` damps the steps while the
  squared gradients seen so far are small next to :math:`\tau`.
* ``eps`` (:math:`\epsilon`): keeps the division finite where :math:`s` is 0.
* ``weight_decay`` (:math:`\lambda_{\mathrm{wd}}`): an L2 penalty added to the gradient, so
  it is rescaled by :math:`1/\sqrt{s_t}` like the rest of the gradient.

Since :math:`s_t` only grows, the steps go to zero: right for convex problems,
often too early in deep learning. RMSprop and Adadelta replace the sum by a
leaky average to fix exactly this.

Sparse gradients (``nn.Embedding(sparse=True)``) are handled as torch handles them:
only the coordinates present in the gradient update their accumulator and move.

Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
Learning and Stochastic Optimization", Journal of Machine Learning Research 12
(2011), 2121-2159.
"""

from __future__ import annotations

import torch

from ._base import Optimizer, check, check_flags, check_lr, new_step_counter, to_scalar

__all__ = ["Adagrad"]


def _as_real(tensors):
    """Complex tensors as real views (real and imaginary parts are separate coordinates, as in torch)."""
    return [torch.view_as_real(t) if torch.is_complex(t) else t for t in tensors]


class Adagrad(Optimizer):
    """Adagrad with learning-rate decay, weight decay and an initial accumulator value.

    Same arguments, defaults, state (``step``, ``sum``), errors and sparse-gradient support as
    :class:`torch.optim.Adagrad`. As in torch, the state is created in the constructor, for
    every parameter, not at the first step.
    """

    group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}
    supports_sparse = True

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_lr(lr)
        check(lr_decay >= 0.0, f"Invalid lr_decay value: {lr_decay}")
        check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check(initial_accumulator_value >= 0.0,
              f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        foreach=foreach, maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        check_flags(foreach=foreach, differentiable=differentiable, fused=fused)
        for group in self.param_groups:
            for param in group["params"]:
                self.init_state(param, self.state[param], group)

    def init_state(self, param, state, group):
        # torch starts every accumulator at the constructor's value, even in a
        # param group that sets its own initial_accumulator_value; so do we.
        initial = self.defaults["initial_accumulator_value"]
        if torch.is_complex(param):
            initial = complex(initial, initial)
        state["step"] = new_step_counter(bool(group.get("fused")), param.device)
        state["sum"] = torch.full_like(param, initial, memory_format=torch.preserve_format)

    def share_memory(self):
        """Move every ``sum`` to shared memory (for Hogwild-style multiprocess training), as torch does."""
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param]["sum"].share_memory_()

    @staticmethod
    def _sparse_update(param, grad, sum_of_squares, lr, eps):
        """Only the coordinates that the (coalesced) sparse gradient holds change."""
        grad = grad.coalesce()  # the update is not linear in the gradient: one value per index
        indices, values, size = grad._indices(), grad._values(), grad.size()
        sum_of_squares.add_(torch.sparse_coo_tensor(indices, values.pow(2), size, check_invariants=False))
        std_values = sum_of_squares.sparse_mask(grad)._values().sqrt_().add_(eps)
        param.add_(torch.sparse_coo_tensor(indices, values / std_values, size, check_invariants=False), alpha=-lr)

    def _prepare(self, param, grad, state, group):
        state["step"] += 1
        step = state["step"].item()
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            if grad.is_sparse:
                raise RuntimeError("weight_decay option is not compatible with sparse gradients")
            grad = grad.add(param, alpha=group["weight_decay"])
        return grad, to_scalar(group["lr"]) / (1 + (step - 1) * group["lr_decay"])

    def update(self, param, grad, state, group):
        grad, lr = self._prepare(param, grad, state, group)
        sum_of_squares = state["sum"]
        if grad.is_sparse:
            return self._sparse_update(param, grad, sum_of_squares, lr, group["eps"])
        if torch.is_complex(param):  # real and imaginary parts are separate coordinates
            param, grad, sum_of_squares = map(torch.view_as_real, (param, grad, sum_of_squares))
        sum_of_squares.addcmul_(grad, grad, value=1)
        std = sum_of_squares.sqrt().add_(group["eps"])
        param.addcdiv_(grad, std, value=-lr)

    def update_differentiable(self, param, grad, state, group):
        grad, lr = self._prepare(param, grad, state, group)
        if grad.is_sparse:
            return self._sparse_update(param, grad, state["sum"], lr, group["eps"])
        is_complex = torch.is_complex(param)
        real = torch.view_as_real if is_complex else (lambda t: t)
        sum_of_squares = real(state["sum"]) + real(grad) * real(grad)
        state["sum"] = torch.view_as_complex(sum_of_squares) if is_complex else sum_of_squares
        real(param).sub_(lr * real(grad) / (sum_of_squares.sqrt() + group["eps"]))

    def update_foreach(self, group, params, grads, states):
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1)
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        lr = to_scalar(group["lr"])
        minus_lrs = [-lr / (1 + (step.item() - 1) * group["lr_decay"]) for step in steps]
        params, grads = _as_real(params), _as_real(grads)
        sums = _as_real(state["sum"] for state in states)
        torch._foreach_addcmul_(sums, grads, grads, value=1)
        stds = torch._foreach_sqrt(sums)
        torch._foreach_add_(stds, group["eps"])
        numerators = torch._foreach_mul(grads, minus_lrs)  # torch's order: (-lr g) / std
        torch._foreach_addcdiv_(params, numerators, stds)
