"""Slider panels for the notebooks.

Each panel is two pieces:

* ``<name>_update(**values)``: a plain function that computes and draws, returning a
  :class:`matplotlib.figure.Figure`. Tests call it directly, without a browser. It never
  raises because a run diverged: it stops at the first bad step and draws
  "diverged at step k" instead.
* ``<name>_panel(**initial)``: builds the ipywidgets controls and calls the update
  function whenever a control moves (only when released: ``continuous_update=False``).

:func:`build_panel` joins any update function to any dict of controls, so a new
panel is an update function plus a few lines. An update function that takes ``figures``
(a :class:`FigureCache`, which its panel passes) draws the part of its picture that no slider
moves once, and afterwards only what the slider changed: the momentum and race panels.
"""

from ._panel import LABELS, FigureCache, build_panel, figure_png, label, slider_style
from .gradient_descent import (BATCH_SIZES, GD_BOUNDS, GD_START, banana, batch_size_panel, batch_size_update, gd_quadratic_panel,
                               gd_quadratic_update, taylor_panel, taylor_update)
from .momentum import draw_rate_map, momentum_panel, momentum_update
from .adaptive import adaptive_panel, adaptive_update
from .adam_family import adam_panel, adam_update
from .race import RACERS, race_panel, race_update
from .linear_nets import linear_net_panel, linear_net_update
from .second_order import second_order_panel, second_order_update
from .comparison import COMPARISON_OPTIMIZERS, comparison_panel, comparison_update
from .ogr import ogr_panel, ogr_update
from .trajectory import trajectory_panel, trajectory_update

__all__ = ["build_panel", "figure_png", "slider_style", "LABELS", "label", "FigureCache",
           "gd_quadratic_update", "gd_quadratic_panel", "batch_size_update", "batch_size_panel",
           "taylor_update", "taylor_panel", "banana", "BATCH_SIZES", "GD_BOUNDS", "GD_START",
           "momentum_update", "momentum_panel", "draw_rate_map",
           "adaptive_update", "adaptive_panel",
           "adam_update", "adam_panel",
           "race_update", "race_panel", "RACERS",
           "linear_net_update", "linear_net_panel",
           "second_order_update", "second_order_panel",
           "comparison_update", "comparison_panel", "COMPARISON_OPTIMIZERS",
           "ogr_update", "ogr_panel", "trajectory_update", "trajectory_panel"]
