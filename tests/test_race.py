"""The optimizer race panel without a browser: it runs, draws one path per optimizer, draws a
divergence instead of raising, and survives bad input."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib import widgets  # noqa: E402
from figure_helpers import check_course_style, data_axes, line_styles  # noqa: E402
from course_lib.surfaces import SURFACES  # noqa: E402
from course_lib.widgets.race import DEFAULT_RACE, RACERS, SURFACE_LRS, _race, default_lr, race_update  # noqa: E402


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def path_lines(fig: Figure) -> list:
    """The optimizer paths on the map: labelled lines (markers of critical points have no label)."""
    return [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]


def loss_labels(fig: Figure) -> list[str]:
    return [line.get_label() for line in fig.axes[1].get_lines() if not line.get_label().startswith("_")]


def all_text(fig: Figure) -> str:
    legend = fig.axes[1].get_legend()
    parts = [t.get_text() for t in fig.texts] + ([t.get_text() for t in legend.get_texts()] if legend else [])
    return " | ".join(parts)


def test_registered_in_widgets():
    assert widgets.race_update is race_update and "race_update" in widgets.__all__
    assert set(DEFAULT_RACE) <= set(RACERS) and set(SURFACE_LRS) == set(SURFACES)


@pytest.mark.parametrize("surface", list(SURFACES))
def test_one_line_per_optimizer_on_every_surface(surface):
    fig = race_update(surface)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 2
    assert len(path_lines(fig)) == len(DEFAULT_RACE) == len(loss_labels(fig))
    assert all(len(line.get_xdata()) > 1 for line in path_lines(fig))
    assert not fig.texts, f"{surface}: {all_text(fig)}"  # no problem reported
    assert png(fig)[:4] == b"\x89PNG"


def test_every_racer_runs():
    fig = race_update("beale", optimizers=tuple(RACERS), steps=40)
    assert len(path_lines(fig)) == len(RACERS) and not fig.texts


def test_learning_rates_and_start_change_the_picture():
    base = race_update("rosenbrock", optimizers=("adam",))
    faster = race_update("rosenbrock", optimizers=("adam",), lr_adam=0.2)
    moved = race_update("rosenbrock", x=0.5, y=2.0, optimizers=("adam",))
    assert "η = 0.05" in loss_labels(base)[0] and "η = 0.2" in loss_labels(faster)[0]
    assert png(base) != png(faster) and png(base) != png(moved)
    assert path_lines(moved)[0].get_xdata()[0] == 0.5


def test_divergence_is_drawn_not_raised():
    fig = race_update("quadratic", optimizers=("sgd", "adam"), lr_sgd=2.5, steps=100)
    assert "GD, η = 2.5: diverged at step" in all_text(fig)
    assert len(path_lines(fig)) == 2 and all(len(line.get_xdata()) >= 1 for line in path_lines(fig))
    fig = race_update("saddle", optimizers=("sgd", "momentum"), steps=300)  # unbounded below: everyone leaves
    assert all_text(fig).count("diverged at step") == 2
    png(fig)


@pytest.mark.parametrize("values", [
    dict(surface="no_such_surface"),
    dict(optimizers=("adam", "no_such_optimizer")),
    dict(optimizers=()),
    dict(optimizers="adam"),
    dict(lr_adam=-1.0, optimizers=("adam", "sgd")),
    dict(lr_adam=float("nan"), lr_sgd="fast"),
    dict(x=float("inf"), y=None),
    dict(x=1e9, y=-1e9),
    dict(steps=-5),
    dict(steps="many"),
    dict(steps=10 ** 9, optimizers=("sgd",), lr_sgd=10.0),
    dict(surface=None),
])
def test_bad_inputs_do_not_crash(values):
    fig = race_update(**values)
    assert isinstance(fig, Figure)
    png(fig)


def test_bad_inputs_are_reported_in_the_figure():
    assert "unknown surface" in all_text(race_update(surface="nope"))
    assert "unknown optimizer" in all_text(race_update(optimizers=("adam", "nope")))
    assert "Invalid learning rate: -1.0" in all_text(race_update(optimizers=("adam",), lr_adam=-1.0))
    clipped = race_update("rosenbrock", x=1e9, y=-1e9, optimizers=("adam",))
    assert tuple(path_lines(clipped)[0].get_xydata()[0]) == (2.0, -1.0)  # the start is clipped into the map


def test_default_learning_rates():
    for surface in SURFACES:
        for key in RACERS:
            assert 0 < default_lr(surface, key) <= 1.0
    assert default_lr("quadratic", "adadelta") == 1.0
    assert default_lr("unknown_surface", "sgd") == 0.01


def test_runs_are_cached_per_optimizer():
    _race.cache_clear()
    race_update("himmelblau", optimizers=("sgd", "adam"))
    race_update("himmelblau", optimizers=("sgd", "adam"), lr_adam=0.3)
    info = _race.cache_info()
    assert info.misses == 3 and info.hits == 1


def test_no_pyplot_figures_leak_and_threads_restored():
    threads = torch.get_num_threads()
    before = plt.get_fignums()
    race_update()
    assert plt.get_fignums() == before and torch.get_num_threads() == threads


def test_panel_builds_redraws_and_follows_the_surface(monkeypatch):
    from course_lib.widgets import race

    calls = []

    def counting_update(**values):
        calls.append(values)
        return race_update(**values)

    monkeypatch.setattr(race, "race_update", counting_update)
    panel = race.race_panel(optimizers=("sgd", "adam", "nope"))
    assert isinstance(panel.figure, Figure) and panel.error is None and len(calls) == 1
    assert set(panel.controls) >= {"surface", "x", "y", "optimizers", "steps", "lr_sgd", "lr_adam"}
    assert "lr_nope" not in panel.controls
    for control in panel.controls.values():
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False
    before = png(panel.figure)
    panel.controls["lr_adam"].value = 0.3
    assert png(panel.figure) != before and len(calls) == 2
    panel.controls["surface"].value = "himmelblau"
    assert len(calls) == 3  # x, y and the step sizes moved silently, then one redraw
    himmelblau = SURFACES["himmelblau"]
    assert calls[-1]["surface"] == "himmelblau" and (calls[-1]["x"], calls[-1]["y"]) == himmelblau.default_start
    assert panel.controls["x"].min == himmelblau.bounds[0][0]
    assert calls[-1]["lr_sgd"] == pytest.approx(default_lr("himmelblau", "sgd"), rel=1e-6)
    assert panel.error is None and "himmelblau" in panel.figure.axes[0].get_title()
    panel.controls["x"].value = 1.0  # the sliders still redraw afterwards
    assert len(calls) == 4 and calls[-1]["x"] == 1.0


def test_a_surface_that_is_infinite_at_the_start_is_drawn():
    from course_lib.surfaces import Surface

    def spike(x, y):
        r2 = x * x + y * y
        return r2 + 1 / r2

    def spike_gradient(x, y):
        r2 = x * x + y * y
        return 2 * x - 2 * x / r2 ** 2, 2 * y - 2 * y / r2 ** 2

    cliff = Surface("spike", spike, spike_gradient, ((-2.0, 2.0), (-2.0, 2.0)), minima=((1.0, 0.0),), min_value=2.0,
                    default_start=(0.0, 0.0))  # infinite at the start
    fig = race_update(cliff, optimizers=("sgd", "adam"))
    assert all_text(fig).count("diverged at step 0") == 2
    png(fig)
    healthy = race_update(cliff, x=1.5, y=0.5, optimizers=("adam",))
    assert not healthy.texts and "diverged" not in all_text(healthy)
