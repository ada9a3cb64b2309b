"""A pytest plugin that records, for every notebook cell nbval runs, when it started, its outcome and why it failed.

The grader runs ``pytest --nbval-lax -p course_lib.grading._nbval_plugin`` in a subprocess with
``COURSE_GRADING_RESULTS`` naming a JSON file; this plugin rewrites that file when a cell starts
(``outcome: "running"``, with the time) and when it ends, so that the grader knows which cell was
running when the kernel died or a time limit was hit. These records only explain a failure: the
grader scores a check from the guard's authenticated verdict (:mod:`course_lib.grading._guard`).
"""

from __future__ import annotations

import json
import os
import time

import pytest

_records: dict = {}


def _stream_text(outputs, name="stdout") -> str:
    return "".join(o.get("text", "") for o in outputs or [] if o.get("output_type") == "stream"
                   and o.get("name") == name)


def _why(item, report) -> dict:
    """ename / evalue of the cell's error, or what differs in its output."""
    text = getattr(report, "longreprtext", "") or ""
    if "Timeout of" in text:
        return {"ename": "Timeout", "evalue": text.strip().splitlines()[0][:300] if text.strip() else ""}
    if "Kernel dead on test start" in text:
        return {"ename": "KernelDead", "evalue": "the kernel was not running when the cell started"}
    outputs = getattr(item, "test_outputs", None) or []
    for output in outputs:
        if output.get("output_type") == "error":
            return {"ename": output.get("ename", ""), "evalue": output.get("evalue", "")}
    if "Cell outputs differ" in text:
        expected = {n: _stream_text(item.cell.get("outputs"), n) for n in ("stdout", "stderr")}
        got = {n: _stream_text(outputs, n) for n in ("stdout", "stderr")}
        return {"ename": "OutputMismatch", "evalue": "", "expected": expected, "got": got}
    return {"ename": "Failed", "evalue": text.strip()[-2000:]}


def _record(item) -> dict | None:
    cell = getattr(item, "cell", None)
    if cell is None:
        return None
    return _records.setdefault(item.cell_num, {"cell_num": item.cell_num, "cell_id": cell.get("id"),
                                               "outcome": "pending"})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    record = _record(item)
    if record is not None:
        record.update(outcome="running", started=time.time())
        _write()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    record = _record(item)
    if record is None:
        return
    if report.when == "call" and report.passed:
        record["outcome"] = "passed"
    elif report.skipped:
        if hasattr(report, "wasxfail"):
            record["outcome"] = "failed"
            record.update(ename="NotRun", evalue="an earlier cell ran past the time limit")
        elif record["outcome"] in ("pending", "running"):
            record["outcome"] = "skipped"
    elif report.failed:
        record["outcome"] = "failed"
        record.update(_why(item, report))
    record["ended"] = time.time()
    _write()


def _write() -> None:
    path = os.environ.get("COURSE_GRADING_RESULTS")
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(sorted(_records.values(), key=lambda r: r["cell_num"]), f)
    os.replace(tmp, path)
