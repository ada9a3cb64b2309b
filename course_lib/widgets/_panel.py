"""The generic slider panel: any update function joined to any dict of ipywidgets controls."""

from __future__ import annotations

import io
from typing import Callable

from matplotlib.figure import Figure

__all__ = ["build_panel", "figure_png", "slider_style"]


def build_panel(update: Callable[..., Figure], controls: dict, *, fixed: dict | None = None):
    """A panel: ``controls`` ({name: ipywidgets control}) on top, the figure ``update(**values)`` below.

    The figure is redrawn whenever a control's value changes. An exception in
    ``update`` is shown as text in the panel instead of breaking it.
    Returns the ``ipywidgets.VBox``, with ``.controls``, ``.redraw()`` (redraw now),
    ``.figure`` (the last figure drawn, ``None`` after an error) and ``.error``
    (the last exception's text), so that tests can drive it without a browser.
    """
    import ipywidgets as widgets
    from IPython.display import Image, display

    fixed = dict(fixed or {})
    out = widgets.Output()
    rows = [widgets.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)]
    panel = widgets.VBox([*rows, out])

    def redraw(change=None):
        values = {name: control.value for name, control in controls.items()}
        with out:
            out.clear_output(wait=True)
            try:
                panel.figure, panel.error = update(**values, **fixed), None
                display(Image(data=figure_png(panel.figure)))
            except Exception as error:  # a panel must stay alive whatever the learner does with it
                panel.figure, panel.error = None, f"{type(error).__name__}: {error}"
                print(panel.error)

    for control in controls.values():
        control.observe(redraw, names="value")
    panel.controls, panel.redraw, panel.output = controls, redraw, out
    redraw()
    return panel


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (what a panel shows: works whatever matplotlib backend is active)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def slider_style():
    return dict(style={"description_width": "initial"}, continuous_update=False)
