"""Suites ``trajectories`` and ``widgets``: the two interactive budgets of docs/design.md (section 6).

* ``trajectories``: :func:`course_lib.trajectories.run_batch` of 10,000 starts x 200 steps
  on Rosenbrock, budget 2 s (2000 ms) per run. Rows: course_lib's Adam and SGD with momentum
  (closed-form gradients, float32, the default dtype), and Adam with the gradient taken by
  autograd instead (the same run on a plain function), to show what the closed form saves.
* ``widgets``: every notebook's panel, built as the notebook builds it, from a slider's new value to the
  PNG in the panel's picture (the panel's own redraw), budget 150 ms median. One row per panel
  (a new value every move, so caches of whole runs do not help); the race has two cases:
  ``slider move`` (one optimizer's step size moves: one run is recomputed, the figure redrawn)
  and ``new start`` (the start moves: all runs are recomputed).

Each row's ``course_ms`` is the median over ``steps`` timed repetitions after one warm-up;
absolute budgets (``budget_on="course_ms"``), no reference. Run them alone with
``python -m course_lib.bench --suite trajectories --suite widgets``.
"""

from __future__ import annotations

import statistics
import time

import torch

from ..device import default_device
from ._core import Record, device_synchronizer, register_suite

RUN_BATCH_BUDGET_MS = 2000.0
RACE_BUDGET_MS = 150.0
STARTS, STEPS = 10_000, 200
RUN_BATCH_ROWS = ["run_batch", "run_batch autograd"]
RACE_ROWS = ["race"]
PANEL_ROWS = ["gd_quadratic_panel", "momentum_panel", "adaptive_panel", "adam_panel", "linear_net_panel",
              "second_order_panel", "ogr_panel", "comparison_panel"]


def _median_ms(fn, repeats: int, sync=lambda: None) -> tuple[float, list[float], float]:
    """Median wall-clock ms of ``fn()`` over ``repeats`` calls after one warm-up; also the median CPU ms.

    On a shared machine the CPU time of this process (``time.process_time``) shows what the
    call costs when it has a core to itself; the budget is on the wall-clock time a learner waits.
    """
    fn()  # warm-up: first calls allocate, fill caches, load fonts
    times, cpu_times = [], []
    for _ in range(max(1, repeats)):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
        cpu_times.append((time.process_time() - cpu_start) * 1e3)
    return statistics.median(times), times, statistics.median(cpu_times)


def _wanted(names: list[str], only: list[str] | None) -> list[str]:
    if not only:
        return names
    chosen = {name.lower() for name in only}
    return [name for name in names if name.lower() in chosen]


@register_suite("trajectories", f"run_batch of {STARTS:,} starts x {STEPS} steps on Rosenbrock (budget 2 s)",
                names=lambda: list(RUN_BATCH_ROWS))
def run_trajectories_suite(*, only: list[str] | None = None, steps: int | None = None, starts: int = STARTS,
                           trajectory_steps: int = STEPS, device=None, **_):
    from .. import optim
    from ..surfaces import SURFACES
    from ..trajectories import run_batch

    device = torch.device(device) if device is not None else default_device()
    surface = SURFACES["rosenbrock"]
    generator = torch.Generator().manual_seed(0)
    (x0, x1), (y0, y1) = surface.bounds
    points = torch.rand(starts, 2, generator=generator) * torch.tensor([x1 - x0, y1 - y0]) + torch.tensor([x0, y0])
    points = points.to(device)
    cases = [("run_batch", "Adam lr 0.01", optim.Adam, surface, dict(lr=0.01)),
             ("run_batch", "SGD momentum 0.9", optim.SGD, surface, dict(lr=1e-4, momentum=0.9)),
             ("run_batch autograd", "Adam lr 0.01", optim.Adam, lambda xy: surface(xy), dict(lr=0.01))]
    for name, case, cls, function, hparams in cases:
        if name not in _wanted(RUN_BATCH_ROWS, only):
            continue
        record = Record("trajectories", name, case, None, budget=RUN_BATCH_BUDGET_MS, budget_on="course_ms",
                        device=str(device), extra={"starts": starts, "steps": trajectory_steps,
                                                   "dtype": str(points.dtype).replace("torch.", ""),
                                                   "threads": torch.get_num_threads()})
        try:
            median, times, cpu_ms = _median_ms(lambda: run_batch(cls, function, points, trajectory_steps, **hparams),
                                               steps or 5, device_synchronizer(device))
        except Exception as error:
            record.error = f"{type(error).__name__}: {error}".splitlines()[0][:120]
            yield record
            continue
        record.course_ms = median
        record.extra.update(repeats=len(times), min_ms=round(min(times), 3), cpu_ms=round(cpu_ms, 3),
                            us_per_step=round(median * 1e3 / trajectory_steps, 2))
        yield record


