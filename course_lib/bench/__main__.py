"""``python -m course_lib.bench [--suite NAME] [--only NAME] [--steps N] [--threads N] [--json] [--check]``."""

from __future__ import annotations

import argparse
import sys

import torch

from . import SUITES, format_table, records_to_json, run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.bench",
        description="Measure the performance budgets of docs/design.md (section 6) and print a table.")
    parser.add_argument("--suite", action="append", choices=list(SUITES),
                        help="run this suite (repeatable; default: all)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only these rows, e.g. Adam or 'SGD momentum' (repeatable, or comma-separated)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="timed steps per row (default: as many as fit in about 3 s)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1; 0 keeps torch's choice). One thread is steadier: "
                             "a parallel op waits for its slowest thread, so on a shared machine one "
                             "descheduled thread multiplies the step time of both sides")
    parser.add_argument("--json", action="store_true", help="print the records as JSON instead of the table")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when a row is over its budget or failed")
    parser.add_argument("--list", action="store_true", help="list the suites and their row names, then exit")
    args = parser.parse_args(argv)
    if args.only:
        args.only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name}: {suite.description}")
            for name in suite.names():
                print(f"    {name}")
        return 0
    options = {"only": args.only}
    if args.steps is not None:
        options["steps"] = args.steps
    records = []
    threads_before = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        for record in run(args.suite, **options):
            records.append(record)
            if not args.json:  # show progress on stderr, keep stdout for the result
                ratio = "-" if record.ratio is None else f"{record.ratio:.2f}"
                print(f"  {record.suite}: {record.name} / {record.case}: ratio {ratio}", file=sys.stderr,
                      flush=True)
    finally:
        torch.set_num_threads(threads_before)  # main() may be called inside a longer process (tests)
    print(records_to_json(records) if args.json else format_table(records))
    failed = any(r.over_budget or r.error is not None for r in records)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
