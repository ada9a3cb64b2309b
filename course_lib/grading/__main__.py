"""``python -m course_lib.grading NOTEBOOK [NOTEBOOK | DIR ...] [--json] [--output FILE] [--verbose]``

Grades each notebook against the course's notebook of the same name (default: ``solutions/``),
prints a table per notebook (or JSON with ``--json``) and exits with

* 0 when every exercise of every notebook passed,
* 1 when some exercise failed, or a course notebook is missing from a graded folder,
* 2 when a notebook could not be graded at all (no reference notebook of that name, the course copy
  was changed by the code being graded, ...).

A directory stands for every notebook of the course (every reference notebook with check cells): each
one is reported; one the directory lacks earns 0 and fails the grade, by name. Other notebooks in it are
skipped. The course (reference notebooks and grading code) is read and hashed before any learner code
runs. The JSON has one shape however many notebooks are graded:
``{"notebooks": [...], "points": ..., "max_points": ..., "passed": ..., "skipped": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .grader import DEFAULT_CELL_TIMEOUT, Course, GradeReport, default_solutions_dir, grade_notebook, missing_report


def _expand(paths, course: Course):
    """(what to grade, skipped paths): a list of ("grade", path) and ("missing", name, folder)."""
    jobs, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            present = {candidate.name: candidate for candidate in sorted(path.glob("*.ipynb"))}
            for name in course.notebooks():
                jobs.append(("grade", present[name]) if name in present else ("missing", name, path))
            skipped += [str(p) for n, p in present.items() if n not in course.notebooks()]
        else:
            jobs.append(("grade", path))
    return jobs, skipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading",
        description="Grade course notebooks: restore the original check cells, run them in a guarded kernel, score.")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                        help="a notebook, or a directory of notebooks, to grade")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--output", "-o", metavar="FILE", help="also write the JSON results to FILE")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every message in full")
    parser.add_argument("--solutions", metavar="DIR", default=None,
                        help="where the reference notebooks are (default: the course's solutions/)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                        help=f"time limit per cell (default {DEFAULT_CELL_TIMEOUT:g})")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="write the notebooks as run (check cells restored) to DIR")
    args = parser.parse_args(argv)

    solutions_dir = Path(args.solutions) if args.solutions else default_solutions_dir()
    course = Course(solutions_dir)  # read and hashed before any learner code runs
    jobs, skipped = _expand(args.notebooks, course)
    if not jobs:
        print(f"no course notebook to grade in {' '.join(args.notebooks)} "
              f"(the course's notebooks are in {solutions_dir})", file=sys.stderr)
        return 2
    width = max(60, min(140, shutil.get_terminal_size((100, 20)).columns))
    reports: list[GradeReport] = []
    for job in jobs:
        if job[0] == "missing":
            report = missing_report(job[1], course.references[job[1]], job[2])
        else:
            report = grade_notebook(job[1], solutions_dir=solutions_dir, cell_timeout=args.timeout,
                                    keep_dir=args.keep, course=course)
        reports.append(report)
        if not args.json:
            print(report.table(width=width, verbose=args.verbose))
            print()

    document = {"notebooks": [r.to_dict() for r in reports],
                "points": sum(r.points for r in reports),
                "max_points": sum(r.max_points for r in reports),
                "passed": all(r.passed for r in reports),
                "missing": [Path(r.notebook).name for r in reports if r.missing],
                "skipped": skipped}
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        if len(reports) > 1:
            print(f"grand total: {document['points']} / {document['max_points']}"
                  f"{'' if document['passed'] else '  (some exercises failed)'}")
        for name in document["missing"]:
            print(f"missing: {name} (its exercises earn 0)")
        for path in skipped:
            print(f"skipped {path}: not a notebook of the course")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    if any(r.error for r in reports):
        return 2
    return 0 if all(r.passed for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
