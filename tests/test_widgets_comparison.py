"""The notebook-10 panel: the update function draws without a browser and never crashes on a diverged run."""

import matplotlib
import pytest

from course_lib.widgets.comparison import COMPARISON_OPTIMIZERS, comparison_panel, comparison_update

matplotlib.use("Agg")


def test_update_draws_two_runs():
    fig = comparison_update("Adam", lr=1e-2, epochs=2)
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.get_lines()) == 2 and len(ax_acc.get_lines()) == 2
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels[0].startswith("Adam, η = 0.01 (test acc") and labels[1].startswith("momentum, η = 0.1")
    assert len(ax_acc.get_lines()[0].get_xdata()) == 2


def test_update_marks_divergence_instead_of_crashing():
    fig = comparison_update("SGD", lr=1e4, epochs=2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("diverged at step") for t in texts) and "diverged" in labels[0]


def test_update_bad_input_and_panel():
    with pytest.raises(ValueError):
        comparison_update("Lamb")
    with pytest.raises(ValueError):
        comparison_update("Adam", lr=-1.0)
    assert "AdaBound" in COMPARISON_OPTIMIZERS and len(COMPARISON_OPTIMIZERS) == 9
    panel = comparison_panel(epochs=1)
    assert panel.error is None and panel.figure is not None
    panel.controls["optimizer"].value = "RMSprop"
    assert panel.error is None and "RMSprop" in panel.figure.axes[0].get_legend().get_texts()[0].get_text()
