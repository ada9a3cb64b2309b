"""Benchmarks for the performance budgets of docs/design.md (section 6): ``python -m course_lib.bench``.

Each suite is a function registered with :func:`register_suite` that yields
:class:`Record` rows (name, case, course_ms, reference_ms, ratio, budget);
the command line runs the chosen suites and prints one table per suite, or
the records as JSON (``--json``). Suites so far:

* ``optimizers`` (:mod:`course_lib.bench.optimizers`): one step of each
  ``course_lib.optim`` optimizer vs ``torch.optim``'s default, budget 1.1x (Muon vs torch.optim.Muon,
  schedule-free vs the ``schedulefree`` package; Lion and Shampoo beside AdamW as a cost reference).
* ``trajectories`` (:mod:`course_lib.bench.surfaces`): ``run_batch`` of 10,000
  starts x 200 steps on a 2-D surface, budget 2 s.
* ``widgets`` (:mod:`course_lib.bench.surfaces`): one update of the optimizer-race
  panel (recompute, redraw, PNG), budget 150 ms median.
* ``second_order`` (:mod:`course_lib.bench.second_order`): one Hessian-vector product vs one
  gradient on a small MLP (budget 4x), one K-FAC step vs one SGD step.
* ``ogr`` (:mod:`course_lib.bench.ogr`): one OGR step (diagonal, subspace d = 2, 8, 32) vs one
  SGD-momentum step, D = 1e4 to 1e6; information, no budget.

Timing: the course's code and the reference run in alternating turns, each
call timed on its own (with a device synchronize on GPUs), and the medians are
compared, so that drift on a shared machine falls on both. The command line runs
torch with one CPU thread unless ``--threads`` says otherwise: a parallel op waits
for its slowest thread, and on a busy 2-core machine a descheduled thread would
multiply step times at random.

To add a suite, write a module here with a ``@register_suite("name")`` function
and import it below.
"""

from ._core import (SUITES, Record, Suite, device_synchronizer, format_table, iter_suites, records_to_json,
                    register_suite, time_interleaved)
from . import optimizers  # noqa: E402,F401  (registers the suite)
from . import surfaces  # noqa: E402,F401  (registers the suites trajectories and widgets)
from . import second_order  # noqa: E402,F401  (registers the suite second_order)
from . import ogr  # noqa: E402,F401  (registers the suite ogr)

__all__ = ["SUITES", "Record", "Suite", "register_suite", "time_interleaved", "device_synchronizer",
           "format_table", "records_to_json", "iter_suites", "run"]


def run(suites: list[str] | None = None, **options):
    """Yield the records of the named suites (all when ``None``); ``options`` go to every suite."""
    for suite in iter_suites(suites):
        yield from suite.run(**options)
