"""FigureCache: a panel that keeps its figure between slider moves shows, after any sequence of moves, the very
picture (pixel for pixel) that a new figure would show; the fixed part is built once per key."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from figure_helpers import png  # noqa: E402
from course_lib import widgets  # noqa: E402
from course_lib.plotting import new_figure  # noqa: E402
from course_lib.widgets import FigureCache  # noqa: E402

# diverging and converging, the predicted curve present and absent, new condition numbers and step counts
MOMENTUM_MOVES = [dict(lr=1.0, beta=0.5), dict(lr=4.1, beta=0.2), dict(lr=3.3, beta=0.67),
                  dict(lr=4.2, beta=0.99, kappa=1.0, steps=300), dict(lr=0.05, beta=0.99, steps=300),
                  dict(lr=1.0, beta=0.5), dict(lr=2.5, beta=0.1, kappa=1000.0), dict(lr=1.5, beta=0.3)]
# log and symlog loss axes, divergence, bad input reported in the figure, fewer racers, another surface
RACE_MOVES = [dict(), dict(lr_adam=0.05), dict(x=-1.0, y=2.0), dict(lr_sgd=0.01), dict(optimizers=("sgd", "adam")),
              dict(lr_adam=-1.0), dict(surface="beale"), dict(surface="rosenbrock", lr_momentum=0.01),
              dict(surface="no such surface"), dict(steps=500), dict(), dict(optimizers=())]

# the diagonal and subspace modes, a diverging step size, every surface
OGR_MOVES = [dict(), dict(beta=0.3), dict(rank=0), dict(lr=0.5), dict(lr=1.0, steps=200), dict(rank=1, steps=5),
             *[dict(surface=name) for name in widgets.ogr.OGR_SURFACES], dict()]


@pytest.mark.parametrize("update, moves", [(widgets.momentum_update, MOMENTUM_MOVES),
                                           (widgets.race_update, RACE_MOVES), (widgets.ogr_update, OGR_MOVES)],
                         ids=["momentum", "race", "ogr"])
def test_a_kept_figure_shows_what_a_new_figure_shows(update, moves):
    figures = FigureCache()
    for values in moves:
        assert png(update(**values, figures=figures)) == png(update(**values)), values


def test_the_fixed_part_is_built_once_per_key_and_the_oldest_key_goes_first():
    builds = []

    def build(name):
        def make():
            builds.append(name)
            fig, ax = new_figure()
            ax.plot([0, 1], [0, 1], label="fixed")
            return fig
        return make

    figures = FigureCache(size=2)
    first = figures.get("a", build("a"))
    first.axes[0].plot([0, 10], [0, 20], label="moving")
    first.text(0.5, 0.5, "note")
    again = figures.get("a", build("a"))
    assert again is first and builds == ["a"]
    assert [line.get_label() for line in again.axes[0].lines] == ["fixed"] and not again.texts
    np.testing.assert_allclose(again.axes[0].dataLim.get_points(), [[0, 0], [1, 1]])  # the moving line's limits gone
    figures.get("b", build("b"))
    figures.get("c", build("c"))  # drops "a", the least recently used
    figures.get("b", build("b"))
    figures.get("a", build("a"))
    assert builds == ["a", "b", "c", "a"]


def test_added_axes_and_a_changed_scale_are_undone():
    figures = FigureCache()
    fig = figures.get("k", lambda: new_figure()[0])
    ax = fig.axes[0]
    ax.set_yscale("log")
    ax.plot([1, 2], [1e-3, 1e3])
    fig.add_axes((0.8, 0.8, 0.1, 0.1))
    again = figures.get("k", lambda: pytest.fail("built twice"))
    assert len(again.axes) == 1 and ax.get_yscale() == "linear" and not ax.lines
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_autoscaley_on()


def test_the_momentum_panel_redraws_into_one_figure_until_kappa_or_steps_move():
    panel = widgets.momentum_panel()
    first = panel.figure
    panel.controls["lr"].value = 1.5
    panel.controls["beta"].value = 0.7
    assert panel.figure is first and panel.error is None
    assert f"η = 1.5, β = 0.7" in first.axes[0].get_title()
    panel.controls["kappa"].value = 10.0
    assert panel.figure is not first and isinstance(panel.figure, Figure)
    assert png(panel.figure) == png(widgets.momentum_update(lr=1.5, beta=0.7, kappa=10.0))


def test_the_race_panel_redraws_into_one_figure_per_surface():
    panel = widgets.race_panel()
    first = panel.figure
    panel.controls["lr_adam"].value = 0.02
    assert panel.figure is first and panel.error is None
    panel.controls["surface"].value = "beale"
    assert panel.figure is not first
    panel.controls["surface"].value = "rosenbrock"
    assert panel.figure is first  # kept: back to the first surface without a rebuild
