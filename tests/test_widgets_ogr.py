"""The OGR panel of notebook 09 (course_lib.widgets.ogr), without a browser: it draws the path and the
estimated vs true curvature, reports a divergence instead of raising, and redraws when a slider moves."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib.widgets.ogr import OGR_SURFACES, ogr_panel, ogr_run, ogr_update  # noqa: E402


@pytest.mark.parametrize("values", [dict(), dict(rank=0), dict(rank=1, beta=0.2),
                                    dict(surface="rotated_ill_conditioned_quadratic", steps=10),
                                    dict(surface="rosenbrock", lr=1e-3, steps=60)])
def test_update_draws_path_and_curvature(values):
    fig = ogr_update(**values)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 2
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    assert "diverged" not in texts(fig)
    assert png(fig)[:4] == b"\x89PNG"


def test_the_run_escapes_the_saddle_and_estimates_the_curvature_there():
    run = ogr_run("quartic_saddle", 0.5, 2, 0.01, 40)
    assert torch.allclose(run.trajectory.points[-1], torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-6)
    # near the saddle (first steps) the estimate is the true Hessian diag(1, -1)
    assert torch.allclose(run.estimated[3], run.true[3], atol=1e-3)
    assert run.estimated.shape == run.true.shape == (40, 2)


def test_a_diverging_run_is_drawn_not_raised():
    run = ogr_run("himmelblau", 1.0, None, 1.0, 30)  # beta = 1 remembers nothing: plain GD with lr = 1
    assert run.trajectory.diverged_at is not None
    fig = ogr_update(surface="himmelblau", beta=1.0, rank=0, lr=1.0, steps=30)
    assert "diverged at step" in texts(fig)


def test_panel_redraws_on_slider_move():
    panel = ogr_panel()
    assert panel.error is None and panel.figure is not None
    first, before = panel.figure, panel.image.value
    panel.controls["beta"].value = 0.3
    assert panel.error is None and panel.image.value != before
    assert panel.figure is first  # redrawn into the figure kept for this surface
    assert "β = 0.3" in first.axes[1].get_title()
    panel.controls["surface"].value = OGR_SURFACES[1]
    assert panel.error is None and panel.figure is not first


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_every_rank_draws_what_the_regression_believes(rank):
    """The curvature plot shows estimates for every rank of the slider (rank 1 once showed none: a 1-D model has
    no two eigenvalues, it has one curvature along its direction)."""
    fig = ogr_update(rank=rank, steps=30)
    estimates = [line for line in fig.axes[1].get_lines() if line.get_label().startswith("estimated")]
    assert len(estimates) == (1 if rank == 1 else 2)
    for line in estimates:
        assert np.isfinite(np.asarray(line.get_ydata(), dtype=float)).sum() >= 20, (rank, line.get_label())


def test_rank_one_estimates_the_curvature_along_its_direction():
    # on the quartic saddle from (0.5, 0.001) the one direction kept is the first axis, whose curvature is +1
    run = ogr_run("quartic_saddle", 0.5, 1, 0.01, 10)
    assert torch.isnan(run.estimated[:, 1]).all()
    known = run.estimated[:, 0][~torch.isnan(run.estimated[:, 0])]
    assert len(known) >= 8
    torch.testing.assert_close(known, torch.ones_like(known), atol=1e-3, rtol=0)
