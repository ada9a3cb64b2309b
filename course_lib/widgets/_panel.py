"""The generic slider panel: any update function joined to any dict of ipywidgets controls."""

from __future__ import annotations

import io
from typing import Callable

from matplotlib.figure import Figure

from ..plotting import DPI, show_scale

__all__ = ["build_panel", "figure_png", "slider_style", "LABELS", "label"]


LABELS = {
    "lr": "learning rate η", "beta": "momentum β", "momentum": "momentum β", "beta1": "β₁ (first moment)",
    "beta2": "β₂ (second moment)", "eps": "ε", "weight_decay": "weight decay λ_wd", "damping": "damping δ",
    "steps": "steps", "epochs": "epochs", "batch_size": "batch size B", "depth": "depth N", "kappa": "condition number κ",
    "surface": "surface", "x": "start θ₁", "y": "start θ₂", "seed": "seed", "init_scale": "init scale",
    "optimizer": "optimizer", "optimizers": "optimizers", "method": "method", "step": "step k",
    "point_x": "point p, θ₁", "point_y": "point p, θ₂", "angle": "direction v (degrees)", "radius": "range of t",
    "init": "start", "ogr_beta": "averaging β", "rank": "rank d (0: diagonal)",
}
"""The course's one slider vocabulary: a control for the same quantity has the same label in every panel."""


def label(name: str, detail: str = "") -> str:
    """The label of the control for ``name`` (a key of :data:`LABELS`), with an optional ``detail``:
    ``label("lr", "Adam")`` is ``"learning rate η, Adam"``."""
    text = LABELS.get(name, name)
    return f"{text}, {detail}" if detail else text


def _layout(controls: dict, groups: dict | None):
    """The controls as rows of three, or one accordion section per group ({title: [names]}) after the others."""
    import ipywidgets as widgets

    def rows(names):
        return [widgets.HBox([controls[n] for n in names[i:i + 3]]) for i in range(0, len(names), 3)]

    if not groups:
        return rows(list(controls))
    grouped = {name for names in groups.values() for name in names}
    unknown = grouped - set(controls)
    if unknown:
        raise ValueError(f"groups name controls the panel does not have: {sorted(unknown)}")
    loose = [name for name in controls if name not in grouped]
    sections = [widgets.VBox(rows(list(names))) for names in groups.values()]
    accordion = widgets.Accordion(children=sections, titles=tuple(groups))
    return [*rows(loose), accordion]


def build_panel(update: Callable[..., Figure], controls: dict, *, fixed: dict | None = None,
                groups: dict | None = None):
    """A panel: ``controls`` ({name: ipywidgets control}) on top, the figure ``update(**values)`` below.

    The figure is redrawn whenever a control's value changes. An exception in
    ``update`` is shown as text in the panel instead of breaking it. ``groups`` ({title: [control
    names]}) puts those controls in one accordion section each (e.g. one per optimizer of a race), so
    that a panel with many sliders stays compact.
    Returns the ``ipywidgets.VBox``, with ``.controls``, ``.redraw()`` (redraw now),
    ``.figure`` (the last figure drawn, ``None`` after an error), ``.error`` (the last exception's
    text), ``.image`` (the ``ipywidgets.Image`` showing the PNG) and ``.message`` (the error line), so that
    tests can drive it without a browser.

    The picture is an ``ipywidgets.Image``: its PNG travels as one binary buffer (no base64, no output
    capture), which keeps a redraw cheap and lets any front end or executor show it.
    """
    import html

    import ipywidgets as widgets

    fixed = dict(fixed or {})
    image = widgets.Image(format="png")
    message = widgets.HTML(value="")
    panel = widgets.VBox([*_layout(controls, groups), image, message])

    def redraw(change=None):
        values = {name: control.value for name, control in controls.items()}
        try:
            figure = update(**values, **fixed)
            png = figure_png(figure)
            image.width = str(round(figure.get_figwidth() * DPI))  # screen pixels: the PNG has PANEL_HIDPI x more
            image.value = png
            panel.figure, panel.error, message.value = figure, None, ""
        except Exception as error:  # a panel must stay alive whatever the learner does with it
            panel.figure, panel.error = None, f"{type(error).__name__}: {error}"
            message.value = f"<pre>{html.escape(panel.error)}</pre>"

    for control in controls.values():
        control.observe(redraw, names="value")
    panel.controls, panel.redraw, panel.image, panel.message = controls, redraw, image, message
    redraw()
    return panel


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (what a panel shows: works whatever matplotlib backend is active), at
    :data:`~course_lib.plotting.PANEL_HIDPI` times the screen resolution, shown at the figure's width in screen pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=show_scale(), pil_kwargs={"compress_level": 1})  # fast to write
    return buffer.getvalue()


def slider_style():
    return dict(style={"description_width": "initial"}, continuous_update=False)
