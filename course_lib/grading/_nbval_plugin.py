"""A pytest plugin that records, for every notebook cell nbval runs, its outcome and why it failed.

The grader runs ``pytest --nbval-lax -p course_lib.grading._nbval_plugin`` in a subprocess with
``COURSE_GRADING_RESULTS`` naming a JSON file; this plugin rewrites that file after every cell,
so that what ran before a crash or a time-out is still known.
"""

from __future__ import annotations

import json
import os

import pytest

_records: dict = {}


def _stream_text(outputs, name="stdout") -> str:
    return "".join(o.get("text", "") for o in outputs or [] if o.get("output_type") == "stream"
                   and o.get("name") == name)


def _why(item, report) -> dict:
    """ename / evalue of the cell's error, or what differs in its output."""
    outputs = getattr(item, "test_outputs", None) or []
    for output in outputs:
        if output.get("output_type") == "error":
            return {"ename": output.get("ename", ""), "evalue": output.get("evalue", "")}
    text = getattr(report, "longreprtext", "") or ""
    if "Cell outputs differ" in text:
        expected = {n: _stream_text(item.cell.get("outputs"), n) for n in ("stdout", "stderr")}
        got = {n: _stream_text(outputs, n) for n in ("stdout", "stderr")}
        return {"ename": "OutputMismatch", "evalue": "", "expected": expected, "got": got}
    if "Timeout" in text:
        return {"ename": "Timeout", "evalue": text.strip().splitlines()[-1] if text.strip() else ""}
    return {"ename": "Failed", "evalue": text.strip()[-2000:]}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cell = getattr(item, "cell", None)
    if cell is None:
        return
    key = item.cell_num
    record = _records.setdefault(key, {"cell_num": key, "cell_id": cell.get("id"), "outcome": "passed"})
    if report.when == "call" and report.passed:
        pass
    elif report.skipped:
        if hasattr(report, "wasxfail"):
            record["outcome"] = "failed"
            record.update(ename="NotRun", evalue=f"not passed after an earlier cell timed out ({report.wasxfail})")
        elif record["outcome"] == "passed":
            record["outcome"] = "skipped"
    elif report.failed:
        record["outcome"] = "failed"
        record.update(_why(item, report))
    _write()


def _write() -> None:
    path = os.environ.get("COURSE_GRADING_RESULTS")
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(sorted(_records.values(), key=lambda r: r["cell_num"]), f)
    os.replace(tmp, path)
