"""The second_order benchmark suite works: structure only, tiny sizes, no timing assertions."""

import json

from course_lib import bench
from course_lib.bench import second_order as suite


def test_suite_is_registered_with_its_rows():
    assert "second_order" in bench.SUITES
    assert bench.SUITES["second_order"].names() == ["hvp", "kfac step"]


def test_suite_records_on_a_tiny_mlp():
    records = list(suite.run_second_order_suite(steps=2, device="cpu", sizes=(5, 7, 3), batch=8))
    assert [r.name for r in records] == ["hvp", "kfac step"]
    hvp, kfac = records
    assert hvp.error is None and kfac.error is None
    assert hvp.budget == 4.0 and hvp.budget_on == "ratio" and hvp.ratio > 0 and hvp.over_budget in (True, False)
    assert kfac.budget is None and kfac.ratio > 0 and kfac.extra["repeats"] == 2
    data = json.loads(bench.records_to_json(records))
    assert data[0]["gradient_ms"] > 0 and data[1]["sgd_ms"] > 0


def test_only_picks_rows():
    records = list(suite.run_second_order_suite(only=["kfac step"], steps=1, device="cpu", sizes=(3, 2), batch=4))
    assert [r.name for r in records] == ["kfac step"]
    assert list(suite.run_second_order_suite(only=["Adam"], steps=1)) == []
