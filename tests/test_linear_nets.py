"""course_lib.linear_nets against the identities of notebook 07 (all in float64)."""

import math

import pytest
import torch

from course_lib import linear_nets as ln
from course_lib import saddles

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=gen(seed), dtype=F64)


# ---------------------------------------------------------------------------------------------- the network

def test_end_to_end_is_last_layer_first_and_checks_shapes():
    w1, w2, w3 = randn(3, 2, seed=1), randn(4, 3, seed=2), randn(1, 4, seed=3)
    torch.testing.assert_close(ln.end_to_end([w1, w2, w3]), w3 @ w2 @ w1)
    with pytest.raises(ValueError, match="do not chain"):
        ln.end_to_end([w1, w3])
    with pytest.raises(ValueError, match="empty"):
        ln.end_to_end([])


def test_layer_gradients_equal_autograd():
    dims = [4, 5, 3, 6, 2]
    weights = ln.gaussian_init(dims, generator=gen(0))
    target = randn(2, 4, seed=1)
    _, grad = ln.square_loss(ln.end_to_end(weights), target)
    ours = ln.layer_gradients(weights, grad)
    leaves = [w.clone().requires_grad_() for w in weights]
    (0.5 * ((ln.end_to_end(leaves) - target) ** 2).sum()).backward()
    for leaf, g in zip(leaves, ours):
        torch.testing.assert_close(g, leaf.grad, rtol=1e-12, atol=1e-14)


def test_deep_linear_net_module(device):
    net = ln.DeepLinearNet([3, 4, 2], init="gaussian", generator=gen(0), device=device)
    assert net.depth == 2 and len(list(net.parameters())) == 2
    x = randn(5, 3, seed=1).to(device)
    torch.testing.assert_close(net(x), x @ net.end_to_end().T)
    assert net.weights[0].device.type == torch.device(device).type
    balanced = ln.DeepLinearNet([3, 4, 4, 2], init="balanced", generator=gen(0), device=device)
    assert balanced.balancedness() < 1e-12
    identity = ln.DeepLinearNet([3, 3, 3], init="identity")
    torch.testing.assert_close(identity.end_to_end(), torch.eye(3, dtype=F64))
    with pytest.raises(ValueError, match="equal sizes"):
        ln.DeepLinearNet([3, 4], init="identity")
    with pytest.raises(ValueError, match="unknown init"):
        ln.DeepLinearNet([3, 4], init="xavier")
    with pytest.raises(ValueError, match="at least two"):
        ln.DeepLinearNet([3])


# ---------------------------------------------------------------------------------------------- balancedness

def test_balancedness_definition():
    w1, w2 = randn(3, 2, seed=1), randn(4, 3, seed=2)
    expected = torch.linalg.matrix_norm(w2.T @ w2 - w1 @ w1.T).item()
    assert ln.balancedness([w1, w2]) == pytest.approx(expected, rel=1e-14)
    assert ln.balancedness([w1]) == 0.0
    w3 = randn(2, 4, seed=3)
    gap3 = torch.linalg.matrix_norm(w3.T @ w3 - w2 @ w2.T).item()
    assert ln.balancedness([w1, w2, w3]) == pytest.approx(max(expected, gap3), rel=1e-14)


@pytest.mark.parametrize("dims", [[4, 5, 3, 6, 2], [3, 3, 3], [1, 2, 1], [5, 4, 4, 4, 4, 1]])
def test_one_gd_step_changes_balancedness_by_exactly_lr_squared_term(dims):
    weights = ln.gaussian_init(dims, generator=gen(len(dims)))
    target = randn(dims[-1], dims[0], seed=9)
    lr = 0.05
    _, grad = ln.square_loss(ln.end_to_end(weights), target)
    grads = ln.layer_gradients(weights, grad)
    new = [w - lr * g for w, g in zip(weights, grads)]
    for j in range(len(weights) - 1):
        before = weights[j + 1].T @ weights[j + 1] - weights[j] @ weights[j].T
        after = new[j + 1].T @ new[j + 1] - new[j] @ new[j].T
        predicted = lr ** 2 * (grads[j + 1].T @ grads[j + 1] - grads[j] @ grads[j].T)
        assert (after - before - predicted).abs().max().item() < 1e-13
        assert predicted.abs().max().item() > 1e-6  # the change itself is not zero


