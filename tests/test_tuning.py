"""course_lib.tuning and course_lib.models: the fair sweep, the selection rule, the reports."""

import math

import pytest
import torch

from course_lib import optim
from course_lib.models import count_parameters, mlp, small_cnn
from course_lib.tuning import compare, comparison_table, fmt, good_range, log_grid, plot_sensitivity, select_best, sweep


def test_log_grid():
    assert log_grid(1e-3, 1, 2) == [0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0]
    assert log_grid(1e-2, 1e-2) == [0.01]
    assert log_grid(1e-4, 1, 1) == [1e-4, 1e-3, 1e-2, 0.1, 1.0]
    with pytest.raises(ValueError):
        log_grid(0, 1)
    with pytest.raises(ValueError):
        log_grid(1, 0.1)


def test_select_best_rule():
    acc = torch.tensor([[0.9, 0.9], [0.95, 0.93], [0.96, 0.92], [0.2, 0.1]])
    loss = torch.tensor([[0.3, 0.3], [0.2, 0.25], [0.15, 0.2], [2.0, 2.0]])
    assert select_best(acc, loss) == 2  # 0.94 = 0.94: tie -> lower mean loss (0.175 < 0.225)
    loss2 = loss.clone()
    loss2[2] = torch.tensor([0.3, 0.3])
    assert select_best(acc, loss2) == 1
    # a diverged seed counts as accuracy 0, whatever accuracy was recorded
    diverged = loss.clone()
    diverged[2, 1] = math.inf
    assert select_best(acc, diverged) == 1
    diverged[1, 0] = math.nan
    assert select_best(acc, diverged) == 0
    # full tie -> smaller learning rate
    assert select_best(torch.ones(3, 2), torch.ones(3, 2)) == 0
    with pytest.raises(ValueError):
        select_best(torch.ones(3), torch.ones(3))


def test_good_range():
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    scores = torch.tensor([[0.5], [0.95], [0.96], [0.1]])
    assert good_range(lrs, scores, tol=0.02) == (1e-2, 1e-1, pytest.approx(1.0))
    low, high, dec = good_range(lrs, scores, tol=0.005)
    assert (low, high, dec) == (1e-1, 1e-1, 0.0)
    assert fmt(0.123456) == "0.1235" and fmt(math.inf) == "inf" and fmt(12345.6) == "1.235e+04"


def _problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(120, 4, generator=g, dtype=torch.float64)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return (X[:80], y[:80]), (X[80:100], y[80:100]), (X[100:], y[100:])


def _model(seed):
    return mlp([4, 8, 2], seed=seed, dtype=torch.float64)


def test_sweep_tables_seeds_and_divergence():
    train, val, test = _problem()
    lrs = [1e-4, 0.3, 1e6]

    class Blowup(optim.SGD):  # a learning rate of 1e6 makes the parameters infinite
        def step(self, closure=None):
            loss = super().step(closure)
            if self.param_groups[0]["lr"] > 1e3:
                with torch.no_grad():
                    for p in self.param_groups[0]["params"]:
                        p.mul_(math.inf)
            return loss

    s = sweep(Blowup, lrs, seeds=(0, 1, 2), model_fn=_model, train_data=train, val_data=val, test_data=test,
              epochs=4, batch_size=16, keep_histories=True, progress=False)
    assert s.train_loss.shape == (3, 3) and s.diverged[2].all() and not s.diverged[:2].any()
    assert s.best == 1 and s.best_lr == 0.3 and not s.best_at_edge
    assert (s.val_accuracy[2] == 0).all() and torch.isinf(s.val_loss[2]).all()
    assert s.histories[2][0].diverged_at is not None
    assert s.train_loss[1].mean() < s.train_loss[0].mean()
    # each table entry is reproducible by hand: the same model, the same batches
    from course_lib.training import evaluate, fit

    model = _model(1)
    fit(model, Blowup(model.parameters(), lr=0.3), train, epochs=4, batch_size=16,
        generator=torch.Generator().manual_seed(1), progress=False)
    assert s.val_accuracy[1, 1].item() == evaluate(model, val)[1]
    assert s.test_loss[1, 1].item() == pytest.approx(evaluate(model, test)[0], rel=1e-12)
    assert s.histories[1][1].steps == 20
    # different seeds give different models
    assert s.train_loss[1, 0] != s.train_loss[1, 1]
    mean, std = s.at_best("test_accuracy")
    assert mean == pytest.approx(s.test_accuracy[1].mean().item()) and std >= 0
    row = s.summary()
    assert row["diverged_runs"] == 3 and row["best_lr"] == 0.3


