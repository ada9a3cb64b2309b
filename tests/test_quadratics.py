"""course_lib.quadratics: quadratic problems, gradient descent on them, and its rates."""

import math

import pytest
import torch

from course_lib.quadratics import (Quadratic, best_learning_rate, convergence_rate, critical_damping, divergence_step,
                                   gd_iterates_closed_form, gradient_descent, heavy_ball, heavy_ball_closed_form,
                                   ill_conditioned_quadratic, make_quadratic, max_stable_learning_rate,
                                   max_stable_momentum_lr, measured_rate, minibatch_sgd, minimizer, momentum_matrix,
                                   momentum_rate, momentum_rate_map, nesterov, nesterov_rate, noise_floor, optimal_momentum,
                                   optimal_momentum_rate, optimal_rate, steps_to_tolerance)


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


@pytest.mark.parametrize("replacement", [False, True])
def test_minibatch_sgd_with_momentum_is_torchs_sgd_on_the_same_batches(replacement):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    w0 = torch.randn(3, generator=g, dtype=torch.float64)
    lr, beta, batch_size, epochs = 0.05, 0.8, 4, 3
    ours = minibatch_sgd(X, y, w0, lr, batch_size, epochs, torch.Generator().manual_seed(7), momentum=beta,
                         replacement=replacement, return_path=True)
    # the same batches, drawn the same way, fed to torch.optim.SGD(momentum=beta)
    gen = torch.Generator().manual_seed(7)
    w = w0.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=beta)
    path = [w0.clone()]
    for _ in range(epochs):
        if replacement:
            batches = list(torch.randint(30, (math.ceil(30 / batch_size), batch_size), generator=gen))
        else:
            perm = torch.randperm(30, generator=gen)
            batches = [perm[i:i + batch_size] for i in range(0, 30, batch_size)]
        for idx in batches:
            optimizer.zero_grad()
            (0.5 * ((X[idx] @ w - y[idx]) ** 2).mean()).backward()
            optimizer.step()
            path.append(w.detach().clone())
    assert torch.allclose(ours, torch.stack(path), rtol=1e-12, atol=1e-12)
    # and momentum changes the path (the test could fail)
    plain = minibatch_sgd(X, y, w0, lr, batch_size, epochs, torch.Generator().manual_seed(7), replacement=replacement)
    assert not torch.allclose(ours[-1], plain, atol=1e-3)
    with pytest.raises(ValueError, match="momentum"):
        minibatch_sgd(X, y, w0, lr, batch_size, 1, torch.Generator(), momentum=1.0)


def _regression(n=60, d=3, seed=4):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.ones(d, dtype=torch.float64) + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y, torch.linalg.lstsq(X, y[:, None]).solution[:, 0]


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_noise_floor_runs_torchs_sgd_on_its_batches(momentum):
    X, y, w_star = _regression()
    n, steps, chains, batch, lr, burn_in = X.shape[0], 30, 2, 3, 0.05, 10
    got = noise_floor(X, y, lr, batch, steps, chains=chains, momentum=momentum, burn_in=burn_in,
                      generator=torch.Generator().manual_seed(1))
    idx = torch.randint(n, (steps, chains, batch), generator=torch.Generator().manual_seed(1))  # the same draws
    H = X.T @ X / n
    for c in range(chains):
        w = w_star.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
        excess = []
        for k in range(steps):
            optimizer.zero_grad()
            (0.5 * ((X[idx[k, c]] @ w - y[idx[k, c]]) ** 2).mean()).backward()
            optimizer.step()
            e = w.detach() - w_star
            excess.append(0.5 * e @ H @ e)
        assert got[c].item() == pytest.approx(torch.stack(excess[burn_in:]).mean().item(), rel=1e-10)
    assert got.shape == (chains,) and (got > 0).all()


