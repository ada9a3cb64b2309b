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


# --- the digits (scikit-learn's bundled copy) ---

from course_lib.data import DigitsData, load_digits  # noqa: E402


def test_digits_split_sizes_disjoint_and_complete():
    from sklearn.datasets import load_digits as sk_load

    data = load_digits(seed=0)
    sizes = [data.y_train.shape[0], data.y_val.shape[0], data.y_test.shape[0]]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == round(0.2 * 1797)
    assert data.X_train.shape == (sizes[0], 64) and data.y_train.dtype == torch.int64
    # every sample appears exactly once: undo the standardization and match the raw rows
    raw = torch.as_tensor(sk_load().data, dtype=torch.float64)
    back = torch.cat([data.split(s)[0].double() * data.std.double() + data.mean.double() for s in ("train", "val", "test")])
    key = lambda rows: sorted(map(tuple, rows.round().long().tolist()))  # noqa: E731
    assert key(back) == key(raw)
    labels = torch.cat([data.y_train, data.y_val, data.y_test]).bincount()
    assert torch.equal(labels, torch.as_tensor(sk_load().target).bincount())


def test_digits_standardized_with_training_statistics_only():
    data = load_digits(seed=1, dtype=torch.float64)
    mean, std = data.X_train.mean(0), data.X_train.std(0)
    constant = data.std == 1.0
    assert torch.allclose(mean, torch.zeros(64, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(std[~constant & (std > 0)], torch.ones(64, dtype=torch.float64)[~constant & (std > 0)])
    # validation features are NOT standardized with their own statistics
    assert data.X_val.mean(0).abs().max() > 1e-3


def test_digits_seeds_images_and_global_rng():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)
    img = a.images("val")
    assert img.shape == (a.y_val.shape[0], 1, 8, 8) and torch.equal(img.reshape(-1, 64), a.X_val)
    im = load_digits(seed=3, as_images=True)
    assert im.X_train.shape[1:] == (1, 8, 8) and torch.equal(im.X_train.reshape(-1, 64), a.X_train)
    assert torch.equal(im.as_flat().X_test, a.X_test) and torch.equal(a.as_images().X_val, im.X_val)
    assert a.train[0] is a.X_train and a.val[1] is a.y_val and a.test[0] is a.X_test
    assert "train=" in repr(a)


def test_digits_bad_arguments():
    with pytest.raises(ValueError):
        load_digits(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError):
        load_digits(val_fraction=-0.1)
    with pytest.raises(ValueError):
        load_digits().split("dev")


def test_digits_on_the_device(device):
    data = load_digits(device=device)
    assert data.X_train.device.type == device.type and data.y_val.device.type == device.type
    assert isinstance(data.to("cpu"), DigitsData) and data.to(torch.float64).X_test.dtype == torch.float64
    assert data.to(torch.float64).y_test.dtype == torch.int64
