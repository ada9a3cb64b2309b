"""course_lib.second_order: Hessian-vector products, Hessians, Lanczos, spectra, Newton, saddle-free Newton,
the L-BFGS two-loop recursion and conjugate gradient, against exact Hessians and closed forms (float64)."""

import math

import pytest
import torch
from torch import nn

from course_lib.second_order import (Newton, SaddleFreeNewton, conjugate_gradient, flatten, hessian, hvp, lanczos,
                                     lbfgs_direction, newton_direction, run_second_order, saddle_free_direction,
                                     spectral_density, top_eigenvalues)
from course_lib.surfaces import get_surface

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _f(x):
    return (x ** 3).sum() + x[0] * x[1] * x[2] + torch.sin(x).prod() + (x[:2] ** 2).sum() ** 2


def _net_problem(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    X = torch.randn(20, 3, dtype=F64, generator=_gen(seed))
    Y = torch.randn(20, 2, dtype=F64, generator=_gen(seed + 1))
    net.data = (X, Y)
    return net, (lambda ps: ((net(X) - Y) ** 2).mean())


def _exact_net_hessian(net):
    """torch.autograd.functional.hessian of the loss as a function of the flattened parameters."""
    X, Y = net.data
    names = [name for name, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]

    def loss_of(flat):
        params, i = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = flat[i:i + math.prod(shape)].view(shape)
            i += math.prod(shape)
        return ((torch.func.functional_call(net, params, (X,)) - Y) ** 2).mean()

    return torch.autograd.functional.hessian(loss_of, flatten([p.detach() for p in net.parameters()]))


def test_hvp_equals_exact_hessian_times_v_single_tensor():
    x = torch.randn(6, dtype=F64, generator=_gen(0))
    v = torch.randn(6, dtype=F64, generator=_gen(1))
    exact = torch.autograd.functional.hessian(_f, x)
    for method in ("double_backward", "forward"):
        assert (hvp(_f, x, v, method=method) - exact @ v).abs().max() < 1e-10
    assert (hessian(_f, x) - exact).abs().max() < 1e-10
    assert not x.requires_grad  # inputs untouched


def test_hvp_on_network_parameters_matches_the_exact_hessian():
    net, loss = _net_problem()
    params = list(net.parameters())
    exact = _exact_net_hessian(net)
    assert (hessian(loss, params) - exact).abs().max() < 1e-10
    vs = [torch.randn(p.shape, dtype=F64, generator=_gen(i)) for i, p in enumerate(params)]
    got = hvp(loss, params, vs)
    assert [g.shape for g in got] == [p.shape for p in params]
    assert (flatten(got) - exact @ flatten(vs)).abs().max() < 1e-10
    assert (flatten(hvp(loss, params, flatten(vs))) - exact @ flatten(vs)).abs().max() < 1e-10  # a flat v works too


def test_hvp_rejects_mismatched_v():
    x = torch.zeros(3, dtype=F64)
    with pytest.raises(ValueError, match="shapes"):
        hvp(_f, x, torch.zeros(4, dtype=F64))
    with pytest.raises(ValueError, match="method"):
        hvp(_f, x, x, method="finite differences")


def test_hvp_of_a_linear_function_is_zero():
    x = torch.ones(3, dtype=F64)
    assert torch.equal(hvp(lambda x: x.sum(), x, x), torch.zeros(3, dtype=F64))


def test_lanczos_full_run_gives_all_eigenvalues_and_orthonormal_basis():
    a = torch.randn(8, 8, dtype=F64, generator=_gen(3))
    a = a + a.T
    t, q = lanczos(lambda v: a @ v, torch.randn(8, dtype=F64, generator=_gen(4)), 8)
    assert (q.T @ q - torch.eye(8, dtype=F64)).abs().max() < 1e-12
    assert (q.T @ a @ q - t).abs().max() < 1e-10
    assert (torch.linalg.eigvalsh(t) - torch.linalg.eigvalsh(a)).abs().max() < 1e-10


def test_lanczos_stops_early_on_an_invariant_subspace():
    a = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))
    t, q = lanczos(lambda v: a @ v, torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=F64), 4)
    assert t.shape == (2, 2) and q.shape == (4, 2)
    assert torch.allclose(torch.linalg.eigvalsh(t), torch.tensor([1.0, 2.0], dtype=F64))


@pytest.mark.parametrize("method, iters", [("lanczos", 40), ("power", 400)])
def test_top_eigenvalues_match_the_exact_spectrum(method, iters):
    net, loss = _net_problem(1)
    params = list(net.parameters())
    exact = torch.linalg.eigvalsh(hessian(loss, params))
    got = top_eigenvalues(loss, params, 3, method=method, iters=iters, generator=_gen(0))
    expected = exact.flip(0)[:3] if method == "lanczos" else exact[exact.abs().argsort(descending=True)][:3]
    assert (got - expected).abs().max() < 1e-8
    smallest = top_eigenvalues(loss, params, 2, which="smallest", iters=40, generator=_gen(0))
    assert (smallest - exact[:2]).abs().max() < 1e-8


