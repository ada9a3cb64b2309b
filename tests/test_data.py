"""course_lib.data: data sets made on the spot from a seed."""

import pytest
import torch

from course_lib.data import make_linear_regression


def test_same_seed_same_data_other_seed_other_data():
    a, b = make_linear_regression(seed=3), make_linear_regression(seed=3)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y) and torch.equal(a.w_true, b.w_true)
    c = make_linear_regression(seed=4)
    assert not torch.equal(a.X, c.X)


def test_the_seed_does_not_depend_on_the_global_rng():
    torch.manual_seed(123)
    a = make_linear_regression(n=30, d=3)
    torch.manual_seed(456)
    b = make_linear_regression(n=30, d=3)
    assert torch.equal(a.X, b.X)


def test_shapes_dtype_and_noise():
    data = make_linear_regression(n=2000, d=7, noise_std=0.3, dtype=torch.float32)
    assert data.X.shape == (2000, 7) and data.y.shape == (2000,) and data.w_true.shape == (7,)
    assert data.X.dtype == torch.float32 and (data.n, data.d) == (2000, 7)
    residual = data.y - data.X @ data.w_true
    assert residual.std().item() == pytest.approx(0.3, rel=0.1)


def test_minimizer_loss_and_gradients():
    data = make_linear_regression(n=200, d=5, seed=1)
    w_star = data.w_star
    assert torch.allclose(data.X.T @ (data.X @ w_star - data.y), torch.zeros(5, dtype=torch.float64), atol=1e-9)
    assert data.loss_star == pytest.approx(float(data.loss(w_star)))
    w = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    data.loss(w).backward()
    assert torch.allclose(data.grad(w.detach()), w.grad)
    assert torch.allclose(data.per_sample_grads(w.detach()).mean(0), w.grad)
    idx = torch.tensor([3, 7, 11])
    wd = w.detach()
    expected = data.X[idx].T @ (data.X[idx] @ wd - data.y[idx]) / 3
    assert torch.allclose(data.grad(wd, idx), expected)
    assert torch.allclose(data.hessian, data.X.T @ data.X / 200)
    batch = torch.stack([wd, w_star])
    assert torch.allclose(data.loss(batch), torch.stack([data.loss(wd), data.loss(w_star)]))


def test_condition_number_is_close_to_kappa():
    data = make_linear_regression(n=5000, d=10, kappa=10.0)
    eig = torch.linalg.eigvalsh(data.hessian)
    assert 5.0 < (eig[-1] / eig[0]).item() < 20.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_linear_regression(n=0)
    with pytest.raises(ValueError):
        make_linear_regression(kappa=0.5)


def test_data_on_the_device(device):
    data = make_linear_regression(n=50, d=3, device=device)
    assert data.X.device.type == device.type
    cpu = make_linear_regression(n=50, d=3)
    assert torch.equal(data.X.cpu(), cpu.X)
    assert data.to("cpu").X.device.type == "cpu"
