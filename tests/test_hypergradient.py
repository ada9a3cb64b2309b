"""Hypergradients d f(theta_k) / d lr through k differentiable steps of course_lib.optim.

With ``differentiable=True`` and a tensor learning rate that requires grad, autograd differentiates the
loss after ``k`` optimizer steps with respect to the learning rate (the hypergradient of Baydin et al.,
ICLR 2018). The course's optimizers must give the same hypergradient as torch.optim's differentiable
versions and as a central finite difference of the loss, in float64.

Tolerances:

* course vs torch.optim: both run the same float64 operations, so they differ only by the order of a few
  sums. Each of the ``k = 20`` steps rounds at ``eps = 2.2e-16`` relative; the backward pass multiplies
  ``k`` Jacobians of the step (of norm at most about 1 here: ``lr * L <= 1`` for SGD, bounded steps for
  Adam), so the relative difference stays below ``k * D * eps`` times a cancellation factor (sums of terms
  up to ``|f| / |df/dlr| ~ 10`` times the result): ``20 * 10 * 2.2e-16 * 10 ~ 5e-13``. ``rtol = 1e-10``
  leaves a factor 200 of margin and still fails for any wrong term (those change the result at O(1)).
* finite difference: the central difference with step ``h`` has truncation error ``h^2 |f'''| / 6`` and
  round-off error about ``2 eps |f| / h`` (two losses each rounded to ``eps |f|``, divided by ``2h``).
  The test estimates ``|f'''|`` by a third difference and allows 10 times the sum.
"""

from __future__ import annotations

import pytest
import torch

from course_lib import optim

F64 = torch.float64
EPS = torch.finfo(F64).eps
STEPS = 20


def quadratic(seed=0, dim=10):
    """A, b and theta_0 of f(theta) = 1/2 theta^T A theta - b^T theta, eigenvalues of A from 0.1 to 1."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=F64))
    a = q @ torch.diag(torch.logspace(-1, 0, dim, dtype=F64)) @ q.T
    return a, torch.randn(dim, generator=gen, dtype=F64), torch.randn(dim, generator=gen, dtype=F64)


A, B, THETA0 = quadratic()


def f(theta):
    return 0.5 * theta @ A @ theta - B @ theta


def loss_and_hypergradient(opt_class, lr, steps=STEPS, **kwargs):
    """f(theta_steps) and d f(theta_steps) / d lr by autograd through `steps` differentiable steps."""
    eta = torch.tensor(lr, dtype=F64, requires_grad=True)
    theta = THETA0.clone().requires_grad_(True).clone()  # a non-leaf copy: the optimizer updates it in place
    opt = opt_class([theta], lr=eta, differentiable=True, **kwargs)
    for _ in range(steps):
        theta.grad = torch.autograd.grad(f(theta), theta, create_graph=True)[0]
        opt.step()
    loss = f(theta)
    return loss.item(), torch.autograd.grad(loss, eta)[0].item()


def loss_at(opt_class, lr, **kwargs):
    return loss_and_hypergradient(opt_class, lr, **kwargs)[0]


def central_difference(opt_class, lr, h=1e-5, **kwargs):
    """(f(lr + h) - f(lr - h)) / 2h and its error bound h^2 |f'''| / 6 + 2 eps |f| / h (see the module docstring)."""
    value = (loss_at(opt_class, lr + h, **kwargs) - loss_at(opt_class, lr - h, **kwargs)) / (2 * h)
    s = 1e-3  # third derivative by the central third difference (its own error is O(s^2), negligible here)
    third = (loss_at(opt_class, lr + 2 * s, **kwargs) - 2 * loss_at(opt_class, lr + s, **kwargs)
             + 2 * loss_at(opt_class, lr - s, **kwargs) - loss_at(opt_class, lr - 2 * s, **kwargs)) / (2 * s**3)
    bound = h**2 * abs(third) / 6 + 2 * EPS * abs(loss_at(opt_class, lr, **kwargs)) / h
    return value, bound


CASES = [  # (name, course class, torch class, lr, keywords)
    ("SGD", optim.SGD, torch.optim.SGD, 0.5, {}),
    ("SGD weight decay", optim.SGD, torch.optim.SGD, 0.5, {"weight_decay": 0.1}),
    ("Adam", optim.Adam, torch.optim.Adam, 0.05, {}),
    ("AdamW", optim.AdamW, torch.optim.AdamW, 0.05, {"weight_decay": 0.1}),
]


@pytest.mark.parametrize("name, ours, theirs, lr, kwargs", CASES, ids=[case[0] for case in CASES])
def test_hypergradient_matches_torch(name, ours, theirs, lr, kwargs):
    loss, hyper = loss_and_hypergradient(ours, lr, **kwargs)
    loss_torch, hyper_torch = loss_and_hypergradient(theirs, lr, **kwargs)
    assert hyper != 0.0
    assert loss == pytest.approx(loss_torch, rel=1e-10)
    assert hyper == pytest.approx(hyper_torch, rel=1e-10)


# torch.optim's differentiable SGD with momentum and Adam with amsgrad modify a tensor that autograd saved
# for the tensor learning rate (an in-place version error on backward, torch 2.13): finite difference only.
FD_ONLY = [
    ("SGD momentum", optim.SGD, None, 0.1, {"momentum": 0.9}),
    ("SGD Nesterov", optim.SGD, None, 0.1, {"momentum": 0.9, "nesterov": True}),
    ("Adam amsgrad", optim.Adam, None, 0.05, {"amsgrad": True}),
]


@pytest.mark.parametrize("name, ours, theirs, lr, kwargs", CASES + FD_ONLY, ids=[case[0] for case in CASES + FD_ONLY])
def test_hypergradient_matches_finite_difference(name, ours, theirs, lr, kwargs):
    _, hyper = loss_and_hypergradient(ours, lr, **kwargs)
    value, bound = central_difference(ours, lr, **kwargs)
    assert abs(value - hyper) <= 10 * bound, (value, hyper, bound)
    assert bound < 1e-6 * abs(hyper)  # the check is sharp enough to catch a wrong hypergradient


def test_one_step_hypergradient_is_minus_gradient_product():
    """Baydin et al.'s one-step hypergradient: d f(theta_0 - lr g_0) / d lr = -g_1 . g_0."""
    lr = 0.5
    _, hyper = loss_and_hypergradient(optim.SGD, lr, steps=1)
    g0 = A @ THETA0 - B
    g1 = A @ (THETA0 - lr * g0) - B
    expected = -(g1 @ g0).item()
    # round-off: a few dot products of length 10 with terms up to |g0|^2
    assert hyper == pytest.approx(expected, abs=100 * EPS * (g0 @ g0).item())