def test_spectral_density_is_a_quadrature_of_the_spectrum():
    x = torch.randn(6, dtype=F64, generator=_gen(5))
    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(_f, x))
    est = spectral_density(_f, x, iters=6, runs=3, generator=_gen(0), grid_size=2000)
    # full-length runs: the nodes are the exact eigenvalues and the weights sum to one
    assert (est.nodes.sort(dim=1).values - exact).abs().max() < 1e-8
    assert (est.weights.sum(1) - 1).abs().max() < 1e-12
    area = torch.trapezoid(est.density, est.grid)
    assert abs(float(area) - 1) < 1e-3


def test_two_loop_recursion_equals_the_bfgs_matrix():
    n = 5
    a = torch.randn(n, n, dtype=F64, generator=_gen(6))
    hess = a @ a.T + torch.eye(n, dtype=F64)
    s_list = [torch.randn(n, dtype=F64, generator=_gen(10 + i)) for i in range(3)]
    y_list = [hess @ s for s in s_list]
    g = torch.randn(n, dtype=F64, generator=_gen(20))
    # the explicit BFGS inverse update H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T from gamma I
    s, y = s_list[-1], y_list[-1]
    h = torch.dot(s, y) / torch.dot(y, y) * torch.eye(n, dtype=F64)
    for s, y in zip(s_list, y_list):
        rho = 1 / torch.dot(y, s)
        left = torch.eye(n, dtype=F64) - rho * torch.outer(s, y)
        h = left @ h @ left.T + rho * torch.outer(s, s)
    assert (lbfgs_direction(g, s_list, y_list) + h @ g).abs().max() < 1e-10
    assert torch.equal(lbfgs_direction(g, [], []), -g)


def test_two_loop_recursion_equals_torch_lbfgs_direction():
    n = 6
    a = torch.randn(n, n, dtype=F64, generator=_gen(7))
    hess = a @ a.T / n + 0.5 * torch.eye(n, dtype=F64)
    b = torch.randn(n, dtype=F64, generator=_gen(8))
    x = torch.zeros(n, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=0.5, max_iter=1, history_size=3)

    def closure():
        opt.zero_grad()
        loss = 0.5 * x @ hess @ x - b @ x
        loss.backward()
        return loss

    for k in range(8):
        opt.step(closure)
        state = opt.state[x]
        if k >= 1:
            d = lbfgs_direction(state["prev_flat_grad"], state["old_stps"], state["old_dirs"])
            assert (d - state["d"]).abs().max() < 1e-10, k


def test_conjugate_gradient_solves_spd_systems():
    a = torch.randn(7, 7, dtype=F64, generator=_gen(9))
    m = a @ a.T + 0.1 * torch.eye(7, dtype=F64)
    b = torch.randn(7, dtype=F64, generator=_gen(10))
    x, iters = conjugate_gradient(lambda v: m @ v, b, iters=50, tol=1e-13)
    assert (m @ x - b).abs().max() < 1e-9 and iters <= 50


# ---------------------------------------------------------------------------------------------
# Newton and saddle-free Newton


def _quadratic_closure(opt, x, hess, b):
    def closure():
        opt.zero_grad()
        loss = 0.5 * x @ hess @ x - b @ x
        loss.backward(create_graph=True)
        return loss
    return closure


def test_one_newton_step_solves_a_quadratic():
    a = torch.randn(4, 4, dtype=F64, generator=_gen(11))
    hess, b = a @ a.T + torch.eye(4, dtype=F64), torch.randn(4, dtype=F64, generator=_gen(12))
    x = torch.randn(4, dtype=F64, generator=_gen(13)).requires_grad_(True)
    opt = Newton([x])
    opt.step(_quadratic_closure(opt, x, hess, b))
    assert (x.detach() - torch.linalg.solve(hess, b)).abs().max() < 1e-10
    assert (opt.state[x]["eigenvalues"] - torch.linalg.eigvalsh(hess)).abs().max() < 1e-10


def test_newton_works_with_a_closure_that_only_returns_the_loss_and_with_several_tensors():
    w = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    c = torch.tensor(3.0, dtype=F64, requires_grad=True)
    opt = Newton([w, c], damping=0.0)
    opt.step(lambda: (w ** 2).sum() + 2 * (c - 1) ** 2 + w[0] * c)
    # stationary point of the quadratic: 2 w0 + c = 0, 2 w1 = 0, 4 (c - 1) + w0 = 0
    expected = torch.linalg.solve(torch.tensor([[2.0, 0, 1], [0, 2, 0], [1, 0, 4]], dtype=F64),
                                  torch.tensor([0.0, 0, 4], dtype=F64))
    assert (torch.cat([w.detach(), c.detach()[None]]) - expected).abs().max() < 1e-12