def test_balancedness_drift_over_fixed_time_halves_with_lr():
    dims = [4, 5, 3, 2]
    target = randn(2, 4, seed=1)
    drift = []
    for lr in (0.02, 0.01, 0.005):
        run = ln.train_factors(ln.balanced_init(dims, 0.5, generator=gen(4)), target, lr, int(round(1.0 / lr)))
        assert run.balancedness[0] < 1e-13
        drift.append(run.balancedness[-1])
    assert drift[0] > 1e-4
    for a, b in zip(drift, drift[1:]):
        assert 1.8 < a / b < 2.2


@pytest.mark.parametrize("dims", [[3, 4, 2], [4, 4, 4, 4], [2, 5, 5, 3], [3, 1, 1, 1], [1, 3, 3, 1], [5, 5]])
def test_balanced_factors_are_balanced_and_multiply_to_the_matrix(dims):
    a = randn(dims[-1], dims[0], seed=sum(dims))
    weights = ln.balanced_factors(a, dims)
    assert [tuple(w.shape) for w in weights] == [(dims[j + 1], dims[j]) for j in range(len(dims) - 1)]
    torch.testing.assert_close(ln.end_to_end(weights), a, rtol=1e-12, atol=1e-13)
    assert ln.balancedness(weights) < 1e-12


def test_balanced_factors_rank_deficient_and_errors():
    a = randn(3, 1, seed=1) @ randn(1, 4, seed=2)  # rank one
    weights = ln.balanced_factors(a, [4, 3, 3, 3])
    torch.testing.assert_close(ln.end_to_end(weights), a, rtol=1e-12, atol=1e-13)
    assert ln.balancedness(weights) < 1e-12
    assert all(torch.isfinite(w).all() for w in weights)
    with pytest.raises(ValueError, match="hidden sizes"):
        ln.balanced_factors(randn(3, 4), [4, 2, 3])
    with pytest.raises(ValueError, match="shape"):
        ln.balanced_factors(randn(3, 4), [3, 3, 4])


def test_balanced_init_samples_scale_and_is_reproducible(device):
    w = ln.balanced_init([6, 8, 8, 6], 2.0, generator=gen(0), device=device)
    w_again = ln.balanced_init([6, 8, 8, 6], 2.0, generator=gen(0), device=device)
    for a, b in zip(w, w_again):
        torch.testing.assert_close(a, b)
    assert ln.balancedness(w) < 1e-12
    # end-to-end entries N(0, scale^2 / d0): mean square about scale^2 / d0
    many = torch.stack([ln.end_to_end(ln.balanced_init([6, 6, 6], 2.0, generator=gen(s))) for s in range(200)])
    assert many.pow(2).mean().item() == pytest.approx(4.0 / 6, rel=0.1)


def test_orthogonal_and_gaussian_init():
    weights = ln.orthogonal_init([5] * 9, 1.0, generator=gen(0))
    torch.testing.assert_close(torch.linalg.svdvals(ln.end_to_end(weights)), torch.ones(5, dtype=F64))
    rect = ln.orthogonal_init([3, 5, 2], 0.5, generator=gen(1))
    torch.testing.assert_close(rect[0].T @ rect[0], 0.25 * torch.eye(3, dtype=F64))
    torch.testing.assert_close(rect[1] @ rect[1].T, 0.25 * torch.eye(2, dtype=F64))
    g = torch.cat([ln.gaussian_init([50, 40], 3.0, generator=gen(s))[0].reshape(-1) for s in range(10)])
    assert g.pow(2).mean().item() == pytest.approx(9.0 / 50, rel=0.05)


def test_deficiency_margin():
    target = torch.diag(torch.tensor([2.0, 1.0], dtype=F64))
    w = target + torch.tensor([[0.3, 0.0], [0.0, -0.4]], dtype=F64)
    assert ln.deficiency_margin(w, target) == pytest.approx(1.0 - 0.5, rel=1e-14)
    assert ln.deficiency_margin(torch.zeros(2, 2, dtype=F64), target) < 0
    with pytest.raises(ValueError):
        ln.deficiency_margin(torch.zeros(2, 3, dtype=F64), target)


