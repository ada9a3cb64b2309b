"""course_lib.wilson (Wilson et al. 2017's construction) and course_lib.optim.swats.SWATS."""

import copy
import math

import pytest
import torch

from course_lib import optim, wilson
from course_lib.optim.swats import SWATS


def test_features_layout_and_the_identity_Xu_is_4y():
    y = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    X = wilson.wilson_features(y)
    assert X.shape == (3, 18)
    assert X[:, 0].tolist() == [1.0, -1.0, 1.0] and (X[:, 1:3] == 1).all()
    assert X[0, 3:8].tolist() == [1, 0, 0, 0, 0] and X[1, 8:13].tolist() == [1] * 5 and X[2, 13:18].tolist() == [1, 0, 0, 0, 0]
    assert X[:, 3:].sum(1).tolist() == [1, 5, 1]
    u = torch.sign(X.T @ y)
    assert torch.equal(X @ u, 4 * y)
    X2 = wilson.wilson_features(y, offset=2)
    assert X2.shape == (3, 28) and X2[0, 13].item() == 1 and X2[:, 3:13].abs().sum() == 0
    for bad in (torch.tensor([1.0, 0.0]), torch.ones(2, 2)):
        with pytest.raises(ValueError):
            wilson.wilson_features(bad)
    with pytest.raises(ValueError):
        wilson.wilson_features(y, n_features=10)


def test_data_seeded_with_a_positive_majority_and_private_test_columns():
    a, b = wilson.wilson_data(12, 40, seed=3), wilson.wilson_data(12, 40, seed=3)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert a.y_train.sum() > 0 and a.X_train.shape == (12, 3 + 5 * 52) and a.X_test.shape == (40, 3 + 5 * 52)
    used_by_train = a.X_train[:, 3:].abs().sum(0) > 0
    used_by_test = a.X_test[:, 3:].abs().sum(0) > 0
    assert not (used_by_train & used_by_test).any()
    assert a.minority_fraction == pytest.approx((a.y_test < 0).double().mean().item())
    with pytest.raises(ValueError):
        wilson.wilson_data(p_positive=0.4)


def test_closed_forms_min_norm_and_sign_solutions():
    d = wilson.wilson_data(15, 60, seed=1)
    w_mn = wilson.min_norm_solution(d.X_train, d.y_train)
    assert torch.allclose(d.X_train @ w_mn, d.y_train, atol=1e-10)
    # minimum norm: w_mn is in the row space, so it equals the pseudo-inverse solution
    assert torch.allclose(w_mn, torch.linalg.pinv(d.X_train) @ d.y_train, atol=1e-10)
    w_s = wilson.sign_solution(d.X_train, d.y_train)
    assert torch.allclose(d.X_train @ w_s, d.y_train, atol=1e-12)
    assert torch.allclose(w_s[:3], torch.full((3,), 0.25, dtype=torch.float64))
    assert wilson.classification_error(w_mn, d.X_test, d.y_test) == 0.0
    assert wilson.classification_error(w_s, d.X_test, d.y_test) == d.minority_fraction
    with pytest.raises(ValueError):  # a negative majority breaks the lemma's assumption
        y = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
        wilson.sign_solution(wilson.wilson_features(y), y)


def _sin_to(w, direction):
    """sin of the angle between w and direction."""
    d = direction / direction.norm()
    return ((w - (w @ d) * d).norm() / w.norm()).item()


