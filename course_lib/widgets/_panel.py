"""The generic slider panel: any update function joined to any dict of ipywidgets controls."""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Callable, Hashable

from matplotlib.figure import Figure

from ..plotting import DPI, show_scale

__all__ = ["build_panel", "figure_png", "slider_style", "LABELS", "label", "FigureCache"]


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
    :data:`~course_lib.plotting.PANEL_HIDPI` times the screen resolution, shown at the figure's width in screen
    pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=show_scale(), pil_kwargs={"compress_level": 1})  # fast to write
    return buffer.getvalue()


class FigureCache:
    """A panel's figures, kept between slider moves: the part that stays is drawn once per key.

    A new figure costs more to draw than its curves: matplotlib makes the axes, the colour bars and each
    of their ticks again, and lays out every label again. A panel whose picture has a fixed part (axes, the
    contour map, colour bars, a curve that no slider moves) builds it once with ``build()`` under ``key``
    (e.g. the condition number); :meth:`get` then hands back that figure with everything drawn after
    ``build()`` taken away (lines, texts, legends, added axes), the data limits, view limits, autoscaling
    and titles as ``build()`` left them, so the caller draws the moving part as on a new figure. The picture
    is then the one a new figure would show (the panels' tests compare them pixel for pixel).
    ``size`` keys are kept, the oldest dropped first.
    """

    def __init__(self, size: int = 4):
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[Figure, list, set]] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Figure]) -> Figure:
        if key in self._kept:
            self._kept.move_to_end(key)
            figure, axes_states, figure_children = self._kept[key]
            _restore(figure, axes_states, figure_children)
            return figure
        figure = build()
        self._kept[key] = (figure, *_snapshot(figure))
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return figure


_FIGURE_LISTS = ("legends", "texts", "lines", "patches", "images", "artists")


def _snapshot(figure: Figure):
    axes = []
    for ax in figure.axes:
        titles = (ax.title, ax._left_title, ax._right_title)
        scales = [(axis, axis._scale, axis.get_major_locator(), axis.get_minor_locator(),
                   axis.get_major_formatter(), axis.get_minor_formatter()) for axis in (ax.xaxis, ax.yaxis)]
        axes.append((ax, {id(child) for child in ax.get_children()}, ax.dataLim.get_points().copy(),
                     ax.ignore_existing_data_limits, scales, ax.get_xlim(), ax.get_ylim(), ax.get_autoscalex_on(),
                     ax.get_autoscaley_on(), [(title, title.get_text()) for title in titles]))
    children = {id(artist) for name in _FIGURE_LISTS for artist in getattr(figure, name)}
    return axes, children


def _restore(figure: Figure, axes_states: list, figure_children: set):
    kept_axes = {id(state[0]) for state in axes_states}
    for ax in list(figure.axes):
        if id(ax) not in kept_axes:
            figure.delaxes(ax)
    for name in _FIGURE_LISTS:
        for artist in list(getattr(figure, name)):
            if id(artist) not in figure_children:
                artist.remove()
    for ax, children, data_limits, ignore, scales, xlim, ylim, auto_x, auto_y, titles in axes_states:
        for child in ax.get_children():
            if id(child) not in children:
                child.remove()
        for axis, scale, major, minor, major_format, minor_format in scales:
            if axis._scale is not scale:  # e.g. a loss axis the last move made log: back to the scale object itself
                (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)(scale)
            axis.set_major_locator(major)
            axis.set_minor_locator(minor)
            axis.set_major_formatter(major_format)
            axis.set_minor_formatter(minor_format)
        ax.dataLim.set_points(data_limits.copy())  # a copy: drawing updates the points in place
        ax.ignore_existing_data_limits = ignore
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_autoscalex_on(auto_x)
        ax.set_autoscaley_on(auto_y)
        for title, text in titles:
            title.set_text(text)


def slider_style():
    return dict(style={"description_width": "initial"}, continuous_update=False)