def test_noise_floor_grows_like_the_effective_step():
    # first order in lr / (1 - beta): floor = lr / (1 - beta) * tr S / (4 B); 32 runs of 4000 steps leave a few
    # percent of sampling error, and lr / (1 - beta) <= 0.02 keeps the second-order term to a few percent too
    X, y, w_star = _regression(n=200)
    grads = X * (X @ w_star - y)[:, None]  # per-example gradients at w*
    trace_S = (grads ** 2).sum(1).mean().item()
    floors = {}
    for beta in (0.0, 0.5):
        runs = noise_floor(X, y, 0.01, 2, 4000, chains=32, momentum=beta, generator=torch.Generator().manual_seed(0))
        floors[beta] = runs.mean().item()
        assert floors[beta] == pytest.approx(0.01 / (1 - beta) * trace_S / (4 * 2), rel=0.15)
    assert floors[0.5] / floors[0.0] == pytest.approx(2.0, rel=0.15)


def test_noise_floor_rejects_bad_input():
    X, y, _ = _regression()
    for kwargs in (dict(momentum=1.0), dict(burn_in=30), dict(chains=0)):
        with pytest.raises(ValueError):
            noise_floor(X, y, 0.05, 1, 30, **kwargs)
    with pytest.raises(ValueError):
        noise_floor(X, y, 0.05, 0, 30)


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


# ---------------------------------------------------------------------------------------------
# momentum (notebook 02)


def torch_sgd_iterates(q, x0, steps, **hparams):
    """The parameters of torch.optim.SGD on the quadratic, after every step (row 0: x0)."""
    p = x0.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([p], **hparams)
    iterates = [x0.clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        q(p).backward()
        optimizer.step()
        iterates.append(p.detach().clone())
    return torch.stack(iterates)


def test_heavy_ball_is_torchs_momentum_and_its_closed_form():
    q = make_quadratic([0.1, 0.7, 2.0], seed=4, x_star=[1.0, -1.0, 0.5])
    x0 = torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64)
    for lr, beta in [(0.3, 0.5), (0.9, 0.9), (1.4, 0.2)]:
        path = heavy_ball(q.A, q.b, x0, lr, beta, 60)
        assert path.shape == (61, 3) and torch.equal(path[0], x0)
        assert torch.allclose(path, torch_sgd_iterates(q, x0, 60, lr=lr, momentum=beta), rtol=1e-11, atol=1e-12)
        assert torch.allclose(path, heavy_ball_closed_form(q.A, q.b, x0, lr, beta, 60), rtol=1e-10, atol=1e-11)
    assert torch.allclose(heavy_ball(q.A, q.b, x0, 0.4, 0.0, 20), gradient_descent(q.A, q.b, x0, 0.4, 20))


def test_nesterov_lookahead_points_are_torchs_nesterov():
    q = make_quadratic([0.05, 1.0], angle=0.3, x_star=[0.5, 0.5])
    x0 = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    for lr, beta in [(1.0, 0.9), (0.5, 0.6)]:
        looked = nesterov(q.A, q.b, x0, lr, beta, 80, lookahead=True)
        ref = torch_sgd_iterates(q, x0, 80, lr=lr, momentum=beta, nesterov=True)
        assert torch.allclose(looked, ref, rtol=1e-12, atol=1e-13)
        plain = nesterov(q.A, q.b, x0, lr, beta, 300)
        assert torch.equal(plain[0], x0) and not torch.allclose(plain[1:81], looked[1:])
        assert torch.allclose(plain[-1], q.minimizer, atol=1e-6)


def test_momentum_rate_is_the_spectral_radius_of_the_2x2_matrix():
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        lr = float(torch.rand(1, generator=g)) * 4
        beta = float(torch.rand(1, generator=g))
        lam = float(torch.rand(1, generator=g)) * 1.5
        radius = torch.linalg.eigvals(momentum_matrix(lr, beta, lam)).abs().max().item()
        assert momentum_rate(lr, beta, lam) == pytest.approx(radius, rel=1e-6, abs=1e-7)
    assert momentum_rate(0.5, 0.0, [1.0, 3.0]) == pytest.approx(convergence_rate(0.5, [1.0, 3.0]))
    assert momentum_rate(0.5, 0.81, 1.0) == pytest.approx(0.9)  # complex roots: sqrt(beta)