# Tolerances for the adaptive methods (no guessed constants).
# In exact arithmetic with eps = 0 every gradient of the run is c_t X^T y, every step is a multiple of
# u = sign(X^T y), and the iterate stays on the ray {a u}: its angle to u is 0. Two things move it off:
# * eps: a coordinate's step is multiplied by 1 / (1 + eps / sqrt(v_j)), a relative change of at most
#   rho = eps / min_{t, j} sqrt(v_{t, j}). From w_0 = 0 the first gradient is g_1 = -X^T y / n, so with
#   g_min = min |g_{1, j}| over the used columns: sqrt(v_t) >= g_min for AdaGrad, >= sqrt(1 - alpha) alpha^((t-1)/2) g_min
#   for RMSprop, >= sqrt(beta2^(t-1) / t) g_min for Adam (bias-corrected). Each step moves a coordinate by at most
#   c * lr (c = 1 for AdaGrad, 1 / sqrt(1 - alpha) for RMSprop, max(1, (1 - beta1) / sqrt(1 - beta2)) for Adam),
#   so after K steps the part off the ray is at most rho * K * c * lr * sqrt(D).
# * round-off: at most about K * sqrt(D) units of 2^-52 of |w| while the iteration is stable (it is, until it has
#   converged; after that RMSprop's and Adam's growing effective step makes it unstable, so the runs stop at
#   convergence: loss_tol, see train_linear).
# GD's minimum-norm solution is at sin = 0.76 from u on this problem: far outside these bounds (checked below).
def _off_ray_bound(name, hp, X, y, steps_used):
    n, D = X.shape
    g1 = (X.T @ y).abs() / n
    g_min = g1[g1 > 0].min().item()
    K, lr, eps = steps_used, hp["lr"], hp["eps"]
    if name == "Adagrad":
        root, c = g_min, 1.0
    elif name == "RMSprop":
        alpha = 0.99
        root, c = math.sqrt(1 - alpha) * alpha ** ((K - 1) / 2) * g_min, 1 / math.sqrt(1 - alpha)
    else:
        beta1, beta2 = 0.9, 0.999
        root, c = math.sqrt(beta2 ** (K - 1) / K) * g_min, max(1.0, (1 - beta1) / math.sqrt(1 - beta2))
    return eps / root * K * c * lr * math.sqrt(D), K * math.sqrt(D) * torch.finfo(X.dtype).eps


def test_gd_finds_min_norm_and_adaptive_methods_the_sign_solution():
    d = wilson.wilson_data(10, 50, seed=0)
    X, y = d.X_train, d.y_train
    n = X.shape[0]
    gram = torch.linalg.eigvalsh(X @ X.T / n)  # the nonzero eigenvalues of the Hessian X^T X / n
    L, mu = gram[-1].item(), gram[0].item()
    w_mn = wilson.min_norm_solution(X, y)
    w_s = wilson.sign_solution(X, y)
    u = torch.sign(X.T @ y)
    # GD from 0 with lr = 1/L stays in the row space, where the error contracts by at least 1 - mu/L per step
    steps = 600
    w, losses = wilson.train_linear(optim.SGD, X, y, steps, lr=1 / L)
    tol = ((1 - mu / L) ** steps + steps * math.sqrt(X.shape[1]) * torch.finfo(X.dtype).eps) * w_mn.norm().item()
    assert (w - w_mn).norm().item() <= tol and losses[0] == pytest.approx(0.5)
    assert (w_s - w_mn).norm().item() > 1e6 * tol  # the bound separates the two solutions
    for cls, hp in ((optim.Adagrad, dict(lr=0.1, eps=1e-10)), (optim.RMSprop, dict(lr=0.01, eps=1e-10)),
                    (optim.Adam, dict(lr=0.01, eps=1e-10))):
        w, losses = wilson.train_linear(cls, X, y, 1000, loss_tol=1e-20, **hp)
        used = int(torch.isfinite(losses).sum()) - 1
        assert used < 1000 and losses[used] <= 1e-20, cls.__name__  # converged, and stopped there
        eps_part, roundoff_part = _off_ray_bound(cls.__name__, hp, X, y, used)
        bound = eps_part + roundoff_part
        assert _sin_to(w, u) <= bound, (cls.__name__, _sin_to(w, u), bound)
        assert _sin_to(w_mn, u) > 1e3 * bound  # GD's answer would fail this test by far
        # on the ray, |w - u/4| / |u/4| = |Xw - y| / |y|, set by the remaining loss
        on_ray = math.sqrt(2 * n * losses[used].item()) / y.norm().item()
        assert (w - w_s).norm().item() <= (on_ray + bound) * w_s.norm().item() * (1 + 1e-12), cls.__name__
        assert wilson.classification_error(w, d.X_test, d.y_test) == d.minority_fraction
    # a large eps mixes in plain gradient steps: the direction is no longer u, even far from it
    w, _ = wilson.train_linear(optim.Adam, X, y, 400, lr=0.01, eps=1.0)
    assert _sin_to(w, u) > 0.1


def test_train_linear_loss_tol_stops_at_convergence_and_rejects_bad_values():
    d = wilson.wilson_data(5, 5, seed=0)
    _, losses = wilson.train_linear(optim.Adagrad, d.X_train, d.y_train, 500, lr=0.1, eps=1e-10, loss_tol=1e-12)
    used = int(torch.isfinite(losses).sum()) - 1
    assert 0 < used < 500 and losses[used] <= 1e-12 < losses[used - 1]
    with pytest.raises(ValueError):
        wilson.train_linear(optim.SGD, d.X_train, d.y_train, 5, lr=0.1, loss_tol=0.0)


