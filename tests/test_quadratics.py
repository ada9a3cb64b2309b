"""course_lib.quadratics: quadratic problems, gradient descent on them, and its rates."""

import math

import pytest
import torch

from course_lib.quadratics import (Quadratic, best_learning_rate, convergence_rate, divergence_step,
                                   gd_iterates_closed_form, gradient_descent, ill_conditioned_quadratic,
                                   make_quadratic, max_stable_learning_rate, measured_rate, minibatch_sgd,
                                   minimizer, optimal_rate, steps_to_tolerance)


def reference_minibatch_sgd(X, y, w0, lr, batch_size, epochs, generator):
    """The rule of exercise 01.4, written as plainly as possible."""
    n = X.shape[0]
    w = w0.clone()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            w = w - lr * X[idx].T @ (X[idx] @ w - y[idx]) / len(idx)
    return w


@pytest.mark.parametrize("eigenvalues", [[1.0, 10.0], [0.5, 2.0, 3.0], [1.0, 1.0, 4.0, 9.0, 100.0]])
def test_make_quadratic_has_the_eigenvalues_and_minimizer(eigenvalues):
    x_star = torch.arange(len(eigenvalues), dtype=torch.float64) - 1.0
    q = make_quadratic(eigenvalues, seed=3, x_star=x_star)
    assert torch.allclose(q.eigenvalues, torch.tensor(sorted(eigenvalues), dtype=torch.float64))
    assert torch.allclose(q.A, q.A.T)
    assert torch.allclose(q.minimizer, x_star)
    assert torch.allclose(q.grad(x_star), torch.zeros_like(x_star), atol=1e-12)
    assert q.mu == pytest.approx(min(eigenvalues)) and q.L == pytest.approx(max(eigenvalues))
    assert q.condition_number == pytest.approx(max(eigenvalues) / min(eigenvalues))


