"""OGR (Duda's online gradient regression): the estimates against closed forms, the step, the subspace."""

import copy
import math

import pytest
import torch

from course_lib.grading.ogr_checks import reference_hessian_from_moments, reference_online_parabola
from course_lib.second_order import OGR
from course_lib.second_order.ogr import hessian_from_moments, principal_cosines, saddle_free_step
from course_lib.trajectories import run_trajectory

F64 = torch.float64


def _sym(d, eigenvalues, seed):
    gen = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64)).Q
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T


def _probe(opt, x, points, grad_fn):
    """Feed the optimizer the gradients at the given points (its own step is overwritten by the next point)."""
    for point in points:
        with torch.no_grad():
            x.copy_(point)
        x.grad = grad_fn(x.detach())
        opt.step()


# --------------------------------------------------------------------------- the estimates
@pytest.mark.parametrize("curvatures", [(2.0, -1.0, 0.5, -3.0, 10.0)])
def test_diagonal_recovers_curvature_on_its_own_run(curvatures):
    lam = torch.tensor(curvatures, dtype=F64)
    centre = torch.tensor([0.3, -0.2, 1.0, 0.1, -0.5], dtype=F64)
    x = torch.tensor([1.0, 0.5, -1.0, 0.2, 0.7], dtype=F64, requires_grad=True)
    opt = OGR([x])
    for _ in range(100):
        x.grad = lam * (x.detach() - centre)
        opt.step()
    st = opt.state[x]
    estimate = st["cov_grad_param"] / st["var_param"]
    assert (estimate - lam).abs().max() <= 1e-8
    # positive curvatures: at the minimum; negative ones: pushed away from the maximum
    pos = lam > 0
    assert (x.detach()[pos] - centre[pos]).abs().max() < 1e-10
    assert ((x.detach() - centre)[~pos].abs() > 1e6).all()


def test_subspace_full_rank_recovers_indefinite_hessian():
    d = 5
    A = _sym(d, [4.0, 1.0, 0.2, -0.5, -2.0], 1)
    b = torch.randn(d, generator=torch.Generator().manual_seed(2), dtype=F64)
    gen = torch.Generator().manual_seed(3)
    points = torch.cumsum(0.5 * torch.randn(100, d, generator=gen, dtype=F64), 0)  # a random walk
    x = torch.zeros(d, dtype=F64, requires_grad=True)
    opt = OGR([x], rank=d)
    errors = []
    for k, point in enumerate(points):
        _probe(opt, x, [point], lambda z: A @ z - b)
        errors.append(float((opt.state[x]["hessian"] - A).abs().max()))
    assert errors[-1] <= 1e-8
    assert max(errors[d + 1:]) <= 1e-8  # exact as soon as d + 1 points span the space: no start-up bias
    assert errors[1] > 1e-3  # ... and not before (two points fix one direction only)


def test_hessian_solve_matches_kronecker_system():
    gen = torch.Generator().manual_seed(4)
    for d in (1, 2, 4, 7):
        m = torch.randn(d, d, generator=gen, dtype=F64)
        sigma = m @ m.T + 0.1 * torch.eye(d, dtype=F64)
        cov = torch.randn(d, d, generator=gen, dtype=F64)
        got, *_ = hessian_from_moments(sigma, cov)
        expected = reference_hessian_from_moments(sigma, cov)
        assert torch.allclose(got, expected, rtol=1e-9, atol=1e-9)
        assert torch.allclose(got @ sigma + sigma @ got, cov + cov.T, atol=1e-9)


def test_diagonal_state_matches_weighted_regression():
    thetas = torch.cumsum(0.2 * torch.randn(30, generator=torch.Generator().manual_seed(5), dtype=F64), 0)
    grads = thetas ** 3 - thetas
    lam_ref, _ = reference_online_parabola(thetas, grads, 0.4)
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = OGR([x], beta=0.4)
    _probe(opt, x, thetas[:, None], lambda z: z ** 3 - z)
    st = opt.state[x]
    assert torch.allclose(st["cov_grad_param"] / st["var_param"], lam_ref[-1:], rtol=1e-10)


