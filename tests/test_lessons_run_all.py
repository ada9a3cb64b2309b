"""Every unsolved lesson runs to its end, as under JupyterLab's Run All, with every panel drawn.

A lesson is executed as a learner's lab runs it (no ``PYTEST_VERSION`` nor ``COURSE_STRICT_CHECKS`` in the
kernel's environment): each check of an unsolved exercise must print its "Not solved yet" line instead of
raising, no cell may show an error, and every panel cell must show its widget with a picture and no error
text. The strict side (nbval and the grader fail unsolved work) is tested in ``test_grading.py``.

Where Chromium is installed (CI), ``test_browser.py`` does all of this in JupyterLab itself and this test
is skipped (``COURSE_RUN_ALL_WITHOUT_BROWSER=1`` runs it anyway).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from course_lib.grading._common import NOT_SOLVED, STRICT_ENV
from tiers import course_params

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _lab_environment() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", STRICT_ENV, "PYTEST_CURRENT_TEST")}
    env["COURSE_DEVICE"] = "cpu"
    return env


def run_all(path: Path):
    """The lesson after Run All in a lab kernel (errors kept in the outputs, as JupyterLab shows them)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=_lab_environment())
    return nb


def _text(outputs) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("display_data", "execute_result"):
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def _panel_models(nb, model_id: str) -> list:
    """The widget models of the panel (its VBox and everything inside), from the widget state nbclient saves."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    seen, todo, models = set(), [model_id], []
    while todo:
        model = state.get(todo.pop())
        if not model:
            continue
        models.append(model)
        for child in model.get("state", {}).get("children", []):
            child = str(child).removeprefix("IPY_MODEL_")
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return models


@pytest.mark.slow
@pytest.mark.skipif(Path("/usr/bin/chromium").exists() and not os.environ.get("COURSE_RUN_ALL_WITHOUT_BROWSER"),
                    reason="test_browser.py runs every lesson with Run All in JupyterLab itself")
@pytest.mark.parametrize("lesson", course_params(LESSONS))  # `make test`: lesson 02; `make test-all`: every lesson
def test_an_unsolved_lesson_runs_to_the_end_with_every_panel(lesson):
    nb = run_all(lesson)
    errors = [(i + 1, cell.get("id"), o.get("ename"), o.get("evalue", "")[:200])
              for i, cell in enumerate(nb.cells) for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], f"cells that stop Run All: {errors}"
    checks = [cell for cell in nb.cells if "check" in cell.get("metadata", {}).get("tags", [])]
    assert checks, "a lesson has graded exercises"
    for cell in checks:
        text = _text(cell.outputs)
        assert text.startswith(NOT_SOLVED) and "passed" not in text, (cell.id, text)
    panels = [cell for cell in nb.cells if cell.cell_type == "code"
              and any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", []))]
    assert panels, "every lesson has a slider panel"
    for cell in panels:
        model_id = next(o["data"][WIDGET_VIEW]["model_id"] for o in cell.outputs if WIDGET_VIEW in o.get("data", {}))
        models = _panel_models(nb, model_id)
        images = [m for m in models if m.get("model_name") == "ImageModel"]
        assert images and images[0]["state"].get("width"), f"{cell.id}: the panel shows no picture"
        errors = [m["state"].get("value", "") for m in models if m.get("model_name") == "HTMLModel"]
        assert not any("Error" in text for text in errors), f"{cell.id}: the panel shows an error: {errors}"