def test_margin_and_balanced_start_give_the_linear_rate():
    # Arora, Cohen, Golowich & Hu (2019): loss(t) <= (1 - lr c^{2(N-1)/N})^t loss(0)
    q, _ = torch.linalg.qr(randn(3, 3, seed=6))
    target = q @ torch.diag(torch.tensor([2.0, 1.5, 1.0], dtype=F64))
    a0 = target + 0.15 * randn(3, 3, seed=7)
    c = ln.deficiency_margin(a0, target)
    assert c > 0
    for depth in (2, 3, 4):
        run = ln.train_factors(ln.balanced_factors(a0, [3] * (depth + 1)), target, 0.05, 100)
        rate = 1 - 0.05 * c ** (2 * (depth - 1) / depth)
        for t, loss in enumerate(run.loss):
            assert loss <= run.loss[0] * rate ** t * (1 + 1e-12) + 1e-30


# ---------------------------------------------------------------------------------------------- Saxe

def test_saxe_mode_strength_solves_the_ode():
    s, u0, tau = 2.0, 1e-3, 1.5
    assert ln.saxe_mode_strength(0.0, s, u0, tau).item() == pytest.approx(u0, rel=1e-14)
    assert ln.saxe_mode_strength(200.0, s, u0, tau).item() == pytest.approx(s, rel=1e-12)
    t = torch.linspace(0.1, 5, 30, dtype=F64)
    h = 1e-6
    derivative = (ln.saxe_mode_strength(t + h, s, u0, tau) - ln.saxe_mode_strength(t - h, s, u0, tau)) / (2 * h)
    u = ln.saxe_mode_strength(t, s, u0, tau)
    torch.testing.assert_close(tau * derivative, 2 * u * (s - u), rtol=1e-6, atol=1e-8)
    half = ln.saxe_half_time(s, u0, tau)
    assert ln.saxe_mode_strength(half, s, u0, tau).item() == pytest.approx(s / 2, rel=1e-12)
    with pytest.raises(ValueError):
        ln.saxe_mode_strength(1.0, -1.0, u0)


def test_saxe_closed_form_matches_gradient_descent():
    s, u0 = [3.0, 1.0, 0.5], 1e-3
    deviations = []
    for lr in (0.02, 0.01):
        steps = int(8 / lr)
        strengths = ln.saxe_simulation(s, u0, lr, steps)
        t = torch.arange(steps + 1, dtype=F64) * lr
        dev = max((strengths[:, i] - ln.saxe_mode_strength(t, si, u0)).abs().max().item() for i, si in enumerate(s))
        deviations.append(dev)
        for i, si in enumerate(s):
            measured = int((strengths[:, i] >= si / 2).nonzero()[0])
            assert measured == pytest.approx(ln.saxe_half_time(si, u0) / lr, rel=0.05)
    assert deviations[0] < 0.2 and 1.7 < deviations[0] / deviations[1] < 2.3  # first order in lr


# ---------------------------------------------------------------------------------------------- end-to-end rule

def test_psd_power_zeroes_small_eigenvalues():
    v = randn(4, 2, seed=1)
    m = v @ v.T  # rank two: two eigenvalues are round-off
    root = ln.psd_power(m, 1 / 3)
    assert torch.isfinite(root).all()
    torch.testing.assert_close(root @ root @ root, m, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ln.psd_power(m, 0.0), torch.eye(4, dtype=F64))
    torch.testing.assert_close(ln.psd_power(torch.zeros(3, 3, dtype=F64), 0.5), torch.zeros(3, 3, dtype=F64))


def test_end_to_end_update_depth_one_is_gradient_descent(device):
    w, g = randn(3, 4, seed=1).to(device), randn(3, 4, seed=2).to(device)
    torch.testing.assert_close(ln.end_to_end_update(w, g, 0.1, 1), w - 0.1 * g)