@pytest.mark.parametrize("lam", [3.0, -0.7, 25.0])
def test_sigma_ratio_is_inverse_abs_curvature_on_a_parabola(lam):
    """sigma_theta / sigma_g = 1 / |lambda| with the optimizer's own weighted statistics."""
    beta, p = 0.5, 0.4
    x = torch.tensor([1.3], dtype=F64, requires_grad=True)
    opt = OGR([x], beta=beta, div=3.0)  # damped: the points keep moving
    thetas, grads = [], []
    for _ in range(30):
        thetas.append(float(x.detach()))
        grads.append(lam * (thetas[-1] - p))
        x.grad = torch.tensor([grads[-1]], dtype=F64)
        opt.step()
    t = len(thetas) - 1
    k = torch.arange(t + 1, dtype=F64)
    w = beta * (1 - beta) ** (t - k)
    w[0] = (1 - beta) ** t
    th, g = torch.tensor(thetas, dtype=F64), torch.tensor(grads, dtype=F64)
    var_g = (w * (g - (w * g).sum()) ** 2).sum()
    st = opt.state[x]
    assert torch.allclose(st["var_param"].sqrt() / var_g.sqrt(), torch.tensor([1 / abs(lam)], dtype=F64),
                          rtol=1e-8)
    assert torch.allclose(st["var_param"], (w * (th - (w * th).sum()) ** 2).sum().reshape(1), rtol=1e-9)


# --------------------------------------------------------------------------- the step
def test_saddle_free_step_is_a_descent_direction_on_indefinite_quadratics():
    gen = torch.Generator().manual_seed(6)
    for seed in range(10):
        H = _sym(6, [5.0, 1.0, 0.01, -0.02, -1.0, -4.0], seed)
        g = torch.randn(6, generator=gen, dtype=F64)
        for div, cut in ((1.0, 0.1), (2.0, 0.5), (1.0, 1e-3)):
            step = saddle_free_step(H, g, div, cut)
            assert float(g @ step) > 0  # theta - step goes downhill
    # and the optimizer lowers an indefinite quadratic at every step once it knows the curvature
    A = _sym(4, [3.0, 0.5, -1.0, -2.0], 7)
    x = torch.tensor([0.5, -0.3, 0.2, 0.1], dtype=F64, requires_grad=True)
    opt = OGR([x], rank=4)
    losses = []
    for _ in range(15):
        x.grad = A @ x.detach()
        losses.append(float(0.5 * x.detach() @ A @ x.detach()))
        opt.step()
    assert all(b < a for a, b in zip(losses[6:], losses[7:]))


def test_unshifted_qr_iteration_cannot_split_plus_minus_one():
    """Why OGR uses eigh: a turned diag(1, -1) is a fixed point of unshifted QR iteration."""
    A = _sym(2, [1.0, -1.0], 8)
    B = A.clone()
    for _ in range(50):
        q, r = torch.linalg.qr(B)
        B = r @ q
    assert B[0, 1].abs() > 0.1  # still not diagonal after 50 iterations
    assert torch.allclose(torch.linalg.eigvalsh(A), torch.tensor([-1.0, 1.0], dtype=F64))


# --------------------------------------------------------------------------- the subspace
def test_subspace_tracks_the_top_gradient_directions():
    D, k = 200, 3
    gen = torch.Generator().manual_seed(9)
    U = torch.linalg.qr(torch.randn(D, k, generator=gen, dtype=F64)).Q.T  # (k, D)
    x = torch.zeros(D, dtype=F64, requires_grad=True)
    opt = OGR([x], rank=k, lr=0.0)  # lr = 0: the complement does not move, we only watch the basis
    scales = torch.tensor([5.0, 3.0, 2.0], dtype=F64)
    for _ in range(400):
        x.grad = (scales * torch.randn(k, generator=gen, dtype=F64)) @ U + 0.1 * torch.randn(D, generator=gen,
                                                                                                 dtype=F64)
        opt.step()
    cosines = principal_cosines(opt.state[x]["basis"], U)
    assert cosines.min() > 0.9, cosines


def test_subspace_mode_on_a_quadratic_beats_its_complement_alone():
    D = 30
    A = _sym(D, torch.logspace(0, 2, D).tolist(), 10)
    x0 = torch.randn(D, generator=torch.Generator().manual_seed(11), dtype=F64)

    def run(**kw):
        x = x0.clone().requires_grad_(True)
        opt = OGR([x], **kw)
        for _ in range(150):
            x.grad = A @ x.detach()
            opt.step()
        return float(0.5 * x.detach() @ A @ x.detach())

    assert run(rank=30) < 1e-20  # full rank: exact after D + 1 steps
    assert run(rank=6) < 1e-3 * run(rank=6, cut=1e6)  # the modelled subspace is what makes it fast