def test_compare_same_budget_and_kwargs_and_report():
    train, val, test = _problem()
    res = compare({"sgd": optim.SGD, "heavy": (optim.SGD, {"momentum": 0.9}), "adam": optim.Adam},
                  [0.01, 0.1], seeds=(0, 1), model_fn=_model, train_data=train, val_data=val, test_data=test,
                  epochs=2, batch_size=40, progress=False, keep_histories=True)
    assert list(res) == ["sgd", "heavy", "adam"]
    assert all(s.lrs == [0.01, 0.1] and s.seeds == [0, 1] for s in res.values())
    assert all(h.steps == 4 for s in res.values() for row in s.histories for h in row)
    assert not torch.equal(res["sgd"].train_loss, res["heavy"].train_loss)
    text = comparison_table(res)
    assert text.splitlines()[0].startswith("optimizer") and len(text.splitlines()) == 5
    for name in res:
        assert name in text
    # digits= rounds the means (the spreads to at most 2 digits); a bad value is refused
    best_row = max((s.summary() for s in res.values()), key=lambda r: r["test_accuracy"])
    short = comparison_table(res, digits=2).splitlines()[2]
    assert short.startswith(best_row["optimizer"]) and fmt(best_row["train_loss"], 2) + " +- " in short
    with pytest.raises(ValueError):
        comparison_table(res, digits=0)
    ax = plot_sensitivity(res)
    assert len(ax.get_lines()) == 6
    import matplotlib.pyplot as plt

    plt.close("all")


def test_regression_sweep_selects_by_validation_loss():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(60, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    model_fn = lambda seed: mlp([3, 1], seed=seed, dtype=torch.float64)  # noqa: E731
    s = sweep(optim.SGD, [1e-3, 0.1, 1e4], seeds=(0, 1), model_fn=model_fn, train_data=(X[:40], y[:40]),
              val_data=(X[40:], y[40:]), epochs=60, progress=False)
    assert s.diverged[2].all() and s.best == 1 and torch.isnan(s.test_loss).all()


def test_sweep_with_a_scheduler_and_bad_arguments():
    train, val, _ = _problem()
    s = sweep(optim.Adam, [0.05], seeds=(0,), model_fn=_model, train_data=train, val_data=val, epochs=3,
              batch_size=40, keep_histories=True, track_val=True, progress=False,
              scheduler_fn=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.1))
    h = s.histories[0][0]
    assert h.lr == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005]) and len(h.val_loss) == 3
    assert torch.isnan(s.test_accuracy).all()
    for bad in ({"lrs": []}, {"lrs": [-1.0]}, {"seeds": (1, 1)}):
        kw = {"lrs": [0.1], "seeds": (0,), **bad}
        with pytest.raises(ValueError):
            sweep(optim.SGD, kw["lrs"], kw["seeds"], model_fn=_model, train_data=train, val_data=val, progress=False)


def test_models():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = mlp([64, 32, 10], seed=3), mlp([64, 32, 10], seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(mlp([64, 32, 10], seed=4)[0].weight, a[0].weight)
    assert count_parameters(a) == 64 * 32 + 32 + 32 * 10 + 10 and a(torch.zeros(5, 64)).shape == (5, 10)
    assert isinstance(mlp([3, 4, 4, 2], activation="tanh")[1], torch.nn.Tanh)
    cnn = small_cnn(seed=0, dtype=torch.float64)
    assert cnn(torch.zeros(7, 1, 8, 8, dtype=torch.float64)).shape == (7, 10) and count_parameters(cnn) == 1898
    for bad in (lambda: mlp([3]), lambda: mlp([3, 0]), lambda: mlp([3, 2], activation="swishy"),
                lambda: small_cnn(channels=(0, 4))):
        with pytest.raises(ValueError):
            bad()


def test_models_on_the_device(device):
    m = mlp([4, 3], seed=0, device=device)
    assert m[0].weight.device.type == device.type
    c = small_cnn(seed=0, device=device)
    assert c(torch.zeros(2, 1, 8, 8, device=device)).shape == (2, 10)
