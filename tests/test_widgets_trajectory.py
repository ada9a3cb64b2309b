"""The panel of notebook 12 (course_lib.widgets.trajectory), without a browser."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib import widgets  # noqa: E402
from course_lib.widgets.trajectory import (EOS_STEPS, LEARNING_RATES, completion_problem, completion_run,  # noqa: E402
                                           eos_problem, eos_run)


def test_exported_from_widgets():
    assert {"trajectory_update", "trajectory_panel"} <= set(widgets.__all__)


def test_problems():
    problem = eos_problem()
    params = problem.init()
    assert sum(p.numel() for p in params) == 3466 and problem.X.shape == (300, 64)
    target, mask = completion_problem()
    assert torch.linalg.matrix_rank(target).item() == 3 and mask.mean().item() == pytest.approx(0.4)


def test_update_draws_three_plots_with_the_threshold_line():
    fig = widgets.trajectory_update(lr=0.5, depth=2, scale=1e-3)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 3
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    sharp = fig.axes[0]
    threshold = [line for line in sharp.get_lines() if len(set(line.get_ydata())) == 1]
    assert threshold and threshold[0].get_ydata()[0] == pytest.approx(4.0)
    assert len(fig.axes[1].get_lines()[0].get_xdata()) == EOS_STEPS + 1
    assert "diverged" not in texts(fig)
    assert png(fig)[:4] == b"\x89PNG"


def test_the_sharpness_reaches_two_over_lr_and_runs_are_cached():
    run = eos_run(0.5)
    assert run is eos_run(0.5)
    late = [v for s, v in zip(run.sharpness_steps, run.sharpness) if s >= EOS_STEPS // 2]
    assert 0.9 * 4.0 < sorted(late)[len(late) // 2] < 1.1 * 4.0
    assert max(run.sharpness) > 4.0 and run.sharpness[0] < 0.6 * 4.0


def test_depth_changes_the_singular_values():
    shallow, deep = completion_run(1, 1e-4), completion_run(3, 1e-4)
    assert shallow.test_error[-1] > 0.9 and deep.test_error[-1] < 0.05
    a = widgets.trajectory_update(lr=0.5, depth=1, scale=1e-4)
    b = widgets.trajectory_update(lr=0.5, depth=3, scale=1e-4)
    assert png(a) != png(b)


def test_panel_builds_and_redraws():
    panel = widgets.trajectory_panel()
    assert panel.error is None and isinstance(panel.figure, Figure)
    assert list(panel.controls["lr"].options) == list(LEARNING_RATES)
    assert all(not getattr(c, "continuous_update", False) for c in panel.controls.values())
    first = png(panel.figure)
    panel.controls["depth"].value = 2
    assert panel.error is None and png(panel.figure) != first
