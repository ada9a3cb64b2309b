"""course_lib.widgets and course_lib.plotting, without a browser: the update functions run, draw,
and draw a divergence instead of raising; the panels build and redraw when a control moves."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib import plotting, widgets  # noqa: E402
from course_lib.quadratics import ill_conditioned_quadratic  # noqa: E402


UPDATES = {
    "gd_quadratic": (widgets.gd_quadratic_update, [dict(), dict(lr=1.9, kappa=1000.0, steps=200), dict(lr=0.05, kappa=1.0)]),
    "batch_size": (widgets.batch_size_update, [dict(), dict(batch_size=1, lr=0.2, epochs=3), dict(batch_size=500, lr=1.0),
                                               dict(batch_size=4, decay=True, epochs=5)]),
    "taylor": (widgets.taylor_update, [dict(), dict(x=1.0, y=1.0, angle=90.0, radius=0.1), dict(x=-1.8, y=2.8)]),
}


@pytest.mark.parametrize("name", list(UPDATES))
def test_update_functions_draw(name):
    update, cases = UPDATES[name]
    for values in cases:
        fig = update(**values)
        assert isinstance(fig, Figure)
        assert len(data_axes(fig)) >= 2
        assert all(drawn_points(ax) > 0 for ax in data_axes(fig)), f"{name}{values}: an axes is empty"
        assert "diverged" not in texts(fig)
        assert png(fig)[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", list(UPDATES))
def test_moving_a_control_changes_the_picture(name):
    update, cases = UPDATES[name]
    assert png(update(**cases[0])) != png(update(**cases[1]))


@pytest.mark.parametrize("values", [dict(lr=2.5, kappa=10.0), dict(lr=2.2, kappa=1.0, steps=200),
                                    dict(lr=2.5, kappa=1000.0, steps=20)])
def test_gd_divergence_is_drawn_not_raised(values):
    fig = widgets.gd_quadratic_update(**values)
    assert "diverged at step" in texts(fig)
    assert drawn_points(fig.axes[0]) > 0 and drawn_points(fig.axes[1]) > 0
    png(fig)


def test_gd_divergence_step_is_the_first_bad_one():
    fig = widgets.gd_quadratic_update(lr=2.5, kappa=10.0, steps=40)
    # excess loss grows like 1.5^(2k) from the start: it passes 100x at k = ceil(log(100) / log(2.25)) = 6
    assert "diverged at step 6" in texts(fig)


@pytest.mark.parametrize("values", [dict(batch_size=1, lr=1.0), dict(batch_size=8, lr=2.0, epochs=30)])
def test_sgd_divergence_is_drawn_not_raised(values):
    fig = widgets.batch_size_update(**values)
    assert "diverged at step" in texts(fig)
    assert drawn_points(fig.axes[0]) > 0
    png(fig)


def test_update_functions_leave_no_pyplot_figures_and_restore_threads():
    threads = torch.get_num_threads()
    before = plt.get_fignums()
    widgets.gd_quadratic_update()
    widgets.batch_size_update()
    widgets.taylor_update()
    assert plt.get_fignums() == before
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("builder", [widgets.gd_quadratic_panel, widgets.batch_size_panel, widgets.taylor_panel])
def test_panels_build_and_redraw_when_a_control_moves(builder, capsys):
    panel = builder()
    first = panel.figure
    assert isinstance(first, Figure) and panel.error is None
    for control in panel.controls.values():
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False
    control = next(iter(panel.controls.values()))
    options = getattr(control, "options", None)
    control.value = options[-1] if options else control.max  # the observer redraws
    assert isinstance(panel.figure, Figure) and panel.figure is not first
    assert png(panel.figure) != png(first)


def test_panel_survives_an_exception(capsys):
    import ipywidgets

    def broken(x):
        raise RuntimeError("boom")

    panel = widgets.build_panel(broken, {"x": ipywidgets.FloatSlider(value=1.0)})
    panel.controls["x"].value = 2.0  # must not raise
    assert panel.figure is None and panel.error == "RuntimeError: boom"


def test_plotting_functions_take_ax_and_return_it():
    q = ill_conditioned_quadratic(10.0)
    fig, ax = plotting.new_figure()
    assert plotting.contour(q, ((-1, 1), (-1, 1)), ax=ax, minimum=q.minimizer) is ax
    assert plotting.trajectory(torch.zeros(3, 2), ax=ax) is ax
    assert plotting.loss_curve([1.0, 0.1, float("nan"), 0.0], ax=ax) is ax
    fig2, ax2 = plotting.new_figure()
    assert plotting.rate_vs_lr(q.eigenvalues, ax=ax2, measured={0.5: 0.9}) is ax2
    assert plotting.mark_diverged(ax, 3) is ax
    plotting.mark_diverged(ax, 3)
    assert [t.get_text() for t in ax.texts].count("diverged at step 3") == 1
    new_ax = plotting.loss_curve([1.0, 2.0])  # ax=None: a new pyplot figure
    assert new_ax.figure is not fig
    plt.close(new_ax.figure)
    axes = plotting.subplots(2)[1]
    assert len(axes) == 2
    plt.close("all")


def test_loss_curve_stops_before_divergence():
    fig, ax = plotting.new_figure()
    plotting.loss_curve([1.0, 2.0, 1e200, float("inf")], ax=ax, diverged_at=2)
    assert drawn_points(ax) == 2
    assert "diverged at step 2" in texts(fig)
    png(fig)