# --------------------------------------------------------------------------- behaviour on the course's surfaces
@pytest.mark.parametrize("rank", [None, 2])
@pytest.mark.parametrize("start, minimum", [((0.5, 1e-3), (0.0, 1.0)), ((0.3, -1e-4), (0.0, -1.0))])
def test_quartic_saddle_escape(rank, start, minimum):
    run = run_trajectory(OGR, "quartic_saddle", start, 40, rank=rank)
    assert run.diverged_at is None
    assert torch.allclose(run.points[-1], torch.tensor(minimum, dtype=F64), atol=1e-6)


def test_rotated_quadratic_in_three_steps():
    run = run_trajectory(OGR, "rotated_ill_conditioned_quadratic", (-2.0, 0.5), 5, rank=2)
    assert float(run.losses[3]) < 1e-12 * float(run.losses[0])  # one GD step, then two regression steps
    assert float(run.losses[4]) < 1e-28


# --------------------------------------------------------------------------- the optimizer contract
@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"), (dict(beta=0.0), "Invalid beta value: 0.0"),
    (dict(beta=1.5), "Invalid beta value: 1.5"), (dict(div=0.0), "Invalid div value: 0.0"),
    (dict(cut=-1.0), "Invalid cut value: -1.0"), (dict(rank=0), "Invalid rank value: 0"),
    (dict(momentum=1.0), "Invalid momentum value: 1.0"), (dict(gamma=-0.1), "Invalid gamma value: -0.1")])
def test_invalid_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OGR([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("rank", [None, 3])
def test_state_dict_resumes_exactly_and_closure_is_optional(rank):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    X = torch.randn(32, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    y = X[:, :1] ** 2

    def closure_for(m, opt):
        def closure():
            opt.zero_grad()
            loss = ((m(X) - y) ** 2).mean()
            loss.backward()
            return loss
        return closure

    opt = OGR(model.parameters(), rank=rank)
    for _ in range(10):
        loss = opt.step(closure_for(model, opt))
    assert torch.is_tensor(loss)
    clone = copy.deepcopy(model)
    opt2 = OGR(clone.parameters(), rank=rank)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if saved to disk
    for _ in range(5):
        opt.step(closure_for(model, opt))
        # the clone is stepped without a closure
        opt2.zero_grad()
        ((clone(X) - y) ** 2).mean().backward()
        opt2.step()
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)


def test_maximize_is_minimizing_the_negative():
    A = torch.diag(torch.tensor([2.0, -1.0], dtype=F64))
    x1 = torch.tensor([1.0, 0.01], dtype=F64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    o1, o2 = OGR([x1], rank=2), OGR([x2], rank=2, maximize=True)
    for _ in range(10):
        x1.grad = A @ x1.detach()
        x2.grad = -(A @ x2.detach())
        o1.step()
        o2.step()
    assert torch.equal(x1, x2)


def test_float32_and_multiple_groups():
    a = torch.tensor([1.0, -2.0], requires_grad=True)
    b = torch.tensor([[0.5]], requires_grad=True)
    opt = OGR([{"params": [a]}, {"params": [b], "rank": 1}])
    for _ in range(20):
        a.grad = 3.0 * a.detach()
        b.grad = 0.5 * (b.detach() - 1.0)
        opt.step()
    assert a.dtype == torch.float32
    assert a.abs().max() < 1e-4 and (b - 1.0).abs().max() < 1e-4
    assert math.isfinite(float(opt.state[b]["hessian"][0, 0]))


def test_subspace_mode_refuses_a_changing_parameter_set():
    a = torch.zeros(3, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    opt = OGR([a, b], rank=2)
    a.grad, b.grad = torch.ones(3), torch.ones(2)
    opt.step()
    b.grad = None
    with pytest.raises(RuntimeError, match="needs a gradient at every step"):
        opt.step()


def test_bench_timer_runs_on_a_tiny_problem():
    from course_lib.bench import SUITES
    from course_lib.bench.ogr import time_ogr_step

    assert "ogr" in SUITES
    for rank in (None, 3):
        ogr_ms, sgd_ms = time_ogr_step(50, rank, steps=3, device="cpu")
        assert ogr_ms > 0 and sgd_ms > 0
