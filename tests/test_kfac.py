"""K-FAC (course_lib.second_order.KFAC): the Fisher of one linear layer is exactly the Kronecker product of the
factors; one undamped step solves linear least squares; running averages, inverse refresh, sampling, training."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_lib.second_order import KFAC, kfac_direction, kfac_factors

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _data(b=40, din=4, dout=3, seed=0):
    return (torch.randn(b, din, dtype=F64, generator=_gen(seed)),
            torch.randn(b, dout, dtype=F64, generator=_gen(seed + 1)))


def _closure(opt, model, X, Y, loss="mse"):
    def closure():
        opt.zero_grad()
        out = model(X)
        value = F.mse_loss(out, Y) if loss == "mse" else F.cross_entropy(out, Y)
        value.backward()
        return value
    return closure


def _with_ones(X):
    return torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], dim=1)


def _exact_fisher_linear(X, dout, output_fisher):
    """E_x E_{y ~ model}[grad grad^T] of a linear layer, for weights [W, b] flattened row by row (W is out x in+1)."""
    Xb = _with_ones(X)
    total = 0
    for i in range(X.shape[0]):
        jac = torch.kron(torch.eye(dout, dtype=F64), Xb[i][None])  # d output / d vec_row([W, b])
        out_fisher = output_fisher(i)
        total = total + jac.T @ out_fisher @ jac
    return total / X.shape[0]


def test_fisher_of_one_linear_layer_is_the_kronecker_product_mse():
    X, Y = _data()
    layer = nn.Linear(4, 3).double()
    opt = KFAC(layer, lr=0.0, damping=0.0, fisher="exact", loss="mse")
    opt.step(_closure(opt, layer, X, Y))
    state = opt.state[layer.weight]
    # torch's mse_loss (mean over outputs too) is the negative log-likelihood of N(f, (out/2) I): output Fisher (2/out) I
    fisher = _exact_fisher_linear(X, 3, lambda i: 2 / 3 * torch.eye(3, dtype=F64))
    # row-major vec of W: the Fisher is S (x) A (Martens & Grosse, who call S "G", write A (x) G for column-major vec)
    assert (fisher - torch.kron(state["S"], state["A"])).abs().max() < 1e-12
    assert torch.allclose(state["A"], _with_ones(X).T @ _with_ones(X) / 40, atol=1e-14)


def test_empirical_fisher_is_not_the_kronecker_product_of_the_true_fisher():
    # Kunstner, Balles & Hennig (2019): the empirical Fisher uses the training targets, so its S depends on the
    # residuals; for one linear layer A (x) S_emp misses the true Fisher by O(1), and S_emp is the residuals' moment
    X, Y = _data()
    layer = nn.Linear(4, 3).double()
    opt = KFAC(layer, lr=0.0, damping=0.0, fisher="empirical", loss="mse")
    opt.step(_closure(opt, layer, X, Y))
    state = opt.state[layer.weight]
    fisher = _exact_fisher_linear(X, 3, lambda i: 2 / 3 * torch.eye(3, dtype=F64))
    error = (fisher - torch.kron(state["S"], state["A"])).norm() / fisher.norm()
    assert error > 0.1
    with torch.no_grad():
        residual_grads = 2 / 3 * (layer(X) - Y)  # d mse / d output per example, times the batch size
    assert torch.allclose(state["S"], residual_grads.T @ residual_grads / 40, atol=1e-12)


def test_fisher_of_one_linear_layer_is_the_kronecker_product_only_approximately_for_softmax():
    # with a softmax output S depends on the input, so A (x) S is an approximation: close, not equal
    X, _ = _data(seed=3)
    y = torch.randint(0, 3, (40,), generator=_gen(4))
    layer = nn.Linear(4, 3).double()
    opt = KFAC(layer, lr=0.0, damping=0.0, fisher="exact", loss="cross_entropy")
    opt.step(_closure(opt, layer, X, y, loss="ce"))
    p = torch.softmax(layer(X), -1).detach()
    fisher = _exact_fisher_linear(X, 3, lambda i: torch.diag(p[i]) - torch.outer(p[i], p[i]))
    state = opt.state[layer.weight]
    kron = torch.kron(state["S"], state["A"])
    expected_g = sum(torch.diag(p[i]) - torch.outer(p[i], p[i]) for i in range(40)) / 40
    assert (state["S"] - expected_g).abs().max() < 1e-12
    assert (fisher - kron).abs().max() > 1e-6
    assert (fisher - kron).norm() / fisher.norm() < 0.5


def test_sampled_fisher_is_unbiased():
    X, Y = _data(b=4000, din=2, dout=2, seed=5)
    layer = nn.Linear(2, 2).double()
    opt = KFAC(layer, lr=0.0, damping=0.0, fisher="sampled", loss="mse", generator=_gen(0))
    opt.step(_closure(opt, layer, X, Y))
    g = opt.state[layer.weight]["S"]
    assert (g - torch.eye(2, dtype=F64)).abs().max() < 0.1  # (2/out) I with out = 2; 4000 samples
    assert (g - torch.eye(2, dtype=F64)).abs().max() > 0  # a sample, not the expectation


@pytest.mark.parametrize("fisher", ["exact", "sampled", "empirical"])
def test_one_undamped_step_lands_on_the_least_squares_solution(fisher):
    X, Y = _data(seed=7)
    layer = nn.Linear(4, 3).double()
    opt = KFAC(layer, lr=1.0, damping=0.0, fisher=fisher, loss="mse", generator=_gen(1))
    opt.step(_closure(opt, layer, X, Y))
    solution = torch.linalg.lstsq(_with_ones(X), Y).solution.T
    got = torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach()
    if fisher == "exact":
        assert (got - solution).abs().max() < 1e-10
    else:  # S is a sample (or the empirical Fisher): the step is preconditioned by the wrong S
        assert (got - solution).abs().max() > 1e-6


def test_factors_and_direction_closed_form():
    a = torch.randn(10, 3, dtype=F64, generator=_gen(8))
    g = torch.randn(10, 2, dtype=F64, generator=_gen(9))
    A, S = kfac_factors(a, g)
    ab = _with_ones(a)
    assert torch.allclose(A, ab.T @ ab / 10) and torch.allclose(S, g.T @ g / 10)
    A0, _ = kfac_factors(a, g, bias=False)
    assert A0.shape == (3, 3)
    grad = torch.randn(2, 4, dtype=F64, generator=_gen(10))
    # undamped: the solution of (A (x) S) vec = vec(grad) in column-major vec
    d = kfac_direction(grad, A, S)
    lhs = torch.kron(A, S) @ d.T.reshape(-1)
    assert (lhs - grad.T.reshape(-1)).abs().max() < 1e-9
    # damped: factored Tikhonov with pi
    delta = 0.1
    pi = ((torch.trace(A) / 4) / (torch.trace(S) / 2)).sqrt()
    expected = torch.linalg.inv(S + pi * delta ** 0.5 * torch.eye(2, dtype=F64)) @ grad @ \
        torch.linalg.inv(A + delta ** 0.5 / pi * torch.eye(4, dtype=F64))
    assert (kfac_direction(grad, A, S, delta) - expected).abs().max() < 1e-12


def test_running_averages_and_inverse_refresh():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    opt = KFAC(model, lr=0.05, damping=1e-2, stat_decay=0.9, inverse_every=3, fisher="exact", loss="mse")
    first = model[0].weight
    history = []
    for k in range(1, 6):
        X, Y = _data(b=16, din=3, dout=2, seed=20 + k)
        batch_a = kfac_factors(X, torch.zeros(16, 1, dtype=F64))[0]
        opt.step(_closure(opt, model, X, Y))
        history.append((batch_a, opt.state[first]["A"].clone(), opt.state[first]["A_inv"].clone()))
    # A_1 = batch; A_k = eps A_{k-1} + (1 - eps) batch, eps = min(1 - 1/k, 0.9)
    expected = history[0][0]
    assert torch.allclose(history[0][1], expected)
    for k in range(2, 6):
        eps = min(1 - 1 / k, 0.9)
        expected = eps * expected + (1 - eps) * history[k - 1][0]
        assert torch.allclose(history[k - 1][1], expected, atol=1e-12)
    # inverses computed at steps 1 and 4 only
    assert torch.equal(history[0][2], history[1][2]) and torch.equal(history[1][2], history[2][2])
    assert not torch.equal(history[2][2], history[3][2])


def test_kfac_trains_a_small_classifier_and_state_dict_round_trips():
    torch.manual_seed(1)
    X = torch.randn(200, 5, generator=_gen(11))
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 0.5).long()
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = KFAC(model, lr=0.2, damping=1e-2, momentum=0.5, weight_decay=1e-4, generator=_gen(2))
    losses = [float(opt.step(_closure(opt, model, X, y, loss="ce")).detach()) for _ in range(40)]
    assert losses[-1] < 0.5 * losses[0]
    state = opt.state_dict()
    opt2 = KFAC(model, lr=0.2)
    opt2.load_state_dict(state)
    assert torch.equal(opt2.state[model[0].weight]["A"], opt.state[model[0].weight]["A"])
    opt.remove_hooks()
    opt2.remove_hooks()
    assert not model._forward_pre_hooks and not model[0]._forward_hooks


def test_parameters_outside_linear_layers_get_a_gradient_step():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1).double()
            self.scale = nn.Parameter(torch.tensor(2.0, dtype=F64))

        def forward(self, x):
            return self.scale * self.linear(x)

    model = Scaled()
    X, Y = _data(b=8, din=2, dout=1, seed=30)
    opt = KFAC(model, lr=0.1, fisher="exact", loss="mse")
    closure = _closure(opt, model, X, Y)
    before = model.scale.detach().clone()
    closure()
    grad = model.scale.grad.clone()
    opt.step(closure)
    assert torch.allclose(model.scale.detach(), before - 0.1 * grad)


def test_invalid_arguments():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        KFAC(model, lr=-1)
    with pytest.raises(ValueError, match="fisher"):
        KFAC(model, fisher="true")
    with pytest.raises(ValueError, match="nn.Module"):
        KFAC(list(model.parameters()))
    with pytest.raises(ValueError, match="no nn.Linear"):
        KFAC(nn.Tanh())
