"""The panel of notebook 04 (course_lib.widgets.adam_family), without a browser: the update function runs and
draws, moving a control changes the picture, a divergence is drawn instead of raised, and the panel builds
and redraws when a control moves."""
import math

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib.widgets import adam_family  # noqa: E402
from course_lib.widgets.adam_family import ADAM_SURFACES, adam_panel, adam_update, step_bound  # noqa: E402


@pytest.mark.parametrize("values", [dict(), dict(lr=0.01, beta1=0.0, beta2=0.9, steps=50),
                                    dict(surface="himmelblau", amsgrad=True, steps=100),
                                    dict(surface="quartic_saddle", lr=0.05, steps=60)])
def test_update_runs_and_draws(values):
    fig = adam_update(**values)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 3
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig)), f"{values}: an axes is empty"
    assert "diverged" not in texts(fig)
    assert png(fig)[:4] == b"\x89PNG"


@pytest.mark.parametrize("surface", ADAM_SURFACES)
def test_every_surface_of_the_menu_draws(surface):
    fig = adam_update(surface=surface, steps=20, amsgrad=True)
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))


@pytest.mark.parametrize("change", [dict(lr=0.3), dict(beta1=0.5), dict(beta2=0.9), dict(amsgrad=True),
                                    dict(surface="beale")])
def test_moving_a_control_changes_the_picture(change):
    assert png(adam_update(steps=100)) != png(adam_update(steps=100, **change))


@pytest.mark.parametrize("values", [dict(lr=3.0, beta1=0.999, beta2=0.5, surface="rosenbrock"),
                                    dict(lr=3.0, beta1=0.99, beta2=0.5, surface="beale", amsgrad=True),
                                    dict(lr=1.0, beta1=0.99, beta2=0.5, surface="rosenbrock", steps=300)])
def test_divergence_is_drawn_not_raised(values):
    fig = adam_update(**values)
    assert "diverged at step" in texts(fig)
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    png(fig)


def test_divergence_is_where_the_run_leaves_the_box():
    surface = "rosenbrock"
    run = adam_family._run(surface, (-1.5, 2.5), 300, 3.0, 0.999, 0.5, False)
    k = run.diverged_at
    assert k is not None
    radius = adam_family.escape_radius(surface)
    centre = torch.tensor([0.0, 1.0], dtype=torch.float64)  # the centre of rosenbrock's bounds
    assert ((run.points[:k] - centre).abs() <= radius).all()
    assert f"diverged at step {k}" in texts(adam_update(lr=3.0, beta1=0.999, beta2=0.5, surface=surface))


def test_step_bound_holds_and_is_reached_for_the_defaults():
    assert step_bound(0.9, 0.999) == pytest.approx(0.1 / math.sqrt(0.001 * (1 - 0.81 / 0.999)))
    assert step_bound(0.99, 0.9) == math.inf
    # a gradient that flips sign to follow the momentum's memory hits the bound from below, never above it
    run = adam_family._run("ill_conditioned_quadratic", (-2.5, 1.0), 400, 0.05, 0.9, 0.999, False)
    steps = adam_family._step_sizes(run.points, 0.05, None)
    assert steps.max() <= step_bound(0.9, 0.999) + 1e-9


def test_panel_builds_and_redraws_when_a_control_moves():
    pytest.importorskip("ipywidgets")
    panel = adam_panel(steps=50)
    assert panel.error is None and isinstance(panel.figure, Figure)
    first = png(panel.figure)
    panel.controls["beta1"].value = 0.5
    assert panel.error is None and png(panel.figure) != first
    panel.controls["lr"].value = 10 ** 0.5
    panel.controls["beta1"].value = 0.999
    panel.controls["beta2"].value = 0.5
    assert panel.error is None  # even a diverging run leaves the panel alive
    assert set(panel.controls) == {"lr", "beta1", "beta2", "steps", "surface", "amsgrad"}
    assert all(getattr(c, "continuous_update", False) is False for name, c in panel.controls.items()
               if name in ("lr", "beta1", "beta2", "steps"))
