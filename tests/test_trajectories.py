"""course_lib.trajectories: one run and many runs at once, equal row by row; divergence per row."""

import functools
import math

import pytest
import torch

from course_lib import optim
from course_lib.surfaces import SURFACES, Surface
from course_lib.trajectories import ESCAPE_RADIUS, Trajectory, TrajectoryBatch, run_batch, run_trajectory

# elementwise optimizers: a (B, 2) run must equal B runs of (2,)
ELEMENTWISE = {
    "SGD": (optim.SGD, dict(lr=1e-3)),
    "momentum": (optim.SGD, dict(lr=1e-3, momentum=0.9)),
    "Nesterov": (optim.SGD, dict(lr=1e-3, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "Adagrad": (optim.Adagrad, dict(lr=0.3)),
    "Adadelta": (optim.Adadelta, dict(lr=1.0)),
    "RMSprop": (optim.RMSprop, dict(lr=0.01)),
    "RMSprop centered+momentum": (optim.RMSprop, dict(lr=0.003, centered=True, momentum=0.5)),
    "Adam": (optim.Adam, dict(lr=0.05)),
    "AdamW": (optim.AdamW, dict(lr=0.05)),
    "AMSGrad": (optim.AMSGrad, dict(lr=0.05)),
    "Adamax": (optim.Adamax, dict(lr=0.05)),
    "NAdam": (optim.NAdam, dict(lr=0.05)),
    "AdaBound": (optim.AdaBound, dict(lr=0.05)),
    "torch Adam": (torch.optim.Adam, dict(lr=0.05)),
}


def grid_starts(surface, n=4):
    (x0, x1), (y0, y1) = surface.bounds
    xs = torch.linspace(x0 + 0.1, x1 - 0.1, n, dtype=torch.float64)
    ys = torch.linspace(y0 + 0.1, y1 - 0.1, n, dtype=torch.float64)
    return torch.cartesian_prod(xs, ys)


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_batch_rows_equal_single_runs(name):
    cls, hparams = ELEMENTWISE[name]
    surface = SURFACES["rosenbrock"]
    starts = grid_starts(surface)
    batch = run_batch(cls, surface, starts, 60, **hparams)
    assert isinstance(batch, TrajectoryBatch) and len(batch) == len(starts)
    assert batch.points.shape == (16, 61, 2) and batch.losses.shape == (16, 61) and batch.diverged_at.shape == (16,)
    for i, start in enumerate(starts):
        single = run_trajectory(cls, surface, start, 60, **hparams)
        row = batch[i]
        assert torch.equal(single.points, row.points), f"{name}: row {i} differs from its own run"
        assert torch.equal(single.losses, row.losses)
        assert single.diverged_at == row.diverged_at


def test_batch_with_diverging_rows_equals_single_runs():
    surface = SURFACES["rosenbrock"]
    starts = grid_starts(surface, 5)
    batch = run_batch(optim.SGD, surface, starts, 80, lr=2e-3, momentum=0.9)
    assert 0 < int(batch.diverged.sum()) < len(starts)  # some rows diverge, some do not
    for i, start in enumerate(starts):
        single = run_trajectory(optim.SGD, surface, start, 80, lr=2e-3, momentum=0.9)
        assert torch.equal(single.points, batch[i].points) and single.diverged_at == batch[i].diverged_at
        assert torch.isfinite(single.points).all() and torch.isfinite(single.losses).all()


def test_trajectory_shapes_and_start():
    traj = run_trajectory(optim.Adam, "himmelblau", (0.0, 0.0), 50, lr=0.1)
    assert isinstance(traj, Trajectory) and traj.steps == 50
    assert traj.points.shape == (51, 2) and traj.losses.shape == (51,) and traj.points.dtype == torch.float64
    assert traj.points[0].tolist() == [0.0, 0.0] and traj.diverged_at is None
    assert torch.allclose(traj.losses, SURFACES["himmelblau"](traj.points))
    assert traj.losses[-1] < traj.losses[0]
    assert torch.equal(traj.final_point, traj.points[-1])
    zero_steps = run_trajectory(optim.SGD, "quadratic", (1.0, 1.0), 0, lr=0.1)
    assert zero_steps.points.shape == (1, 2)


def test_divergence_step_and_frozen_tail():
    # 1/2 (x^2 + 2 y^2), lr 2: y is multiplied by 1 - 2 * 2 = -3 per step; |y_k| = 3^k passes 1e6 at k = 13
    traj = run_trajectory(optim.SGD, "quadratic", (1.0, 1.0), 30, lr=2.0)
    assert traj.diverged_at == 13 == math.ceil(math.log(ESCAPE_RADIUS) / math.log(3))
    assert traj.points[12, 1].abs() == 3 ** 12
    assert torch.equal(traj.points[13:], traj.points[12].expand(18, 2))  # the last finite point repeats
    assert torch.equal(traj.losses[13:], traj.losses[12].expand(18))
    smaller_box = run_trajectory(optim.SGD, "quadratic", (1.0, 1.0), 30, lr=2.0, escape_radius=100.0)
    assert smaller_box.diverged_at == 5


def test_a_diverging_row_does_not_touch_the_others():
    starts = torch.tensor([[1.0, 1.0], [1.0, 1e-7], [0.5, -0.5]], dtype=torch.float64)
    batch = run_batch(optim.SGD, "quadratic", starts, 60, lr=1.2)  # y grows by |1 - 2.4| = 1.4 per step
    assert batch.diverged_at.tolist() == [42, -1, 44]  # 1.4^42 > 1e6; row 1 reaches only 1e-7 * 1.4^60 = 58
    alone = run_trajectory(optim.SGD, "quadratic", starts[1], 60, lr=1.2)
    assert torch.equal(alone.points, batch[1].points) and torch.isfinite(batch.points).all()


def test_non_finite_loss_is_divergence_too():
    def cliff(xy):  # finite gradient everywhere, infinite value beyond x = 2
        x = xy[..., 0]
        return torch.where(x > 2, torch.full_like(x, math.inf), x * x + xy[..., 1] ** 2)

    traj = run_trajectory(optim.SGD, cliff, (1.5, 0.0), 20, lr=0.1, maximize=True)  # x grows by 1.2 per step
    assert traj.diverged_at == 2  # 1.5 -> 1.8 -> 2.16
    assert torch.isfinite(traj.losses).all() and traj.points[-1].tolist() == pytest.approx([1.8, 0.0])


def test_unbounded_surfaces_diverge_cleanly():
    for name in ("saddle", "monkey_saddle"):
        batch = run_batch(optim.SGD, name, grid_starts(SURFACES[name]), 400, lr=0.2)
        assert batch.diverged.any() and torch.isfinite(batch.points).all()
    everything = run_trajectory(optim.SGD, "saddle", (0.0, 1.0), 500, lr=0.5)  # y doubles: gone by step 20
    assert everything.diverged_at == 20 and torch.isfinite(everything.points).all()
    assert torch.equal(everything.points[-1], everything.points[19])


def test_optimizer_as_factory_partial_or_name():
    by_class = run_trajectory(optim.Adam, "beale", (1.0, 1.5), 30, lr=0.05)
    by_partial = run_trajectory(functools.partial(optim.Adam, lr=0.05), "beale", (1.0, 1.5), 30)
    by_lambda = run_trajectory(lambda params: optim.Adam(params, lr=0.05), "beale", (1.0, 1.5), 30)
    by_name = run_trajectory("Adam", "beale", (1.0, 1.5), 30, lr=0.05)
    for other in (by_partial, by_lambda, by_name):
        assert torch.equal(by_class.points, other.points)
    with pytest.raises(ValueError, match="unknown optimizer"):
        run_trajectory("Adamm", "beale", (1.0, 1.5), 3)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        run_trajectory(optim.Adam, "beale", (1.0, 1.5), 3, lr=-1.0)


def test_lbfgs_runs_with_a_closure():
    traj = run_trajectory(torch.optim.LBFGS, "rosenbrock", (-1.2, 1.0), 20, lr=1.0, line_search_fn="strong_wolfe")
    assert float(traj.losses[-1]) < 1e-8


def test_bad_starts_are_refused():
    with pytest.raises(ValueError, match="one point"):
        run_trajectory(optim.SGD, "quadratic", [[1.0, 2.0]], 3, lr=0.1)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        run_batch(optim.SGD, "quadratic", [1.0, 2.0], 3, lr=0.1)
    with pytest.raises(ValueError, match="finite"):
        run_trajectory(optim.SGD, "quadratic", [math.nan, 2.0], 3, lr=0.1)
    with pytest.raises(ValueError, match="shape"):
        run_batch(optim.SGD, "quadratic", torch.zeros(4, 3), 3, lr=0.1)


def test_basins_of_himmelblau():
    surface = SURFACES["himmelblau"]
    near = torch.tensor(surface.minima, dtype=torch.float64) + 0.3
    batch = run_batch(optim.SGD, surface, near, 300, lr=0.01)
    assert batch.nearest_minimum().tolist() == [0, 1, 2, 3]
    far = run_batch(optim.SGD, surface, near, 3, lr=0.01)
    assert far.nearest_minimum().tolist() == [-1, -1, -1, -1]
    assert run_batch(optim.SGD, "saddle", near, 3, lr=0.01).nearest_minimum().tolist() == [-1] * 4


def test_any_device_and_float32(device):
    starts = grid_starts(SURFACES["rosenbrock"]).to(device=device, dtype=torch.float32)
    batch = run_batch(optim.Adam, "rosenbrock", starts, 20, lr=0.05)
    assert batch.points.device == starts.device and batch.points.dtype == torch.float32
    traj = run_trajectory(optim.Adam, "rosenbrock", starts[3], 20, lr=0.05)
    assert torch.allclose(traj.points, batch[3].points)


def test_a_custom_surface_without_closed_form_uses_autograd():
    bowl = Surface("bowl", lambda x, y: x * x + y * y, lambda x, y: (2 * x, 2 * y), ((-1, 1), (-1, 1)))
    closed = run_trajectory(optim.SGD, bowl, (0.5, -0.5), 10, lr=0.1)
    autograd = run_trajectory(optim.SGD, lambda xy: (xy ** 2).sum(-1), (0.5, -0.5), 10, lr=0.1)
    assert torch.allclose(closed.points, autograd.points)
