"""The panel of notebook 03 (course_lib.widgets.adaptive), without a browser: the update function runs and
draws on every surface, a diverging run is drawn and named instead of raising, moving a control changes the
picture, and the panel builds and redraws."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import check_course_style, data_axes, drawn_points, png, texts  # noqa: E402
from course_lib import widgets  # noqa: E402
from course_lib.widgets.adaptive import ADAPTIVE_METHODS, ADAPTIVE_SURFACES, adaptive_runs  # noqa: E402


def test_exported_from_widgets():
    assert widgets.adaptive_update is not None and widgets.adaptive_panel is not None
    assert {"adaptive_update", "adaptive_panel"} <= set(widgets.__all__)


@pytest.mark.parametrize("surface", ADAPTIVE_SURFACES)
def test_update_draws_every_surface(surface):
    fig = widgets.adaptive_update(surface=surface, steps=40)
    assert isinstance(fig, Figure) and len(data_axes(fig)) == 2
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert [entry.split(":")[0] for entry in legend] == list(ADAPTIVE_METHODS)
    assert png(fig)[:4] == b"\x89PNG"


@pytest.mark.parametrize("values", [dict(), dict(centered=True), dict(lr_adagrad=10.0, steps=200),
                                    dict(lr_adadelta=50.0, eps_adadelta=1e-2), dict(steps=10)])
def test_update_runs_with_other_settings_without_divergence(values):
    fig = widgets.adaptive_update(**values)
    assert "diverged" not in texts(fig)
    png(fig)


def test_runs_have_the_requested_length_and_start():
    runs = adaptive_runs("ill_conditioned_quadratic", steps=25)
    assert list(runs) == list(ADAPTIVE_METHODS)
    for run in runs.values():
        assert run.points.shape == (26, 2)
        assert torch.equal(run.points[0], torch.tensor([-2.5, 1.0], dtype=torch.float64))
        assert run.diverged_at is None


def test_adaptive_methods_beat_gradient_descent_only_on_the_axis_aligned_valley():
    # gradient descent with its best step 2/(mu + L) = 2/26 against Adagrad with a step size tuned for neither
    aligned = adaptive_runs("ill_conditioned_quadratic", lr_gd=2 / 26, lr_adagrad=1.5, steps=200)
    turned = adaptive_runs("rotated_ill_conditioned_quadratic", lr_gd=2 / 26, lr_adagrad=1.5, steps=200)
    assert aligned["Adagrad"].losses[-1] < 1e-6 * aligned["gradient descent"].losses[-1]
    assert turned["Adagrad"].losses[-1] > 100 * turned["gradient descent"].losses[-1]


@pytest.mark.parametrize("values, who", [(dict(lr_gd=0.5), "gradient descent"),
                                         (dict(lr_gd=0.09, steps=200), "gradient descent"),
                                         (dict(surface="rosenbrock"), "gradient descent"),
                                         (dict(surface="beale", lr_gd=0.05), "gradient descent")])
def test_divergence_is_drawn_not_raised(values, who):
    fig = widgets.adaptive_update(**values)
    notes = texts(fig)
    assert f"{who} diverged at step" in notes
    assert notes.count("diverged at step") == 2  # once on each plot
    assert all(drawn_points(ax) > 0 for ax in data_axes(fig))
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert f"{who}: diverged" in legend
    png(fig)


def test_divergence_step_matches_the_trajectory():
    runs = adaptive_runs("ill_conditioned_quadratic", lr_gd=0.5)
    k = runs["gradient descent"].diverged_at
    assert k is not None and k > 0
    assert f"gradient descent diverged at step {k}" in texts(widgets.adaptive_update(lr_gd=0.5))


def test_two_diverging_runs_get_two_notes():
    fig = widgets.adaptive_update(lr_gd=0.5, lr_rmsprop=1e4, lr_adagrad=1e5, steps=50)
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert len(notes) == len(set(notes)) >= 1
    png(fig)


@pytest.mark.parametrize("control, value", [("lr_gd", 0.01), ("lr_adagrad", 0.05), ("lr_rmsprop", 0.005),
                                            ("lr_adadelta", 20.0), ("eps_adadelta", 1e-3), ("centered", True),
                                            ("steps", 30), ("surface", "rotated_ill_conditioned_quadratic")])
def test_moving_a_control_changes_the_picture(control, value):
    assert png(widgets.adaptive_update()) != png(widgets.adaptive_update(**{control: value}))


def test_update_leaves_no_pyplot_figures_and_restores_threads():
    threads = torch.get_num_threads()
    before = plt.get_fignums()
    widgets.adaptive_update()
    widgets.adaptive_update(lr_gd=0.5)
    assert plt.get_fignums() == before
    assert torch.get_num_threads() == threads


def test_panel_builds_and_redraws_when_a_control_moves():
    panel = widgets.adaptive_panel()
    first = panel.figure
    assert isinstance(first, Figure) and panel.error is None
    assert set(panel.controls) == {"surface", "lr_gd", "lr_adagrad", "lr_rmsprop", "lr_adadelta", "eps_adadelta",
                                   "centered", "steps"}
    for control in panel.controls.values():
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False
    panel.controls["lr_gd"].value = 0.5  # the observer redraws; gradient descent diverges
    assert isinstance(panel.figure, Figure) and panel.figure is not first and panel.error is None
    assert "gradient descent diverged at step" in texts(panel.figure)
    panel.controls["surface"].value = "beale"
    assert panel.error is None and png(panel.figure) != png(first)