def test_end_to_end_update_matches_a_hand_computed_depth_two_case():
    # W = diag(4, 1): [W W^T]^{1/2} = diag(4, 1) and [W^T W]^{1/2} = diag(4, 1), so the direction is
    # G diag(4, 1) + diag(4, 1) G
    w = torch.diag(torch.tensor([4.0, 1.0], dtype=F64))
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    expected = w - 0.1 * (g @ w + w @ g)
    torch.testing.assert_close(ln.end_to_end_update(w, g, 0.1, 2), expected)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_end_to_end_update_tracks_balanced_factor_gd(depth):
    n = 3
    target = randn(n, n, seed=5)
    a0 = 0.3 * randn(n, n, seed=6)
    # one step: the difference is O(lr^2) (quarter when lr halves)
    one_step = []
    for lr in (0.02, 0.01):
        weights = ln.balanced_factors(a0, [n] * (depth + 1))
        grads = ln.layer_gradients(weights, a0 - target)
        factors = ln.end_to_end([w - lr * g for w, g in zip(weights, grads)])
        one_step.append((factors - ln.end_to_end_update(a0, a0 - target, lr, depth)).norm().item())
    assert 3.5 < one_step[0] / one_step[1] < 4.5
    # over a fixed time: O(lr) (halves when lr halves)
    errors = []
    for lr in (0.02, 0.01, 0.005):
        steps = int(round(1.0 / lr))
        run = ln.train_factors(ln.balanced_factors(a0, [n] * (depth + 1)), target, lr, steps)
        w = a0.clone()
        for _ in range(steps):
            w = ln.end_to_end_update(w, w - target, lr, depth)
        errors.append((ln.end_to_end(run.weights) - w).norm().item())
    assert errors[0] < 0.1
    for a, b in zip(errors, errors[1:]):
        assert a / b > 1.8


def test_end_to_end_update_on_a_rank_deficient_start_stays_finite():
    a0 = randn(3, 1, seed=1) @ randn(1, 3, seed=2)
    new = ln.end_to_end_update(a0, a0 - torch.eye(3, dtype=F64), 0.01, 3)
    assert torch.isfinite(new).all()
    weights = ln.balanced_factors(a0, [3, 3, 3, 3])
    grads = ln.layer_gradients(weights, a0 - torch.eye(3, dtype=F64))
    factors = ln.end_to_end([w - 0.01 * g for w, g in zip(weights, grads)])
    assert (factors - new).norm().item() < 1e-3


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_scalar_output_form(depth):
    w, g = randn(1, 5, seed=1), randn(1, 5, seed=2)
    torch.testing.assert_close(ln.scalar_output_direction(w, g, depth),
                               ln.end_to_end_direction(w, g, depth).reshape(-1), rtol=1e-10, atol=1e-12)


def test_not_a_gradient_field_from_depth_three():
    phi = torch.tensor([1.0, 0.5], dtype=F64)
    w0 = torch.tensor([0.8, -0.6], dtype=F64)
    e1, e2 = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    for depth in (1, 2, 3, 4):
        def field(w, depth=depth):
            return ln.scalar_output_direction(w, w - phi, depth)
        jac = torch.autograd.functional.jacobian(field, w0)
        asymmetry = (jac - jac.T).norm().item()
        loop = ln.loop_integral(field, w0, e1, e2, 0.3)
        if depth <= 2:
            assert asymmetry < 1e-12 and abs(loop) < 1e-10
        else:
            assert asymmetry > 0.1 and abs(loop) > 0.05
    # a true gradient field has a zero loop integral; the loop integral of a rotation field is 2*pi*r^2
    assert abs(ln.loop_integral(lambda w: w - phi, w0, e1, e2, 0.3)) < 1e-12
    rotation = ln.loop_integral(lambda w: torch.stack([-(w[1] - w0[1]), w[0] - w0[0]]), w0, e1, e2, 0.5)
    assert rotation == pytest.approx(2 * math.pi * 0.25, rel=1e-9)


# ---------------------------------------------------------------------------------------------- runs

def test_train_factors_stops_on_divergence_and_converges_when_balanced():
    one = torch.ones(1, 1, dtype=F64)
    unbalanced = [torch.tensor([[10.0]], dtype=F64), torch.tensor([[0.075]], dtype=F64)]
    assert ln.deficiency_margin(ln.end_to_end(unbalanced), one) == pytest.approx(0.75)
    run = ln.train_factors(unbalanced, one, 0.1, 100)
    assert run.diverged_at is not None and run.diverged_at <= 10
    assert len(run.loss) == run.diverged_at
    balanced = ln.balanced_factors(ln.end_to_end(unbalanced), [1, 1, 1])
    run = ln.train_factors(balanced, one, 0.1, 100)
    assert run.diverged_at is None and run.loss[-1] < 1e-15
    with pytest.raises(ValueError):
        ln.train_factors(balanced)


