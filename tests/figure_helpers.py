"""What widget tests read off a matplotlib figure, without a browser."""

import matplotlib.text
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from course_lib.plotting import LEGEND_SIZE
from course_lib.widgets import figure_png as png  # the bytes a panel shows

__all__ = ["png", "texts", "drawn_points", "data_axes", "colorbar_axes", "check_course_style", "line_styles"]


def texts(fig: Figure) -> str:
    """Every text drawn inside the axes (titles excluded), e.g. the "diverged at step k" notes."""
    return " | ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def drawn_points(ax) -> int:
    """How many points the axes' lines hold: 0 means nothing was plotted."""
    return sum(len(line.get_xdata()) for line in ax.get_lines())


def _is_colorbar(ax: Axes) -> bool:
    return ax.get_label() == "<colorbar>"


def data_axes(fig: Figure) -> list:
    """The plots of a figure, its colour bars left out (they come after the plots in ``fig.axes``)."""
    return [ax for ax in fig.axes if not _is_colorbar(ax)]


def colorbar_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if _is_colorbar(ax)]


def _is_map(ax: Axes) -> bool:
    """A map: an image (a cached contour picture, a rate map), filled contours or a mesh of colours."""
    return bool(ax.images) or any(isinstance(c, QuadMesh) or (isinstance(c, ContourSet) and c.filled)
                                  for c in ax.collections)


def line_styles(ax: Axes) -> list:
    """``(colour, line style)`` of every labelled line of ``ax`` (markers of critical points have no label)."""
    from matplotlib.colors import to_hex

    return [(to_hex(line.get_color()), line.get_linestyle()) for line in ax.get_lines()
            if not line.get_label().startswith("_")]


def check_course_style(fig: Figure, *, min_size: float = LEGEND_SIZE) -> None:
    """Assert the course style: no text under ``min_size`` points (9), both axes of every plot labelled,
    a labelled colour bar for every map. Draws the figure first (tick labels exist only once drawn)."""
    png(fig)
    small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
             if t.get_text().strip() and t.get_visible() and t.get_fontsize() < min_size - 1e-9]
    assert not small, f"text below {min_size} pt: {small}"
    for ax in data_axes(fig):
        if ax.name == "3d":
            continue
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"unlabelled axis in {ax.get_title()!r}"
    bars = colorbar_axes(fig)
    maps = [ax for ax in data_axes(fig) if _is_map(ax)]
    assert len(bars) >= len(maps), f"{len(maps)} maps but {len(bars)} colour bars"
    for bar in bars:
        assert (bar.get_ylabel() or bar.get_xlabel()).strip(), "a colour bar without a label"
