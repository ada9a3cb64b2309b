"""The second-order panel of notebook 08 (course_lib.widgets.second_order), without a browser."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib.widgets import second_order as panel_module  # noqa: E402


@pytest.mark.parametrize("values", [dict(), dict(surface="saddle", method="newton"),
                                    dict(surface="monkey_saddle", method="all", x0=0.8, y0=0.2),
                                    dict(method="sfn", damping=0.5, steps=30)])
def test_update_draws_paths_and_distances(values):
    fig = panel_module.second_order_update(**values)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 2
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    assert png(fig)[:4] == b"\x89PNG"


def test_newton_lands_on_the_saddle_and_saddle_free_newton_leaves_it():
    fig = panel_module.second_order_update(surface="quartic_saddle", method="all", x0=1.0, y0=0.3, steps=10)
    labels = [line.get_label() for line in fig.axes[1].get_lines()]
    assert "Newton: < 1e-12" in labels  # on the saddle to the last bits
    assert any(label.startswith("saddle-free Newton: 1") for label in labels)  # at (0, 1): distance 1


def test_moving_a_slider_changes_the_picture():
    base = png(panel_module.second_order_update(method="sfn"))
    assert base != png(panel_module.second_order_update(method="sfn", damping=1.0))
    assert base != png(panel_module.second_order_update(method="sfn", y0=-0.3))


def test_divergence_is_drawn_not_raised():
    fig = panel_module.second_order_update(surface="saddle", method="sfn", x0=0.5, y0=0.5, steps=40)
    assert "diverged at step" in texts(fig)
    fig = panel_module.second_order_update(surface="saddle", method="all", x0=0.5, y0=0.5, steps=40)
    assert "saddle-free Newton: diverged at step" in texts(fig)


def test_bad_values_raise_clear_errors_and_the_panel_survives():
    with pytest.raises(ValueError, match="surface"):
        panel_module.second_order_update(surface="rosenbrock")
    panel = panel_module.second_order_panel()
    assert panel.figure is not None and panel.error is None
    panel.controls["damping"].value = 1.0
    assert panel.error is None
    panel.controls["surface"].value = "monkey_saddle"
    assert panel.figure is not None