def test_momentum_rate_map_is_the_rate_on_a_grid():
    lam = torch.tensor([0.01, 0.3, 1.0], dtype=torch.float64)
    lrs = torch.linspace(0, 4, 9, dtype=torch.float64)
    betas = torch.linspace(0, 0.95, 7, dtype=torch.float64)
    grid = momentum_rate_map(lrs, betas, lam)
    assert grid.shape == (7, 9)
    for i, beta in enumerate(betas.tolist()):
        for j, lr in enumerate(lrs.tolist()):
            assert grid[i, j].item() == pytest.approx(momentum_rate(lr, beta, lam), abs=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.6, 0.9])
def test_stability_edge_is_two_plus_two_beta(beta):
    L = 2.0
    edge = max_stable_momentum_lr(L, beta)
    assert edge == pytest.approx((2 + 2 * beta) / L)
    assert momentum_rate(edge * 0.999, beta, [0.1, L]) < 1 < momentum_rate(edge * 1.001, beta, [0.1, L])


@pytest.mark.parametrize("mu, L", [(1.0, 100.0), (0.01, 1.0), (2.0, 2.0), (0.5, 8.0)])
def test_optimal_momentum_attains_the_sqrt_kappa_rate_and_nothing_beats_it(mu, L):
    lr, beta = optimal_momentum(mu, L)
    assert lr == pytest.approx((2 / (math.sqrt(L) + math.sqrt(mu))) ** 2)
    rate = optimal_momentum_rate(L / mu)
    assert momentum_rate(lr, beta, [mu, L]) == pytest.approx(rate, abs=1e-6)  # a double root: sqrt of roundoff
    grid = momentum_rate_map(torch.linspace(0.01, 4.2 / L, 300), torch.linspace(0, 0.99, 300),
                             torch.tensor([mu, L], dtype=torch.float64))
    assert grid.min().item() >= rate - 1e-6
    assert critical_damping(lr, mu) == pytest.approx(beta) and critical_damping(lr, L) == pytest.approx(beta)


def test_critical_damping_minimizes_the_rate_along_its_eigenvalue():
    for h in [0.01, 0.25, 0.8, 1.5, 3.0]:
        beta = critical_damping(h, 1.0)
        best = min(momentum_rate(h, float(b), 1.0) for b in torch.linspace(0, 0.999, 2000))
        assert momentum_rate(h, beta, 1.0) == pytest.approx(abs(1 - math.sqrt(h)), abs=1e-6)
        assert momentum_rate(h, beta, 1.0) <= best + 1e-6


def test_measured_rates_are_the_theory():
    q = ill_conditioned_quadratic(100.0)
    x0 = torch.tensor([-2.0, 1.6], dtype=torch.float64)
    lr, beta = optimal_momentum(q.mu, q.L)
    path = heavy_ball(q.A, q.b, x0, lr, beta, 200)
    assert measured_rate(path, q.minimizer, 20, power=1) == pytest.approx(optimal_momentum_rate(100.0), abs=1e-4)
    assert measured_rate(path, q.minimizer, 20) > optimal_momentum_rate(100.0) + 1e-3  # the k rho^k of a double root
    for lr, beta in [(1.0, 0.5), (2.5, 0.4), (0.3, 0.95)]:  # distinct roots: no correction needed
        path = heavy_ball(q.A, q.b, x0, lr, beta, 400)
        assert measured_rate(path, q.minimizer, 50) == pytest.approx(momentum_rate(lr, beta, q.eigenvalues), rel=2e-3)
    lr, beta = 1.0, (10 - 1) / (10 + 1)  # Nesterov's choice: critically damps mu, rate 1 - 1/sqrt(kappa)
    path = nesterov(q.A, q.b, x0, lr, beta, 400)
    assert nesterov_rate(lr, beta, q.eigenvalues) == pytest.approx(0.9, abs=1e-6)
    assert measured_rate(path, q.minimizer, 50, power=1) == pytest.approx(0.9, abs=1e-4)
    path = nesterov(q.A, q.b, x0, 1.0, 0.5, 600)
    assert measured_rate(path, q.minimizer, 50) == pytest.approx(nesterov_rate(1.0, 0.5, q.eigenvalues), rel=2e-3)