def test_damped_newton_direction_closed_form():
    hess = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=F64)
    g = torch.tensor([1.0, -1.0], dtype=F64)
    expected = -torch.linalg.solve(hess + 0.5 * torch.eye(2, dtype=F64), g)
    assert (newton_direction(g, hess, 0.5) - expected).abs().max() < 1e-12
    x = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = Newton([x], lr=0.7, damping=0.5)
    opt.step(_quadratic_closure(opt, x, hess, -g))  # gradient at 0 is g
    assert (x.detach() - 0.7 * expected).abs().max() < 1e-12


def test_saddle_free_newton_uses_the_absolute_hessian():
    q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=F64, generator=_gen(14)))
    values = torch.tensor([-3.0, -0.5, 0.2, 1.0, 4.0], dtype=F64)
    hess = q @ torch.diag(values) @ q.T
    g = torch.randn(5, dtype=F64, generator=_gen(15))
    abs_h = q @ torch.diag(values.abs() + 0.1) @ q.T
    assert (saddle_free_direction(g, hess, 0.1) + torch.linalg.solve(abs_h, g)).abs().max() < 1e-10
    assert torch.dot(saddle_free_direction(g, hess), g) < 0  # always a descent direction
    x = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = SaddleFreeNewton([x], damping=0.1)
    opt.step(_quadratic_closure(opt, x, hess, -g))
    assert (x.detach() - saddle_free_direction(g, hess, 0.1)).abs().max() < 1e-10


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_krylov_saddle_free_newton_equals_exact_when_k_is_n(damping):
    net, loss = _net_problem(2)
    params = list(net.parameters())
    n = sum(p.numel() for p in params)
    start = [p.detach().clone() for p in params]
    results = []
    for k in (None, n):
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
        opt = SaddleFreeNewton(params, lr=0.5, damping=damping, krylov_dim=k)
        opt.step(lambda: loss(None))
        results.append(flatten([p.detach().clone() for p in params]))
    assert (results[0] - results[1]).abs().max() < 1e-8
    # with fewer Lanczos vectors the step differs
    with torch.no_grad():
        for p, s in zip(params, start):
            p.copy_(s)
    opt = SaddleFreeNewton(params, lr=0.5, damping=damping, krylov_dim=3)
    opt.step(lambda: loss(None))
    assert (flatten([p.detach() for p in params]) - results[0]).abs().max() > 1e-6


def test_saddle_results_of_notebook_08():
    # x^2 - y^2: one Newton step lands on the saddle
    points, _ = run_second_order("newton", get_surface("saddle"), (0.7, -0.4), 1)
    assert points[1].abs().max() < 1e-12
    # quartic saddle: Newton converges to the saddle, saddle-free Newton to a minimum (0, +-1)
    quartic = get_surface("quartic_saddle")
    newton, _ = run_second_order("newton", quartic, (1.0, 0.3), 10)
    sfn, _ = run_second_order("sfn", quartic, (1.0, 0.3), 10)
    sfn_neg, _ = run_second_order("sfn", quartic, (1.0, -0.3), 10)
    assert newton[-1].abs().max() < 1e-10
    assert (sfn[-1] - torch.tensor([0.0, 1.0], dtype=F64)).abs().max() < 1e-10
    assert (sfn_neg[-1] - torch.tensor([0.0, -1.0], dtype=F64)).abs().max() < 1e-10
    # monkey saddle: Newton halves the distance every step (f is homogeneous of degree 3: H x = 2 g)
    monkey, _ = run_second_order("newton", get_surface("monkey_saddle"), (0.8, 0.3), 6)
    ratios = monkey[1:].norm(dim=1) / monkey[:-1].norm(dim=1)
    assert (ratios - 0.5).abs().max() < 1e-12


def test_run_second_order_reports_divergence():
    points, diverged_at = run_second_order("sfn", get_surface("saddle"), (0.5, 0.5), 50)
    assert diverged_at is not None and torch.isfinite(points).all() and points.shape == (51, 2)


def test_invalid_hyperparameters():
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        Newton([x], lr=-1)
    with pytest.raises(ValueError, match="Invalid damping value"):
        SaddleFreeNewton([x], damping=-0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        Newton([{"params": [x]}, {"params": [torch.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="closure"):
        Newton([x]).step(None)


def test_newton_leaves_no_graph_on_the_gradients():
    x = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    opt = Newton([x])
    opt.step(_quadratic_closure(opt, x, torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64)))
    assert x.grad is not None and not x.grad.requires_grad


def test_newton_says_how_to_fix_a_closure_whose_backward_freed_the_graph():
    x = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    opt = SaddleFreeNewton([x])

    def closure():
        opt.zero_grad()
        loss = (x ** 2).sum() - x.prod()
        loss.backward()
        return loss

    with pytest.raises(ValueError, match="create_graph=True"):
        opt.step(closure)
    assert Newton.create_graph and SaddleFreeNewton.create_graph
