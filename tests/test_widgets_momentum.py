"""The momentum panel of notebook 02 (course_lib.widgets.momentum), without a browser: the update function runs
and draws, a divergence is drawn and not raised, the panel redraws when a slider moves, and a slider move is fast
because the rate map and the contour image are computed once per condition number."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, png, texts  # noqa: E402
from course_lib import widgets  # noqa: E402
from course_lib.quadratics import momentum_rate, optimal_momentum  # noqa: E402
from course_lib.widgets import momentum as panel_module  # noqa: E402


def drawn_points(ax) -> int:
    return sum(len(line.get_xdata()) for line in ax.get_lines()) + len(ax.get_images())


CONVERGING = [dict(), dict(lr=3.3, beta=0.67), dict(lr=0.05, beta=0.99, steps=300), dict(lr=1.0, beta=0.0, kappa=1.0),
              dict(lr=2.0, beta=0.5, kappa=1000.0, steps=10)]


@pytest.mark.parametrize("values", CONVERGING)
def test_update_draws_three_panels(values):
    fig = widgets.momentum_update(**values)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 3
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig)), values
    assert "diverged" not in texts(fig)
    assert png(fig)[:4] == b"\x89PNG"


def test_the_panel_shows_the_numbers_of_the_theory():
    fig = widgets.momentum_update(lr=1.0, beta=0.5, kappa=100.0)
    q = panel_module._problem(100.0, panel_module.math.pi / 6)[0]
    rate = momentum_rate(1.0, 0.5, q.eigenvalues)
    titles = [ax.get_title() for ax in fig.axes]
    assert f"rate ρ = {rate:.4g}" in titles[1]
    lr_opt, beta_opt = optimal_momentum(q.mu, q.L)
    assert f"η* = {lr_opt:.3g}, β* = {beta_opt:.3g}" in titles[2]
    # the current point is marked on the rate map
    marker = [line for line in fig.axes[2].get_lines() if line.get_label() == "(η, β)"]
    assert len(marker) == 1 and tuple(marker[0].get_xydata()[0]) == (1.0, 0.5)


def test_moving_a_slider_changes_the_picture():
    assert png(widgets.momentum_update(lr=1.0, beta=0.5)) != png(widgets.momentum_update(lr=1.0, beta=0.8))
    assert png(widgets.momentum_update(kappa=10.0)) != png(widgets.momentum_update(kappa=100.0))


@pytest.mark.parametrize("values", [dict(lr=4.1, beta=0.2), dict(lr=3.0, beta=0.3, steps=300),
                                    dict(lr=4.2, beta=0.0, kappa=1.0, steps=50), dict(lr=2.5, beta=0.1, kappa=1000.0)])
def test_divergence_is_drawn_not_raised(values):
    fig = widgets.momentum_update(**values)
    assert "diverged at step" in texts(fig)
    assert drawn_points(fig.axes[0]) > 0 and drawn_points(fig.axes[1]) > 0
    png(fig)


def test_divergence_step_is_where_the_error_passes_100_times_the_start():
    fig = widgets.momentum_update(lr=4.1, beta=0.2, kappa=100.0, steps=100)
    q = panel_module._problem(100.0, panel_module.math.pi / 6)[0]
    x0 = torch.tensor(panel_module.MOMENTUM_START, dtype=torch.float64)
    from course_lib.quadratics import heavy_ball

    errors = torch.linalg.vector_norm(heavy_ball(q.A, q.b, x0, 4.1, 0.2, 100) - q.minimizer, dim=1)
    first = int(torch.nonzero(errors > 100 * errors[0])[0, 0])
    assert f"diverged at step {first}" in texts(fig)


def test_overflow_to_nan_is_drawn_not_raised():
    fig = widgets.momentum_update(lr=4.2, beta=0.99, kappa=1.0, steps=300)  # overflows to inf, then nan
    assert "diverged at step" in texts(fig)
    png(fig)


def test_rate_map_is_cached_and_is_the_rate():
    panel_module._problem.cache_clear()
    widgets.momentum_update(kappa=30.0)
    widgets.momentum_update(kappa=30.0, lr=2.0, beta=0.1)
    info = panel_module._problem.cache_info()
    assert info.misses == 1 and info.hits >= 1  # the second move recomputed nothing
    q, _, _, _, _, speed = panel_module._problem(30.0, panel_module.math.pi / 6)
    lrs = np.linspace(0, panel_module.LR_MAX, speed.shape[1])
    betas = np.linspace(0, panel_module.BETA_MAX, speed.shape[0])
    for i, j in [(10, 20), (100, 50), (200, 230), (120, 120)]:
        rate = momentum_rate(float(lrs[j]), float(betas[i]), q.eigenvalues)
        assert (np.isnan(speed[i, j]) and rate >= 1) or speed[i, j] == pytest.approx(1 - rate, abs=1e-12)


def test_draw_rate_map_on_any_axes():
    fig, ax = plt.subplots()
    assert widgets.draw_rate_map(100.0, ax, lr=1.0, beta=0.5, colorbar=True) is ax
    assert len(ax.get_images()) == 1 and len(fig.axes) == 2  # the map and its colorbar
    plt.close(fig)


def test_update_leaves_no_pyplot_figures_and_restores_threads():
    threads = torch.get_num_threads()
    before = plt.get_fignums()
    widgets.momentum_update()
    assert plt.get_fignums() == before
    assert torch.get_num_threads() == threads


def test_panel_builds_and_redraws_when_a_slider_moves():
    panel = widgets.momentum_panel(lr=1.0, beta=0.5, kappa=90.0)
    first = panel.figure
    assert isinstance(first, Figure) and panel.error is None
    assert panel.controls["kappa"].value == 100.0  # the nearest condition number the slider offers
    for control in panel.controls.values():
        assert control.continuous_update is False
    before = png(first)
    panel.controls["beta"].value = 0.9
    assert isinstance(panel.figure, Figure) and panel.error is None
    assert png(panel.figure) != before
    panel.controls["lr"].value = panel.controls["lr"].max  # diverges: drawn, no error
    assert panel.error is None and "diverged at step" in texts(panel.figure)