def test_train_factors_records():
    run = ln.train_factors(ln.gaussian_init([3, 4, 2], generator=gen(0)), randn(2, 3, seed=1), 0.05, 10,
                           record_singular_values=True, record_end_to_end=True, stop_loss=None)
    assert len(run.loss) == len(run.balancedness) == len(run.singular_values) == len(run.end_to_end) == 11
    assert [tuple(s.shape) for s in run.singular_values[0]] == [(3,), (2,)]
    assert run.loss[-1] < run.loss[0]


@pytest.mark.parametrize("depth", [2, 4])
def test_identity_start_cannot_reach_a_negative_eigenvalue(depth):
    target = torch.diag(torch.tensor([1.0, -1.0], dtype=F64))
    for lr in (0.01, 0.1, 0.5):
        run = ln.train_factors([torch.eye(2, dtype=F64)] * depth, target, lr, 300)
        finite = [v for v in run.loss if math.isfinite(v)]
        assert min(finite) >= 0.5 - 1e-12


def test_bartlett_identity_start_spd_converges_negative_fails():
    # in Phi's eigenbasis floating point keeps every layer exactly diagonal: the exact-arithmetic trajectory
    spd = torch.diag(torch.tensor([0.2, 1.0, 4.0], dtype=F64))
    neg = torch.diag(torch.tensor([-0.5, 1.0, 2.0], dtype=F64))
    q, _ = torch.linalg.qr(randn(3, 3, seed=8))
    for depth in (2, 4):
        good = ln.train_factors(ln.identity_start(3, depth), q @ spd @ q.T, 0.05 / depth, 1500)  # no saddle on the way
        bad = ln.train_factors(ln.identity_start(3, depth), neg, 0.05 / depth, 1500)
        assert good.loss[-1] < 1e-8
        assert min(bad.loss) >= 0.5 * 0.5 ** 2  # (x^N + 0.5)^2 / 2 with x^N >= 0
        assert all(bool((w - torch.diag(torch.diagonal(w))).abs().max() == 0) for w in bad.weights)


def test_a_seeded_perturbation_escapes_the_strict_saddle_only():
    # rotated diag(1, -1): depth 2 (strict saddle) escapes, later for a smaller perturbation, by about
    # ln(10) / ln(1 + lr) steps per decade; depth 4 (flat saddle) does not move in the same time
    c, s = math.cos(0.3), math.sin(0.3)
    rot = torch.tensor([[c, -s], [s, c]], dtype=F64)
    target = rot @ torch.diag(torch.tensor([1.0, -1.0], dtype=F64)) @ rot.T
    escape = {}
    for depth in (2, 4):
        for eps in (1e-4, 1e-8):
            run = ln.train_factors(ln.identity_start(2, depth, eps, generator=gen(0)), target, 0.1, 1500)
            escape[depth, eps] = ln.first_step_below(run.loss, 0.49)
    assert escape[2, 1e-4] is not None and escape[2, 1e-8] is not None
    per_decade = (escape[2, 1e-8] - escape[2, 1e-4]) / 4
    assert per_decade == pytest.approx(math.log(10) / math.log1p(0.1), abs=1)
    assert escape[4, 1e-4] is None and escape[4, 1e-8] is None


def test_identity_start_and_first_step_below():
    layers = ln.identity_start(3, 4)
    assert len(layers) == 4 and all(torch.equal(w, torch.eye(3, dtype=F64)) for w in layers)
    layers[0][0, 0] = 5.0  # independent copies
    assert layers[1][0, 0] == 1.0
    a = ln.identity_start(3, 2, 1e-3, generator=gen(1))
    b = ln.identity_start(3, 2, 1e-3, generator=gen(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))  # seeded
    assert not torch.equal(a[0], a[1])  # independent layers
    assert 0 < (a[0] - torch.eye(3, dtype=F64)).abs().max() < 1e-2
    with pytest.raises(ValueError):
        ln.identity_start(3, 2, -1.0)
    with pytest.raises(ValueError):
        ln.identity_start(0, 2)
    assert ln.first_step_below([3.0, 2.0, 0.5, 0.1], 1.0) == 2
    assert ln.first_step_below([3.0, 2.0], 1.0) is None


