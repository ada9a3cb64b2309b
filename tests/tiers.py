"""The two tiers of the suite: `make test` runs one notebook of each end-to-end kind (a lesson in the browser, a
solution and a forged lesson through the grader); `make test-all` and CI (marker ``whole_course``) run them all."""

import pytest

EVERY_RUN = ("02_momentum.ipynb",)
"""The notebook `make test` runs end to end: an optimizer-class exercise, and a panel with three kinds of slider."""


def course_params(paths):
    """One ``pytest.param`` per notebook path, marked ``whole_course`` unless it is in :data:`EVERY_RUN`."""
    return [pytest.param(path, id=path.name, marks=() if path.name in EVERY_RUN else pytest.mark.whole_course)
            for path in paths]
