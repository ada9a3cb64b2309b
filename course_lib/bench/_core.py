"""The machinery every benchmark suite shares: the record, the registry, the timer, the table.

A *suite* is a function that yields :class:`Record` objects; it is registered under
a name with :func:`register_suite` and run by ``python -m course_lib.bench``.
A record compares the course's code with a reference (``reference_ms``, e.g.
torch.optim's step) or stands alone (a latency with an absolute budget), and
carries its budget so that one table prints every suite.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import torch

__all__ = ["Record", "Suite", "SUITES", "register_suite", "device_synchronizer", "time_interleaved",
           "format_table", "records_to_json"]


@dataclass
class Record:
    """One measured row.

    ``budget`` bounds ``ratio`` (``budget_on="ratio"``, e.g. 1.3 for "at most 1.3x the
    reference") or ``course_ms`` itself (``budget_on="course_ms"``, e.g. 150 for "under
    150 ms"). ``reference_key`` is the name under which ``reference_ms`` also appears in
    the JSON and the table header (the optimizer suite calls it ``torch_ms``).
    ``error`` is set, and the times are ``None``, when the row could not be measured.
    """

    suite: str
    name: str
    case: str
    course_ms: float | None
    reference_ms: float | None = None
    budget: float | None = None
    budget_on: str = "ratio"
    reference: str = ""
    reference_key: str = "reference_ms"
    device: str = ""
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.course_ms is None or not self.reference_ms:
            return None
        return self.course_ms / self.reference_ms

    @property
    def budgeted_value(self) -> float | None:
        return self.ratio if self.budget_on == "ratio" else self.course_ms

    @property
    def over_budget(self) -> bool | None:
        value = self.budgeted_value
        if self.budget is None or value is None:
            return None
        return value > self.budget

    def as_dict(self) -> dict:
        """The JSON form: name, case, course_ms, <reference_key>, ratio first, then the rest."""
        record = {"name": self.name, "case": self.case, "course_ms": _rounded(self.course_ms)}
        record[self.reference_key] = _rounded(self.reference_ms)
        record["ratio"] = _rounded(self.ratio)
        record.update(budget=self.budget, budget_on=self.budget_on, over_budget=self.over_budget,
                      device=self.device, suite=self.suite, reference=self.reference,
                      reference_ms=_rounded(self.reference_ms), error=self.error)
        record.update(self.extra)
        return record


def _rounded(value: float | None, significant: int = 6) -> float | None:
    return None if value is None else float(f"{value:.{significant}g}")


@dataclass
class Suite:
    """A named benchmark: ``run(only=..., steps=...)`` yields records."""

    name: str
    run: Callable[..., Iterable[Record]]
    description: str = ""
    names: Callable[[], list[str]] = list  # the row names ``--only`` can pick, for ``--list``


SUITES: dict[str, Suite] = {}


def register_suite(name: str, description: str = "", names: Callable[[], list[str]] = list):
    """Decorator: register ``run(*, only=None, steps=None, **sizes) -> Iterable[Record]`` as suite ``name``."""
    def register(run):
        SUITES[name] = Suite(name, run, description, names)
        return run
    return register


def device_synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def time_interleaved(course: Callable[[], object], reference: Callable[[], object], *,
                     steps: int | None = None, warmup: int = 3, target_s: float = 3.0,
                     min_steps: int = 10, max_steps: int = 250, max_s: float = 15.0,
                     sync: Callable[[], None] = lambda: None) -> tuple[list[float], list[float]]:
    """Time ``course()`` and ``reference()`` call by call, in alternating order; return both lists in ms.

    The two run in turns (course then reference, then reference then course, ...)
    so that drift on a shared machine (other jobs, frequency changes, a warm cache)
    falls on both alike; take the medians. ``steps=None`` picks as many rounds as fit
    in ``target_s`` seconds, judged from the last warm-up round, within
    ``[min_steps, max_steps]``, but never more than fit in ``max_s`` seconds (at
    least 3): a step that takes seconds needs few samples. Warm-up (the first
    step allocates the state) stops after two rounds once it has taken ``target_s / 2``.
    """
    def timed(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return (time.perf_counter() - start) * 1e3

    last_round_ms = warmup_ms = 0.0
    for round_index in range(warmup):
        if round_index >= 2 and warmup_ms > target_s * 1e3 / 2:
            break
        last_round_ms = timed(course) + timed(reference)
        warmup_ms += last_round_ms
    if steps is None:
        round_ms = max(last_round_ms, 1e-3)
        steps = max(min_steps, min(max_steps, int(target_s * 1e3 / round_ms)))
        steps = min(steps, max(3, int(max_s * 1e3 / round_ms)))
    course_ms, reference_ms = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of one side's step would be charged to it
    try:
        for round_index in range(steps):
            if round_index % 2 == 0:
                course_ms.append(timed(course))
                reference_ms.append(timed(reference))
            else:
                reference_ms.append(timed(reference))
                course_ms.append(timed(course))
    finally:
        if gc_was_enabled:
            gc.enable()
    return course_ms, reference_ms


def relative_spread(times: list[float]) -> float:
    """Interquartile range over median: how noisy a series of timings was."""
    if len(times) < 4:
        return math.nan
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)


def records_to_json(records: Iterable[Record]) -> str:
    return json.dumps([record.as_dict() for record in records], indent=2)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _budget_cell(record: Record) -> str:
    if record.budget is None:
        return "-"
    return f"<={record.budget:g}x" if record.budget_on == "ratio" else f"<={record.budget:g}ms"


def format_table(records: Iterable[Record]) -> str:
    """One plain-text table per suite; rows over their budget are marked ``OVER``."""
    by_suite: dict[str, list[Record]] = {}
    for record in records:
        by_suite.setdefault(record.suite, []).append(record)
    blocks = []
    for suite_name, rows in by_suite.items():
        reference_header = rows[0].reference_key if len({r.reference_key for r in rows}) == 1 else "reference_ms"
        header = ["name", "case", "course_ms", reference_header, "ratio", "budget", ""]
        lines = [header]
        for r in rows:
            if r.error is not None:
                mark = f"ERROR {r.error}"
            elif r.over_budget:
                mark = f"OVER {_budget_cell(r).lstrip('<=')} budget"
            else:
                mark = ""
            lines.append([r.name, r.case, _cell(r.course_ms, ".2f"), _cell(r.reference_ms, ".2f"),
                          _cell(r.ratio, ".2f"), _budget_cell(r), mark])
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        numeric = {2, 3, 4}
        text_lines = []
        for line in lines:
            cells = [cell.rjust(width) if i in numeric else cell.ljust(width)
                     for i, (cell, width) in enumerate(zip(line, widths))]
            text_lines.append("  ".join(cells).rstrip())
        devices = sorted({r.device for r in rows if r.device})
        title = f"== {suite_name}" + (f" on {', '.join(devices)}" if devices else "") + " =="
        over = [f"{r.name}/{r.case}" for r in rows if r.over_budget]
        footer = f"over budget: {', '.join(over)}" if over else "all within budget"
        blocks.append("\n".join([title, *text_lines, footer]))
    return "\n\n".join(blocks)


def iter_suites(names: list[str] | None) -> Iterator[Suite]:
    """The registered suites named in ``names`` (all when ``None``), in registration order."""
    if names is None:
        yield from SUITES.values()
        return
    for name in names:
        if name not in SUITES:
            raise KeyError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
        yield SUITES[name]
