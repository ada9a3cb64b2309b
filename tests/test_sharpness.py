"""course_lib.second_order.sharpness: the sharpness from HVPs, gradient descent that records it, the edge statistics."""

import math

import pytest
import torch

from course_lib import second_order
from course_lib.second_order.sharpness import (MLPProblem, SharpnessRun, edge_statistics, gd_with_sharpness,
                                               power_iteration, sharpness)

F64 = torch.float64


def _quadratic(eigenvalues, seed=0):
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T


def test_exported_from_second_order():
    assert {"sharpness", "power_iteration", "gd_with_sharpness", "edge_statistics"} <= set(second_order.__all__)


def test_sharpness_of_a_quadratic_is_its_top_eigenvalue():
    a = _quadratic([7.0, 3.0, -9.0, 0.5, 0.1])
    x = torch.randn(5, dtype=F64)
    value = sharpness(lambda z: 0.5 * z @ a @ z, x, iters=5, generator=torch.Generator().manual_seed(1))
    assert value == pytest.approx(7.0, rel=1e-10)  # Lanczos with n steps is exact; -9 is larger in magnitude


def test_lanczos_estimate_is_a_lower_bound_that_grows_with_the_products():
    # a 40-dim quadratic whose top eigenvalues are close: few products are far from converged
    eigenvalues = [10.0, 9.8, 9.5] + torch.linspace(-5.0, 9.0, 37).tolist()
    a = _quadratic(eigenvalues, seed=3)
    start = torch.randn(40, generator=torch.Generator().manual_seed(4), dtype=F64)
    estimates = [sharpness(lambda z: 0.5 * z @ a @ z, torch.zeros(40, dtype=F64), iters=k, v0=start)
                 for k in (1, 2, 3, 4, 6, 10, 20, 40)]
    scale = 1e-12 * 10.0  # round-off of the Ritz values, relative to the largest eigenvalue
    assert all(e <= 10.0 + scale for e in estimates)  # Cauchy interlacing: never above lambda_max
    assert all(b >= a_ - scale for a_, b in zip(estimates, estimates[1:]))  # nested Krylov spaces
    assert estimates[0] < 9.0 and estimates[-1] == pytest.approx(10.0, rel=1e-10)


def test_power_iteration_finds_the_largest_magnitude_with_the_closed_form_rate():
    a = _quadratic([-9.0, 7.0, 1.0])
    v0 = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    for k in (1, 2, 5, 30):
        value, v = power_iteration(lambda z: a @ z, v0, k)
        u = v0 / v0.norm()
        closed = (u @ torch.linalg.matrix_power(a, 2 * k - 1) @ u) / (u @ torch.linalg.matrix_power(a, 2 * k - 2) @ u)
        assert value == pytest.approx(closed.item(), rel=1e-9)
        assert v.norm().item() == pytest.approx(1.0)
    assert value == pytest.approx(-9.0, rel=1e-3)  # |7/9|^(2*29) ~ 5e-7 of the way left


def test_power_method_and_warm_start_on_a_network():
    problem = MLPProblem(torch.randn(20, 4, generator=torch.Generator().manual_seed(0), dtype=F64),
                         torch.randn(20, 3, generator=torch.Generator().manual_seed(1), dtype=F64), (4, 5, 3))
    params = problem.init()
    exact = torch.linalg.eigvalsh(second_order.hessian(problem.loss, params))[-1].item()
    n = sum(p.numel() for p in params)
    value, vector = sharpness(problem.loss, params, iters=n, generator=torch.Generator().manual_seed(0),
                              return_vector=True)
    assert value == pytest.approx(exact, rel=1e-8)
    warm = sharpness(problem.loss, params, iters=2, v0=vector)  # from the eigenvector: exact at once
    assert warm == pytest.approx(exact, rel=1e-8)
    cold = sharpness(problem.loss, params, iters=2, generator=torch.Generator().manual_seed(3))
    assert cold < exact * (1 - 1e-6)  # two Lanczos steps from a random start are not enough


