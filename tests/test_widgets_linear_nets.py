"""The panel of notebook 07 (course_lib.widgets.linear_nets), without a browser."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib import widgets  # noqa: E402
from course_lib.widgets.linear_nets import INITS, TARGET, TARGET_SINGULAR_VALUES, linear_net_run  # noqa: E402


def test_exported_from_widgets():
    assert {"linear_net_update", "linear_net_panel"} <= set(widgets.__all__)


def test_target_has_the_stated_singular_values():
    torch.testing.assert_close(torch.linalg.svdvals(TARGET), torch.tensor(TARGET_SINGULAR_VALUES, dtype=torch.float64))


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("depth", [1, 3, 6])
def test_update_draws_three_plots(init, depth):
    fig = widgets.linear_net_update(depth=depth, init=init, steps=60)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 3
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    loss_line = fig.axes[0].get_lines()[0]
    assert len(loss_line.get_xdata()) == 61
    # one curve per singular value of every layer (4 x 4 layers), besides the dotted s^(1/N) guides
    assert len(fig.axes[1].get_lines()) == 4 * depth + len(TARGET_SINGULAR_VALUES)
    assert "diverged" not in texts(fig)
    assert png(fig)[:4] == b"\x89PNG"


def test_balanced_start_has_the_gaussian_product_and_stays_balanced():
    gaussian = linear_net_run(3, 0.5, 0.02, "gaussian", 20)
    balanced = linear_net_run(3, 0.5, 0.02, "balanced", 20)
    assert gaussian.loss[0] == pytest.approx(balanced.loss[0], rel=1e-12)  # same end-to-end start
    assert balanced.balancedness[0] < 1e-12 < gaussian.balancedness[0]
    assert max(balanced.balancedness) < 1e-2


def test_a_diverging_run_is_named_not_raised():
    fig = widgets.linear_net_update(depth=4, scale=1.5, lr=1.0, init="gaussian", steps=100)
    assert "diverged at step" in texts(fig)
    assert drawn_points(fig.axes[0]) > 0
    png(fig)


def test_moving_a_control_changes_the_picture():
    a = widgets.linear_net_update(depth=3, lr=0.05, steps=100)
    b = widgets.linear_net_update(depth=3, lr=0.01, steps=100)
    ya, yb = a.axes[0].get_lines()[0].get_ydata(), b.axes[0].get_lines()[0].get_ydata()
    assert ya[-1] < yb[-1]
    assert png(a) != png(b)


def test_bad_init_raises_value_error():
    with pytest.raises(ValueError, match="init"):
        linear_net_run(3, 0.3, 0.05, "xavier", 10)


def test_panel_builds_and_redraws():
    panel = widgets.linear_net_panel(steps=50)
    assert panel.error is None and isinstance(panel.figure, Figure)
    first = png(panel.figure)
    panel.controls["init"].value = "gaussian"
    assert panel.error is None and png(panel.figure) != first
    panel.controls["depth"].value = 5
    assert panel.error is None and len(panel.figure.axes[1].get_lines()) == 4 * 5 + 4
