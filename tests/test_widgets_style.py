"""The course style on every panel: text of at least 9 pt, every axis labelled, a labelled colour bar on
every map, each optimizer in its course-wide colour and line style, slider labels from the one vocabulary."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, colorbar_axes, data_axes, line_styles, png  # noqa: E402
from course_lib import plotting, saddles, surface_plots, widgets  # noqa: E402
from course_lib.surfaces import get_surface  # noqa: E402
from course_lib.widgets._panel import LABELS  # noqa: E402
from course_lib.widgets.race import RACERS, race_update  # noqa: E402

FIGURES = {  # each panel's default figure, and one where a run diverges
    "taylor": lambda: widgets.taylor_update(),
    "gd_quadratic": lambda: widgets.gd_quadratic_update(),
    "gd_quadratic diverged": lambda: widgets.gd_quadratic_update(lr=2.5, kappa=10.0),
    "batch_size": lambda: widgets.batch_size_update(),
    "momentum": lambda: widgets.momentum_update(),
    "momentum diverged": lambda: widgets.momentum_update(lr=4.1, beta=0.2),
    "adaptive": lambda: widgets.adaptive_update(),
    "adaptive diverged": lambda: widgets.adaptive_update(surface="beale", lr_gd=0.9),
    "adam": lambda: widgets.adam_update(amsgrad=True),
    "race": lambda: race_update(),
    "race with problems": lambda: race_update("nope", optimizers=("adam", "zzz"), lr_adam=-1.0),
    "saddle race": lambda: saddles.saddle_race_update(60),
    "linear_net": lambda: widgets.linear_net_update(),
    "second_order": lambda: widgets.second_order_update(),
    "ogr": lambda: widgets.ogr_update(),
    "comparison": lambda: widgets.comparison_update(epochs=1),
    "trajectory": lambda: widgets.trajectory_update(),
}
MAPS = {"taylor": 1, "gd_quadratic": 1, "momentum": 2, "adaptive": 1, "adam": 1, "race": 1, "saddle race": 1,
        "second_order": 1, "ogr": 1}


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_panel_has_the_course_style(name):
    fig = FIGURES[name]()
    assert isinstance(fig, Figure)
    check_course_style(fig)
    assert len(colorbar_axes(fig)) == MAPS.get(name.split(" diverged")[0].split(" with")[0], 0)


def test_the_style_check_can_fail():
    fig, ax = plotting.new_figure()
    ax.imshow([[0.0, 1.0], [1.0, 0.0]])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    with pytest.raises(AssertionError, match="colour bars"):
        check_course_style(fig)
    fig, ax = plotting.new_figure()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("x")
    with pytest.raises(AssertionError, match="unlabelled"):
        check_course_style(fig)
    ax.set_ylabel("y")
    ax.text(0.5, 0.5, "tiny", fontsize=7)
    with pytest.raises(AssertionError, match="below 9"):
        check_course_style(fig)


def test_a_race_of_every_optimizer_gives_each_its_own_colour_and_style():
    fig = race_update("beale", optimizers=tuple(RACERS), steps=20)
    for ax in data_axes(fig):
        styles = line_styles(ax)
        assert len(styles) == len(RACERS) and len(set(styles)) == len(RACERS), styles
    expected = [(to_hex(plotting.optimizer_style(key)["color"]), plotting.optimizer_style(key)["linestyle"])
                for key in RACERS]
    assert line_styles(data_axes(fig)[1]) == expected  # the course-wide style of each optimizer, in race order


def test_panels_draw_optimizers_in_their_course_styles():
    gd = (to_hex(plotting.optimizer_style("gd")["color"]), "-")
    adam = widgets.adam_update(amsgrad=True)
    assert set(line_styles(data_axes(adam)[1])) == {
        (to_hex(plotting.optimizer_style(k)["color"]), plotting.optimizer_style(k)["linestyle"])
        for k in ("adam", "amsgrad")}
    assert gd in line_styles(data_axes(widgets.gd_quadratic_update())[1])
    second = line_styles(data_axes(widgets.second_order_update())[1])
    assert len(set(second)) == 3 and gd in second


def test_the_cached_map_has_a_colour_bar_with_the_maps_scale():
    surface = get_surface("rosenbrock")
    fig, ax = plotting.new_figure()
    surface_plots.surface_image(surface, ax)
    (bar,) = colorbar_axes(fig)
    low, high = sorted(bar.get_ylim())
    fig2, ax2 = plotting.new_figure()
    plotting.contour(surface, surface.bounds, ax2, resolution=min(320, 200), bar=None)
    norm = ax2.collections[0].norm
    assert (low, high) == pytest.approx((norm.vmin, norm.vmax))
    assert ax.get_xlabel() and ax.get_ylabel()
    png(fig)


def _descriptions(panel) -> list[str]:
    return [c.description for c in panel.controls.values() if getattr(c, "description", "")]


@pytest.mark.parametrize("builder", [widgets.gd_quadratic_panel, widgets.batch_size_panel, widgets.momentum_panel,
                                     widgets.adaptive_panel, widgets.adam_panel, widgets.race_panel,
                                     widgets.linear_net_panel, widgets.second_order_panel, widgets.ogr_panel])
def test_slider_labels_come_from_the_vocabulary(builder, capsys):
    panel = builder()
    vocabulary = set(LABELS.values())
    for description in _descriptions(panel):
        if description in ("centered RMSprop", "also AMSGrad", "decay η / (1 + epoch)", "start", "averaging β",
                           "rank d (0: diagonal)"):
            continue  # checkboxes and the few controls the vocabulary has no word for yet
        assert description.split(", ")[0] in vocabulary, description
    assert "lr" not in _descriptions(panel) and "step size η" not in _descriptions(panel)


def test_a_race_panel_puts_its_many_sliders_in_accordion_sections(capsys):
    import ipywidgets

    panel = widgets.race_panel("rosenbrock", optimizers=("adam", "lion", "shampoo", "sf_sgd", "sf_adamw"))
    (accordion,) = [child for child in panel.children if isinstance(child, ipywidgets.Accordion)]
    assert tuple(accordion.titles) == ("learning rates", "start and steps")
    assert panel.controls["lr_lion"].description == "learning rate η, Lion"
    assert panel.error is None
    adaptive = widgets.adaptive_panel()
    assert any(isinstance(child, ipywidgets.Accordion) for child in adaptive.children)


def test_the_rate_map_always_has_a_colour_bar():
    fig, ax = plotting.new_figure()
    widgets.draw_rate_map(100.0, ax)
    (bar,) = colorbar_axes(fig)
    assert "1 - \\rho" in bar.get_ylabel()


def test_two_runs_of_one_optimizer_on_a_map_get_different_colours():
    import torch

    from course_lib.trajectories import Trajectory

    surface = get_surface("quartic_saddle")
    points = torch.zeros(3, 2, dtype=torch.float64)
    runs = {"OGR diagonal": Trajectory(points, surface(points), None), "OGR d=2": Trajectory(points, surface(points), None),
            "GD lr=0.1": Trajectory(points, surface(points), None)}
    fig, ax = plotting.new_figure()
    surface_plots.surface_trajectories(surface, runs, ax)
    styles = line_styles(ax)
    assert len(set(styles)) == 3 and styles[0] == (to_hex(plotting.optimizer_color("ogr")), "-")
    assert ax.get_legend() is not None