def test_mlp_problem_loss_and_perturbation():
    X = torch.randn(7, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    Y = torch.randn(7, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    problem = MLPProblem(X, Y, (3, 4, 4, 2), out_scale=0.5, seed=4)
    w1, b1, w2, b2, w3, b3 = problem.init()
    out = torch.tanh(torch.tanh(X @ w1.T + b1) @ w2.T + b2) @ w3.T + b3
    assert problem.loss([w1, b1, w2, b2, w3, b3]).item() == pytest.approx(0.5 * ((out - Y) ** 2).sum(1).mean().item())
    base, moved = problem.init(), problem.init(1e-12)
    relative = max(((m - b).abs().max() / b.abs().max()).item() for b, m in zip(base, moved) if b.abs().max() > 0)
    assert 1e-14 < relative < 1e-11
    assert all(torch.equal(a, b) for a, b in zip(base, problem.init()))


def test_gd_on_a_quadratic_below_and_above_two_over_l():
    a = _quadratic([4.0, 1.0, 0.25])
    loss = lambda ps: 0.5 * ps[0] @ a @ ps[0]  # noqa: E731
    stable = gd_with_sharpness(loss, [torch.ones(3, dtype=F64)], 0.45, 200, every=50,
                               generator=torch.Generator().manual_seed(0))
    assert stable.diverged_at is None and len(stable.loss) == 201 and stable.sharpness_steps == [0, 50, 100, 150, 200]
    assert all(s == pytest.approx(4.0, rel=1e-9) for s in stable.sharpness)
    assert all(b <= a_ for a_, b in zip(stable.loss, stable.loss[1:]))
    assert edge_statistics(stable).reached_at is None  # 4 < 0.9 * 2 / 0.45
    unstable = gd_with_sharpness(loss, [torch.ones(3, dtype=F64)], 0.55, 500, every=10)
    assert unstable.diverged_at is not None  # |1 - 0.55 * 4| = 1.2 > 1


def test_edge_statistics_on_a_made_up_run():
    run = SharpnessRun(0.5, loss=[1.0] * 61, sharpness_steps=list(range(0, 61, 10)),
                       sharpness=[1.0, 2.0, 3.7, 4.4, 3.9, 4.1, 4.0])
    stats = edge_statistics(run, fraction=0.9)
    assert stats.reached_at == 20 and run.threshold == 4.0
    assert stats.median_ratio == pytest.approx(4.0 / 4.0) and stats.max_ratio == pytest.approx(1.1)
    assert edge_statistics(run, fraction=0.9, skip=100).median_ratio is None
    late = edge_statistics(run, fraction=0.9, after=45)  # steps 50 and 60 only
    assert late.reached_at == 20 and late.median_ratio == pytest.approx(4.05 / 4.0)


@pytest.mark.parametrize("call, message", [
    (lambda: power_iteration(lambda v: v, torch.zeros(3, dtype=F64), 3), "non-zero"),
    (lambda: power_iteration(lambda v: v, torch.ones(3, dtype=F64), 0), "iters"),
    (lambda: sharpness(lambda x: (x ** 2).sum(), torch.ones(3, dtype=F64), method="newton"), "method"),
    (lambda: sharpness(lambda x: (x ** 2).sum(), torch.ones(3, dtype=F64), v0=torch.ones(4, dtype=F64)), "v0"),
    (lambda: gd_with_sharpness(lambda ps: (ps[0] ** 2).sum(), [torch.ones(2, dtype=F64)], -0.1, 3), "lr"),
    (lambda: edge_statistics(SharpnessRun(0.1), fraction=0.0), "fraction"),
])
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_power_iteration_on_the_zero_operator():
    value, _ = power_iteration(lambda v: torch.zeros_like(v), torch.ones(2, dtype=F64), 4)
    assert value == 0.0 and not math.isnan(value)