def test_quadratic_is_batched_and_its_gradient_is_autograds():
    q = make_quadratic([0.3, 2.0], angle=0.4, x_star=[1.0, -2.0])
    points = torch.randn(4, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values = q(points)
    assert values.shape == (4, 5)
    one = points[2, 3].clone().requires_grad_(True)
    expected = 0.5 * one @ q.A @ one - q.b @ one
    assert values[2, 3].item() == pytest.approx(expected.item())
    expected.backward()
    assert torch.allclose(q.grad(points[2, 3]), one.grad)
    assert q.min_value == pytest.approx(-0.5 * float(q.b @ q.minimizer))


def test_make_quadratic_rejects_bad_eigenvalues_and_angles():
    with pytest.raises(ValueError):
        make_quadratic([1.0, -1.0])
    with pytest.raises(ValueError):
        make_quadratic([1.0, 2.0, 3.0], angle=0.1)
    with pytest.raises(ValueError):
        ill_conditioned_quadratic(0.5)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_ill_conditioned_quadratic(n):
    q = ill_conditioned_quadratic(50.0, L=2.0, n=n)
    assert q.L == pytest.approx(2.0)
    assert q.condition_number == pytest.approx(50.0 if n > 1 else 1.0)
    assert q.dim == n


def test_gradient_descent_matches_the_closed_form():
    q = make_quadratic([0.2, 1.0, 3.0], seed=1, x_star=[1.0, 2.0, -1.0])
    x0 = torch.tensor([0.5, -1.0, 4.0], dtype=torch.float64)
    for lr in [0.05, 0.3, 0.6, 0.7]:  # 0.7 > 2/L: diverges, and still matches
        loop = gradient_descent(q.A, q.b, x0, lr, 30)
        closed = gd_iterates_closed_form(q.A, q.b, x0, lr, 30)
        assert loop.shape == (31, 3)
        assert torch.equal(loop[0], x0)
        assert torch.allclose(loop, closed, rtol=1e-9, atol=1e-9)


def test_gradient_descent_does_not_modify_x0():
    q = make_quadratic([1.0, 2.0])
    x0 = torch.tensor([1.0, 1.0], dtype=torch.float64)
    gradient_descent(q.A, q.b, x0, 0.1, 5)
    assert torch.equal(x0, torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_rates():
    lam = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    assert convergence_rate(0.5, lam) == pytest.approx(0.95)
    assert convergence_rate(2.5, lam) == pytest.approx(1.5)
    assert max_stable_learning_rate(4.0) == 0.5
    best = best_learning_rate(0.1, 1.0)
    assert best == pytest.approx(2 / 1.1)
    assert convergence_rate(best, lam) == pytest.approx(optimal_rate(10.0))
    grid = torch.linspace(0.01, 2.0, 2000)
    assert min(convergence_rate(float(lr), lam) for lr in grid) >= optimal_rate(10.0) - 1e-12
    assert optimal_rate(1.0) == 0.0


def test_measured_rate_is_the_theory():
    q = ill_conditioned_quadratic(20.0, L=1.0)
    x0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    for lr in [0.3, best_learning_rate(q.mu, q.L), 1.5, 2.1]:
        iterates = gradient_descent(q.A, q.b, x0, lr, 200)
        assert measured_rate(iterates, q.minimizer, window=20) == pytest.approx(convergence_rate(lr, q.eigenvalues),
                                                                                rel=1e-6)


def test_steps_to_tolerance_and_divergence_step():
    assert steps_to_tolerance(0.5, 1e-3) == 10
    assert steps_to_tolerance(1.0) == math.inf
    assert steps_to_tolerance(0.0) == 1
    assert divergence_step(torch.tensor([1.0, 2.0, 3.0])) is None
    assert divergence_step(torch.tensor([1.0, float("inf"), 3.0])) == 1
    assert divergence_step(torch.tensor([1.0, 2.0, float("nan")])) == 2
    assert divergence_step(torch.tensor([1.0, 50.0, 3.0]), threshold=10) == 1
    assert divergence_step(torch.tensor([[1.0, 1.0], [1.0, 1e12]])) == 1


@pytest.mark.parametrize("batch_size", [1, 7, 32, 100])
def test_minibatch_sgd_follows_the_rule(batch_size):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(100, 4, generator=g, dtype=torch.float64)
    y = torch.randn(100, generator=g, dtype=torch.float64)
    w0 = torch.randn(4, generator=g, dtype=torch.float64)
    ours = minibatch_sgd(X, y, w0, 0.05, batch_size, 3, torch.Generator().manual_seed(5))
    ref = reference_minibatch_sgd(X, y, w0, 0.05, batch_size, 3, torch.Generator().manual_seed(5))
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)
    path = minibatch_sgd(X, y, w0, 0.05, batch_size, 3, torch.Generator().manual_seed(5), return_path=True)
    assert path.shape == (3 * math.ceil(100 / batch_size) + 1, 4)
    assert torch.equal(path[0], w0) and torch.allclose(path[-1], ours, rtol=1e-14, atol=1e-14)


def test_full_batch_sgd_is_gradient_descent():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(50, 3, generator=g, dtype=torch.float64)
    y = torch.randn(50, generator=g, dtype=torch.float64)
    w0 = torch.zeros(3, dtype=torch.float64)
    sgd = minibatch_sgd(X, y, w0, 0.1, 50, 20, torch.Generator().manual_seed(0))
    gd = gradient_descent(X.T @ X / 50, X.T @ y / 50, w0, 0.1, 20)[-1]
    assert torch.allclose(sgd, gd, rtol=1e-12, atol=1e-12)


def test_minibatch_sgd_schedule_and_replacement():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    w0 = torch.zeros(3, dtype=torch.float64)
    still = minibatch_sgd(X, y, w0, 0.1, 4, 2, torch.Generator().manual_seed(0), lr_schedule=lambda k: 0.0)
    assert torch.equal(still, w0)
    path = minibatch_sgd(X, y, w0, 0.1, 8, 3, torch.Generator().manual_seed(0), replacement=True, return_path=True)
    assert path.shape == (3 * 5 + 1, 3)
    w = minibatch_sgd(X, y, w0, 0.1, 4, 200, torch.Generator().manual_seed(0))
    assert torch.allclose(w, torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64), atol=1e-6)  # no noise: exact fit
    with pytest.raises(ValueError):
        minibatch_sgd(X, y, w0, 0.1, 0, 1, torch.Generator())


def test_minimizer_solves_the_system():
    A = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(A @ minimizer(A, b), b)
    assert Quadratic(A, b).to(torch.float32).A.dtype == torch.float32


def test_quadratics_on_the_device(device):
    q = ill_conditioned_quadratic(10.0, device=device)
    x0 = torch.ones(2, dtype=torch.float64, device=device)
    iterates = gradient_descent(q.A, q.b, x0, 0.5, 10)
    assert iterates.device.type == device.type
    assert torch.allclose(iterates.cpu(), gd_iterates_closed_form(q.A, q.b, x0, 0.5, 10).cpu())
    X = torch.randn(20, 2, dtype=torch.float64, device=device)
    w = minibatch_sgd(X, X @ x0, x0 * 0, 0.1, 5, 2, torch.Generator().manual_seed(0))
    assert w.device.type == device.type
