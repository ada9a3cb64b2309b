"""What widget tests read off a matplotlib figure, without a browser."""

from matplotlib.figure import Figure

from course_lib.widgets import figure_png as png  # the bytes a panel shows

__all__ = ["png", "texts", "drawn_points"]


def texts(fig: Figure) -> str:
    """Every text drawn inside the axes (titles excluded), e.g. the "diverged at step k" notes."""
    return " | ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def drawn_points(ax) -> int:
    """How many points the axes' lines hold: 0 means nothing was plotted."""
    return sum(len(line.get_xdata()) for line in ax.get_lines())