def test_train_linear_stops_on_divergence():
    d = wilson.wilson_data(5, 5, seed=0)
    _, losses = wilson.train_linear(optim.SGD, d.X_train, d.y_train, 3000, lr=100.0)
    assert torch.isnan(losses).any() and not math.isfinite(losses[~torch.isnan(losses)][-1].item())


# --- SWATS ------------------------------------------------------------------------------------------------------

def _quadratic(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return A.T @ A / n + 0.1 * torch.eye(n, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)


def _run(opt_fn, steps, seed=0):
    A, b = _quadratic(seed)
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = opt_fn([w])
    path = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * w @ A @ w - b @ w).backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path), opt


def test_swats_before_the_switch_is_adam_with_eps_zero():
    got, opt = _run(lambda p: SWATS(p, lr=0.05, eps=0.0, switch_tol=0.0), 40)
    ref, _ = _run(lambda p: torch.optim.Adam(p, lr=0.05, eps=0.0), 40)
    assert torch.allclose(got, ref, atol=1e-12) and opt.switched_at is None
    assert opt.param_groups[0]["proj_lr_avg"] > 0


def test_swats_projected_rate_formula_and_the_switch():
    _, opt = _run(lambda p: SWATS(p, lr=0.1, switch_tol=1e-3), 60, seed=2)
    k = opt.switched_at
    assert k is not None and k > 1 and opt.param_groups[0]["phase"] == "sgd"
    # replay k Adam steps by hand: gamma_k = p^T p / (-p^T g), lambda averaged like Adam's v
    A, b = _quadratic(2)
    w = torch.zeros(6, dtype=torch.float64)
    m, a, lam = torch.zeros(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64), 0.0
    b1, b2 = 0.9, 0.999
    for t in range(1, k + 1):
        g = A @ w - b
        m, a = b1 * m + (1 - b1) * g, b2 * a + (1 - b2) * g * g
        p = -0.1 * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (a.sqrt() + 1e-9)
        w = w + p
        gamma = (p @ p / -(p @ g)).item()
        lam = b2 * lam + (1 - b2) * gamma
        if t < k:
            assert not (t > 1 and abs(lam / (1 - b2 ** t) - gamma) < 1e-3)
    assert abs(lam / (1 - b2 ** k) - gamma) < 1e-3
    assert opt.param_groups[0]["sgd_lr"] == pytest.approx(lam / (1 - b2 ** k), rel=1e-12)


def test_swats_after_the_switch_is_sgd_with_momentum():
    path, opt = _run(lambda p: SWATS(p, lr=0.1, switch_tol=1e-3), 60, seed=2)
    k, lam = opt.switched_at, opt.param_groups[0]["sgd_lr"]
    A, b = _quadratic(2)
    w = path[k - 1].clone().requires_grad_(True)
    sgd = torch.optim.SGD([w], lr=0.1 * lam, momentum=0.9)
    for t in range(k, 60):
        sgd.zero_grad()
        (0.5 * w @ A @ w - b @ w).backward()
        sgd.step()
        assert torch.allclose(w.detach(), path[t], atol=1e-12)


def test_swats_state_dict_resumes_exactly_and_bad_arguments():
    A, b = _quadratic(2)

    def loss(w):
        return 0.5 * w @ A @ w - b @ w

    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = SWATS([w], lr=0.1, switch_tol=1e-3)
    for _ in range(20):
        opt.zero_grad()
        loss(w).backward()
        opt.step()
    w2 = w.detach().clone().requires_grad_(True)
    opt2 = SWATS([w2], lr=0.1, switch_tol=1e-3)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(40):
        for o, p in ((opt, w), (opt2, w2)):
            o.zero_grad()
            loss(p).backward()
            o.step()
    assert torch.equal(w, w2) and opt.switched_at == opt2.switched_at is not None
    for kwargs in ({"lr": -1.0}, {"eps": -1.0}, {"betas": (1.0, 0.9)}, {"switch_tol": -1.0}):
        with pytest.raises(ValueError):
            SWATS([w], **kwargs)


def test_swats_on_the_device(device):
    w = torch.ones(3, device=device, requires_grad=True)
    opt = SWATS([w], lr=0.1, switch_tol=1.0)
    for _ in range(5):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
    assert w.device.type == device.type and opt.switched_at == 2