def test_scalar_escape_times_log_at_depth_two_and_inverse_at_depth_three():
    # the saddle of course_lib.saddles.scalar_linear_net: depth 2 strict, depth 3 flat
    assert saddles.derivatives_at_origin(3)["hessian"].abs().max() == 0
    two = [ln.scalar_escape_steps(2, a0, 0.1) for a0 in (1e-2, 1e-3, 1e-4)]
    three = [ln.scalar_escape_steps(3, a0, 0.1) for a0 in (1e-2, 1e-3)]
    assert two[1] - two[0] == pytest.approx(two[2] - two[1], abs=2)  # + constant per decade
    assert two[1] - two[0] == pytest.approx(math.log(10) / math.log1p(0.1), abs=2)
    assert three[1] / three[0] == pytest.approx(10, rel=0.02)  # x10 per decade: ~ 1/(lr a0)
    assert three[1] == pytest.approx(1 / (0.1 * 1e-3), rel=0.01)
    # GD on the actual loss (autograd) agrees with the symmetric formula
    w = torch.full((3,), 0.1, dtype=F64)
    for _ in range(ln.scalar_escape_steps(3, 0.1, 0.1)):
        w = w - 0.1 * torch.autograd.functional.jacobian(saddles.scalar_linear_net, w)
    assert torch.prod(w).item() >= 0.5
    with pytest.raises(ValueError):
        ln.scalar_escape_steps(1, 0.1, 0.1)


def test_lp_regression_steps_matches_factor_gradient_descent():
    x, w_true = randn(30, 4, seed=1), randn(4, seed=2)
    y = x @ w_true
    w0 = 0.1 * randn(4, seed=3)
    for p in (2, 4):
        def loss_grad(w, p=p):
            r = x @ w.reshape(-1) - y
            return float((r ** p).mean()) / p, (r ** (p - 1) @ x / len(y)).reshape(1, -1)
        for depth in (1, 2, 3):
            lr = 0.01
            run = ln.train_factors(ln.balanced_factors(w0.reshape(1, -1), [4] + [1] * depth), None, lr, 60,
                                   loss_grad=loss_grad)
            curve = ln.lp_regression_curve(x, y, w0, p, depth, lr, 60)
            torch.testing.assert_close(curve, torch.tensor(run.loss, dtype=F64), rtol=1e-10, atol=1e-12)
            target = (run.loss[39] + run.loss[40]) / 2
            steps = ln.lp_regression_steps(x, y, w0, p, depth, [lr, 1e-9, 1e3], 60, target)
            assert steps.tolist()[0] == next(k for k, v in enumerate(run.loss) if v <= target)
            assert steps.tolist()[1:] == [-1, -1]  # too slow, diverged


def test_lp_regression_validates():
    x = randn(5, 2)
    with pytest.raises(ValueError, match="even"):
        ln.lp_regression_steps(x, x[:, 0], x[0], 3, 2, [0.1], 10, 0.0)
    with pytest.raises(ValueError, match="depth"):
        ln.lp_regression_steps(x, x[:, 0], x[0], 2, 0, [0.1], 10, 0.0)


def test_lp_tuned_steps_is_the_best_of_the_single_runs():
    xs = torch.stack([randn(30, 4, seed=s) for s in (1, 2)])
    ys = torch.stack([x @ randn(4, seed=7) for x in xs])
    w0 = torch.stack([0.1 * randn(4, seed=s) for s in (3, 4)])
    lrs = [1e-3, 1e-2, 3e-2, 1e3]
    for p, depth in ((2, 1), (4, 2), (4, 3)):
        targets = []
        for x, y, w in zip(xs, ys, w0):
            curve = ln.lp_regression_curve(x, y, w, p, depth, 1e-2, 40)
            targets.append(float(curve[25] + curve[26]) / 2)
        counts, index = ln.lp_tuned_steps(xs, ys, w0, p, depth, lrs, 200, torch.tensor(targets, dtype=F64))
        for s in range(2):
            single = ln.lp_regression_steps(xs[s], ys[s], w0[s], p, depth, lrs, 200, targets[s])
            best = int(torch.where(single >= 0, single, 10 ** 9).argmin())
            assert counts[s] == single[best] and index[s] == best  # fewest steps, smallest such lr
            assert counts[s] <= 26  # lr 1e-2 arrives at step 26 at the latest
    never, _ = ln.lp_tuned_steps(xs, ys, w0, 2, 1, [1e-9], 5, 0.0)
    assert never.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="expected"):
        ln.lp_tuned_steps(xs[0], ys[0], w0[0], 2, 1, lrs, 10, 0.0)
