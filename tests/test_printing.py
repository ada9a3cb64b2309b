"""course_lib.printing: numbers that re-execute identically (round-off never reaches the page)."""

import math

from course_lib.printing import fmt, fmt_point, small


def test_fmt_four_significant_digits_and_non_finite():
    assert fmt(1 / 3) == "0.3333"
    assert fmt(123456.0) == "1.235e+05"
    assert fmt(2.0, 6) == "2"
    assert fmt(math.inf) == "inf" and fmt(math.nan) == "nan"


def test_small_hides_round_off_only():
    assert small(6.0e-16) == "< 1e-12"
    assert small(-3e-13) == "< 1e-12"
    assert small(5.303e-11) == "5.303e-11"
    assert small(0.0) == "< 1e-12"
    assert small(1e-9, floor=1e-8) == "< 1e-08"
    assert small(math.inf) == "inf"


def test_point_prints_round_off_coordinates_as_zero():
    assert fmt_point([-2.28e-18, 1.0000000000000002]) == "(0, 1)"
    assert fmt_point([1.503e-15, -1.0]) == "(0, -1)"
    assert fmt_point([0.0008985, 0.29291]) == "(0.0008985, 0.2929)"
