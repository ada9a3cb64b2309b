"""The benchmark runner's plumbing on tiny parameters: records, table, JSON. No timing assertions."""

import json
import subprocess
import sys

import pytest
import torch

from course_lib import bench
from course_lib.bench import __main__ as bench_cli
from course_lib.bench import optimizers as optimizer_suite

TINY_CASES = {"tiny": [(3, 4), (5,), ()], "vector": [(50,)]}
OPTIMIZER_KEYS = {"name", "case", "course_ms", "torch_ms", "ratio", "device", "budget", "over_budget", "error"}


def test_resnet18_shapes_match_torchvision():
    shapes = optimizer_suite.resnet18_shapes()
    assert len(shapes) == 62
    assert sum(torch.Size(shape).numel() for shape in shapes) == 11_689_512
    assert shapes[0] == (64, 3, 7, 7) and shapes[-2:] == [(1000, 512), (1000,)]


def test_optimizer_suite_records_on_tiny_parameters():
    records = list(optimizer_suite.run_optimizer_suite(cases=TINY_CASES, steps=2, warmup=1, device="cpu"))
    assert len(records) == len(optimizer_suite.ROWS) * len(TINY_CASES)
    assert {(r.name, r.case) for r in records} == {(row.name, case) for row in optimizer_suite.ROWS
                                                     for case in TINY_CASES}
    for record in records:
        data = record.as_dict()
        assert OPTIMIZER_KEYS <= data.keys()
        assert list(data)[:5] == ["name", "case", "course_ms", "torch_ms", "ratio"]
        budget = {row.name: row.budget for row in optimizer_suite.ROWS}[record.name]  # None: a cost reference
        assert data["device"] == "cpu" and data["budget"] == budget and budget in (1.1, None)
        if record.name.startswith("SGD"):  # the optimizers may still be placeholders elsewhere; SGD is real
            assert record.error is None
        if record.error is None:
            assert data["course_ms"] > 0 and data["torch_ms"] > 0
            assert data["ratio"] == pytest.approx(data["course_ms"] / data["torch_ms"], rel=1e-3)
            assert data["steps"] == 2 and data["over_budget"] in ((True, False) if budget else (None,))
        else:
            assert data["course_ms"] is None and data["ratio"] is None
    json.loads(bench.records_to_json(records))


def test_only_selects_rows_by_row_or_class_name():
    records = list(optimizer_suite.run_optimizer_suite(only=["sgd"], cases={"tiny": [(4,)]}, steps=1, warmup=0,
                                                       device="cpu"))
    assert [r.name for r in records] == ["SGD", "SGD momentum"]
    records = list(optimizer_suite.run_optimizer_suite(only=["SGD momentum"], cases={"tiny": [(4,)]}, steps=1,
                                                       warmup=0, device="cpu"))
    assert [r.name for r in records] == ["SGD momentum"]


def test_cli_json_and_table(monkeypatch, capsys):
    monkeypatch.setattr(optimizer_suite, "CASES", TINY_CASES)
    assert bench_cli.main(["--json", "--only", "SGD,Adam", "--steps", "2"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {(r["name"], r["case"]) for r in records} == {(name, case) for name in ("SGD", "SGD momentum", "Adam")
                                                         for case in TINY_CASES}
    assert all(OPTIMIZER_KEYS <= r.keys() and r["suite"] == "optimizers" for r in records)

    assert bench_cli.main(["--suite", "optimizers", "--only", "SGD", "--steps", "2"]) == 0
    table = capsys.readouterr().out
    assert "torch_ms" in table and "SGD momentum" in table and "vector" in table


def test_table_marks_rows_over_budget_and_errors():
    records = [
        bench.Record("optimizers", "Fast", "c", 1.0, 1.0, budget=1.3, reference_key="torch_ms"),
        bench.Record("optimizers", "Slow", "c", 2.0, 1.0, budget=1.3, reference_key="torch_ms"),
        bench.Record("optimizers", "Broken", "c", None, None, budget=1.3, reference_key="torch_ms",
                     error="TypeError: nope"),
        bench.Record("widgets", "slider", "race", 120.0, budget=150, budget_on="course_ms"),
        bench.Record("widgets", "slider", "big", 170.0, budget=150, budget_on="course_ms"),
    ]
    table = bench.format_table(records)
    lines = {line.split()[0] + "/" + line.split()[1]: line for line in table.splitlines()
             if line and not line.startswith(("==", "name", "over", "all"))}
    assert "OVER" not in lines["Fast/c"] and "OVER" in lines["Slow/c"] and "ERROR" in lines["Broken/c"]
    assert "OVER" not in lines["slider/race"] and "OVER" in lines["slider/big"]
    assert "reference_ms" in table and "torch_ms" in table
    assert records[3].ratio is None and records[4].over_budget is True
    json.loads(bench.records_to_json(records))


def test_check_flag_fails_on_over_budget(monkeypatch, capsys):
    def fake_suite(**options):
        yield bench.Record("fake", "slow", "c", 2.0, 1.0, budget=1.3)
    monkeypatch.setitem(bench.SUITES, "fake", bench.Suite("fake", fake_suite))
    assert bench_cli.main(["--suite", "fake", "--check"]) == 1
    assert bench_cli.main(["--suite", "fake"]) == 0
    assert "OVER" in capsys.readouterr().out


def test_time_interleaved_counts_steps():
    calls = []
    course, reference = bench.time_interleaved(lambda: calls.append("c"), lambda: calls.append("r"),
                                               steps=4, warmup=1)
    assert len(course) == len(reference) == 4 and calls.count("c") == calls.count("r") == 5
    assert calls[2:6] == ["c", "r", "r", "c"]  # alternating order after the warm-up round


def test_module_entry_point_lists_suites():
    result = subprocess.run([sys.executable, "-m", "course_lib.bench", "--list"], capture_output=True, text=True,
                            check=True)
    assert "optimizers" in result.stdout and "AdaBound" in result.stdout


def test_cli_restores_thread_count(monkeypatch, capsys):
    monkeypatch.setattr(optimizer_suite, "CASES", {"tiny": [(4,)]})
    before = torch.get_num_threads()
    assert bench_cli.main(["--only", "SGD", "--steps", "1", "--threads", "1", "--json"]) == 0
    assert torch.get_num_threads() == before
    assert all(r["threads"] == 1 for r in json.loads(capsys.readouterr().out))