@register_suite("widgets", "every notebook panel: one slider move = recompute + redraw + PNG (budget 150 ms median)",
                names=lambda: PANEL_ROWS + RACE_ROWS)
def run_widgets_suite(*, only: list[str] | None = None, steps: int | None = None, **_):
    """Each row builds the panel a notebook shows and times one move of one slider, as a learner makes it: the
    control's new value runs the panel's own redraw (recompute, draw, PNG into the picture)."""
    repeats = steps or 15
    wanted = set(_wanted(PANEL_ROWS + RACE_ROWS, only))
    for name, case, make_panel, control, value in _panel_moves():
        if name not in wanted:
            continue
        record = Record("widgets", name, case, None, budget=RACE_BUDGET_MS, budget_on="course_ms",
                        device="cpu", extra={"threads": torch.get_num_threads()})
        try:
            import matplotlib

            matplotlib.use("Agg")  # the panel renders PNGs itself; no window, whatever the backend was
            panel = make_panel()
        except Exception as error:
            yield _failed(record, error)
            continue
        yield _timed(record, _slider_mover(panel, control, value), repeats)


def _panel_moves():
    """(row, case, panel factory, control name, value of the i-th move) for each timed slider."""
    from .. import widgets
    from ..widgets.race import _race, default_lr

    def race_panel():
        _race.cache_clear()  # a new start computes every run: nothing from an earlier row may help
        return widgets.race_panel("rosenbrock")

    adam_lr = default_lr("rosenbrock", "adam")
    return [
        ("gd_quadratic_panel", "slider move", widgets.gd_quadratic_panel, "lr", lambda i: 0.5 + 0.01 * (i % 100)),
        ("momentum_panel", "slider move", widgets.momentum_panel, "lr", lambda i: 1.0 + 0.01 * (i % 100)),
        ("adaptive_panel", "slider move", widgets.adaptive_panel, "lr_adagrad", lambda i: 0.5 * (1 + 0.01 * (i % 50))),
        ("adam_panel", "slider move", widgets.adam_panel, "lr", lambda i: 0.1 * (1 + 0.01 * (i % 50))),
        ("linear_net_panel", "slider move", widgets.linear_net_panel, "lr", lambda i: 0.05 * (1 + 0.01 * (i % 50))),
        ("second_order_panel", "slider move", widgets.second_order_panel, "damping", lambda i: 0.01 * (i % 50)),
        ("ogr_panel", "slider move", widgets.ogr_panel, "beta", lambda i: 0.4 + 0.004 * (i % 50)),
        ("comparison_panel", "slider move", widgets.comparison_panel, "lr", lambda i: 0.01 * (1 + 0.01 * (i % 50))),
        # a new step size for Adam: one run to compute, everything to draw
        ("race", "slider move", race_panel, "lr_adam", lambda i: adam_lr * (1 + 0.01 * (i % 50))),
        ("race", "new start", race_panel, "x", lambda i: -1.9 + 0.01 * (i % 100)),  # every run recomputed
    ]


def _slider_mover(panel, control: str, value):
    """A function that moves ``panel.controls[control]`` to its next value and fails if the redraw did."""
    moves = iter(range(1, 10 ** 6))
    slider = panel.controls[control]

    def move():
        new = value(next(moves))
        if new == slider.value:  # an unchanged value runs nothing: take the next one
            new = value(next(moves))
        slider.value = new
        if panel.error is not None:
            raise RuntimeError(panel.error)

    return move


def _failed(record: Record, error: Exception) -> Record:
    record.error = f"{type(error).__name__}: {error}".splitlines()[0][:120]
    return record


def _timed(record: Record, move, repeats: int) -> Record:
    """Fill a widget row with the median wall-clock ms of ``move()`` (an error becomes the row's error)."""
    try:
        median, times, cpu_ms = _median_ms(move, repeats)
    except Exception as error:
        return _failed(record, error)
    record.course_ms = median
    record.extra.update(repeats=len(times), min_ms=round(min(times), 3), max_ms=round(max(times), 3),
                        cpu_ms=round(cpu_ms, 3))
    return record
