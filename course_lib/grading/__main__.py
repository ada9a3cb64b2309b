"""``python -m course_lib.grading NOTEBOOK [NOTEBOOK | DIR ...] [--json] [--output FILE]``

Grades each notebook against the course's notebook of the same name (default: ``solutions/``),
prints a table per notebook (or JSON with ``--json``) and exits with

* 0 when every exercise of every notebook passed,
* 1 when some exercise failed,
* 2 when a notebook could not be graded at all (no reference notebook of that name, ...).

A directory stands for the notebooks in it that the course has (other notebooks are skipped).
With one notebook the JSON is that notebook's report; with several it is
``{"notebooks": [...], "points": ..., "max_points": ..., "passed": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .grader import DEFAULT_CELL_TIMEOUT, GradeReport, default_solutions_dir, grade_notebook


def _expand(paths, solutions_dir: Path) -> tuple[list[Path], list[str]]:
    notebooks, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            for candidate in sorted(path.glob("*.ipynb")):
                if (solutions_dir / candidate.name).is_file():
                    notebooks.append(candidate)
                else:
                    skipped.append(str(candidate))
        else:
            notebooks.append(path)
    return notebooks, skipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading",
        description="Grade course notebooks: restore the original check cells, run under nbval, score.")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                        help="a notebook, or a directory of notebooks, to grade")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--output", "-o", metavar="FILE", help="also write the JSON results to FILE")
    parser.add_argument("--solutions", metavar="DIR", default=None,
                        help="where the reference notebooks are (default: the course's solutions/)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                        help=f"time limit per cell (default {DEFAULT_CELL_TIMEOUT:g})")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="write the notebooks as run (check cells restored) to DIR")
    args = parser.parse_args(argv)

    solutions_dir = Path(args.solutions) if args.solutions else default_solutions_dir()
    notebooks, skipped = _expand(args.notebooks, solutions_dir)
    if not notebooks:
        print(f"no course notebook to grade in {' '.join(args.notebooks)} "
              f"(the course's notebooks are in {solutions_dir})", file=sys.stderr)
        return 2
    reports: list[GradeReport] = []
    for notebook in notebooks:
        report = grade_notebook(notebook, solutions_dir=solutions_dir, cell_timeout=args.timeout,
                                keep_dir=args.keep)
        reports.append(report)
        if not args.json:
            print(report.table())
            print()

    if len(reports) == 1:
        document = reports[0].to_dict()
    else:
        document = {"notebooks": [r.to_dict() for r in reports],
                    "points": sum(r.points for r in reports),
                    "max_points": sum(r.max_points for r in reports),
                    "passed": all(r.passed for r in reports)}
    if skipped:
        document["skipped"] = skipped
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        if len(reports) > 1:
            print(f"grand total: {document['points']} / {document['max_points']}"
                  f"{'' if document['passed'] else '  (some exercises failed)'}")
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
