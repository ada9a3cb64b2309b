"""course_lib.training.fit: the closure contract, full batch vs mini-batches, schedulers, divergence."""

import math
import warnings

import pytest
import torch

from course_lib import optim
from course_lib.training import History, evaluate, fit


def _regression(n=40, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.randn(d, 1, generator=g, dtype=torch.float64)
    return X, y


def _linear(d=3, out=1):
    torch.manual_seed(0)
    return torch.nn.Linear(d, out, bias=False).double()


def test_full_batch_fit_is_gradient_descent_closed_form():
    # full-batch GD on 1/n ||Xw - y||^2 (mse): w <- w - lr * 2/n X^T (Xw - y)
    X, y = _regression()
    model = _linear()
    w = model.weight.detach().clone().T
    lr = 0.05
    hist = fit(model, optim.SGD(model.parameters(), lr=lr), (X, y), epochs=7, progress=False)
    losses = []
    for _ in range(7):
        r = X @ w - y
        losses.append(float((r ** 2).mean()))
        w = w - lr * 2 / X.shape[0] * X.T @ r
    assert torch.allclose(model.weight.detach().T, w, atol=1e-12)
    assert hist.train_loss == pytest.approx(losses, rel=1e-12)
    assert hist.steps == 7 and hist.epoch_train_loss == pytest.approx(losses) and hist.diverged_at is None
    assert hist.lr == [lr] * 7 and hist.val_loss == [] and hist.seconds >= 0 and "steps=7" in repr(hist)


def test_minibatches_follow_the_generator_and_visit_everything():
    X, y = _regression(n=10)
    model = _linear()
    w = model.weight.detach().clone().T
    lr, bs = 0.1, 4
    fit(model, optim.SGD(model.parameters(), lr=lr), (X, y), epochs=2, batch_size=bs,
        generator=torch.Generator().manual_seed(7), progress=False)
    g = torch.Generator().manual_seed(7)
    for _ in range(2):
        perm = torch.randperm(10, generator=g)
        for i in range(0, 10, bs):
            idx = perm[i:i + bs]
            r = X[idx] @ w - y[idx]
            w = w - lr * 2 / len(idx) * X[idx].T @ r
    assert torch.allclose(model.weight.detach().T, w, atol=1e-12)


def test_fit_always_passes_a_closure():
    X, y = _regression()
    model = _linear()
    seen = []

    class Recorder(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(closure)
            assert closure is not None
            loss = closure()
            closure()  # a second evaluation (as L-BFGS does) must be harmless
            return super().step() or loss

    hist = fit(model, Recorder(model.parameters(), lr=0.01), (X, y), epochs=3, progress=False)
    assert len(seen) == 3 and all(callable(c) for c in seen) and len(hist.train_loss) == 3


def test_lbfgs_runs_unchanged():
    X, y = _regression()
    model = _linear()
    hist = fit(model, torch.optim.LBFGS(model.parameters(), lr=1, max_iter=20), (X, y), epochs=3, progress=False)
    assert hist.train_loss[-1] < 1e-12 < hist.train_loss[0]


def test_newton_gets_the_graph_of_the_gradient_and_solves_least_squares_in_one_step():
    from course_lib.second_order import Newton

    X, y = _regression()
    model = _linear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about backward(create_graph=True) reference cycles
        hist = fit(model, Newton(model.parameters()), (X, y), epochs=2, progress=False)
    assert hist.train_loss[0] > 1e-3 and hist.train_loss[1] < 1e-20
    assert all(not p.grad.requires_grad for p in model.parameters())


def test_classification_defaults_validation_and_evaluate():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 2, generator=g, dtype=torch.float64)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2).double()
    hist = fit(model, optim.Adam(model.parameters(), lr=0.1), (X, y), epochs=30, val_data=(X, y), progress=False)
    assert len(hist.val_loss) == len(hist.val_accuracy) == 30
    assert hist.val_accuracy[-1] > 0.9 and hist.val_loss[-1] < hist.val_loss[0]
    loss, acc = evaluate(model, (X, y))
    expected = torch.nn.functional.cross_entropy(model(X), y).item()
    assert loss == pytest.approx(expected) and acc == hist.val_accuracy[-1]
    assert evaluate(_linear(2), (X, X[:, :1]))[1] is None


def test_schedulers_per_epoch_and_per_step():
    X, y = _regression()
    model = _linear()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    hist = fit(model, opt, (X, y), epochs=5, batch_size=20, scheduler=sched, progress=False)
    assert hist.lr == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 2)
    opt = optim.Adam(model.parameters(), lr=1.0)
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / 4))
    hist = fit(model, opt, (X, y), epochs=3, batch_size=20, scheduler=warm, scheduler_interval="step",
               progress=False)
    assert hist.lr == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_divergence_stops_and_warns():
    X, y = _regression()
    model = _linear()
    with pytest.warns(RuntimeWarning, match=r"diverged at step \d+"):
        hist = fit(model, optim.SGD(model.parameters(), lr=100.0), (X, y), epochs=500, progress=False)
    k = hist.diverged_at
    assert k is not None and hist.diverged and k < 499
    assert not math.isfinite(hist.train_loss[k]) or k == hist.steps
    assert all(math.isfinite(v) for v in hist.train_loss[:k]) and hist.steps == len(hist.train_loss)
    assert hist.epoch_train_loss == pytest.approx(hist.train_loss[:k])


def test_no_warning_when_fine_and_bad_arguments():
    X, y = _regression()
    model = _linear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(model, optim.SGD(model.parameters(), lr=0.01), (X, y), epochs=2, progress=False)
    opt = optim.SGD(model.parameters(), lr=0.01)
    for kwargs in ({"epochs": -1}, {"batch_size": 0}, {"scheduler_interval": "batch"}):
        with pytest.raises(ValueError):
            fit(model, opt, (X, y), progress=False, **kwargs)
    with pytest.raises(ValueError):
        fit(model, opt, (X, y[:5]), progress=False)
    with pytest.raises(ValueError):
        fit(model, opt, X, progress=False)


def test_schedule_free_style_optimizer_is_switched_for_evaluation():
    X, y = _regression()
    model = _linear()
    modes = []

    class WithModes(torch.optim.SGD):
        def train(self):
            modes.append("train")

        def eval(self):
            modes.append("eval")

    fit(model, WithModes(model.parameters(), lr=0.01), (X, y), epochs=2, val_data=(X, y), progress=False)
    assert modes[0] == "train" and modes[-1] == "eval" and modes.count("eval") == 3


def test_fit_on_the_device(device):
    X, y = (t.to(device) for t in _regression())
    model = _linear().to(device)
    hist = fit(model, optim.Adam(model.parameters(), lr=0.1), (X, y), epochs=3, batch_size=16,
               generator=torch.Generator().manual_seed(0), val_data=(X, y), progress=False)
    assert isinstance(hist, History) and hist.steps == 9 and len(hist.val_loss) == 3
