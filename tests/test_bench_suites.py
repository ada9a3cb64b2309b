"""The benchmark suites of the surfaces work (trajectories, widgets): structure only, on tiny sizes, no timing
assertions."""

import json

from course_lib import bench
from course_lib.bench import __main__ as bench_cli
from course_lib.bench import surfaces as surface_suites

KEYS = {"name", "case", "course_ms", "reference_ms", "ratio", "budget", "budget_on", "over_budget", "device", "error"}


def test_suites_are_registered_with_their_rows():
    assert {"trajectories", "widgets"} <= set(bench.SUITES)
    assert bench.SUITES["trajectories"].names() == ["run_batch", "run_batch autograd"]
    assert bench.SUITES["widgets"].names() == [*surface_suites.PANEL_ROWS, "race"]


def test_trajectories_suite_records_on_a_small_run():
    records = list(surface_suites.run_trajectories_suite(steps=1, starts=50, trajectory_steps=5, device="cpu"))
    assert [(r.name, r.case) for r in records] == [("run_batch", "Adam lr 0.01"), ("run_batch", "SGD momentum 0.9"),
                                                    ("run_batch autograd", "Adam lr 0.01")]
    for record in records:
        data = record.as_dict()
        assert KEYS <= data.keys() and record.error is None
        assert data["budget"] == 2000.0 and data["budget_on"] == "course_ms" and data["ratio"] is None
        assert data["course_ms"] > 0 and data["over_budget"] in (True, False)
        assert data["starts"] == 50 and data["steps"] == 5 and data["repeats"] == 1
    json.loads(bench.records_to_json(records))


def test_widgets_suite_records():
    records = list(surface_suites.run_widgets_suite(steps=2))
    panels = [(name, "slider move") for name in surface_suites.PANEL_ROWS]
    assert [(r.name, r.case) for r in records] == panels + [("race", "slider move"), ("race", "new start")]
    for record in records:
        assert record.error is None and record.course_ms > 0 and record.budget == 150.0
        assert record.budget_on == "course_ms" and record.over_budget in (True, False)


def test_a_widget_row_times_the_panels_own_redraw_and_reports_its_error(monkeypatch):
    import ipywidgets
    from matplotlib.figure import Figure

    from course_lib.widgets import build_panel

    calls = []

    def update(lr):
        calls.append(lr)
        if lr > 0.5:
            raise ValueError("Invalid learning rate")
        return Figure(figsize=(1, 1))

    def make_panel():
        return build_panel(update, {"lr": ipywidgets.FloatSlider(value=0.1, min=0.0, max=1.0)})

    moves = [("fine", "slider move", make_panel, "lr", lambda i: 0.1 + 0.01 * i),
             ("broken", "slider move", make_panel, "lr", lambda i: 0.9)]
    monkeypatch.setattr(surface_suites, "_panel_moves", lambda: moves)
    monkeypatch.setattr(surface_suites, "PANEL_ROWS", ["fine", "broken"])
    fine, broken = surface_suites.run_widgets_suite(steps=3)
    assert fine.error is None and fine.course_ms > 0 and len(set(calls)) >= 4  # the slider's moves redrew the panel
    assert broken.error == "RuntimeError: ValueError: Invalid learning rate" and broken.course_ms is None


def test_only_filters_rows_and_leaves_other_suites_alone():
    assert [r.name for r in surface_suites.run_trajectories_suite(only=["run_batch autograd"], steps=1, starts=10,
                                                                  trajectory_steps=2, device="cpu")] == \
        ["run_batch autograd"]
    assert list(surface_suites.run_trajectories_suite(only=["Adam"], steps=1, starts=10, trajectory_steps=2)) == []
    assert list(surface_suites.run_widgets_suite(only=["SGD"], steps=1)) == []


def test_cli_table_shows_absolute_budgets(monkeypatch, capsys):
    original = surface_suites.run_trajectories_suite

    def tiny(**options):
        return original(**{**options, "starts": 20, "trajectory_steps": 3})

    monkeypatch.setitem(bench.SUITES, "trajectories", bench.Suite("trajectories", tiny))
    assert bench_cli.main(["--suite", "trajectories", "--steps", "1"]) == 0
    table = capsys.readouterr().out
    assert "== trajectories on cpu ==" in table and "<=2000ms" in table and "run_batch autograd" in table
