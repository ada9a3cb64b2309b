"""How the notebooks print numbers, so that stored outputs re-execute identically on every machine.

nbval compares printed text, so a printed number must not depend on round-off: two CPUs (or two
BLAS builds) agree to about 15 digits, not to the last bit. Hence two rules:

* :func:`fmt`: four significant digits (the course's convention);
* :func:`small`: a number that *is* round-off (an error that should be zero, a loss at machine
  precision) prints as ``"< 1e-12"`` rather than as digits that change from machine to machine.
"""

from __future__ import annotations

import math

__all__ = ["fmt", "small", "fmt_point"]


def fmt(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits (``"inf"``/``"nan"`` as such)."""
    x = float(x)
    return f"{x:.{digits}g}" if math.isfinite(x) else str(x)


def small(x: float, floor: float = 1e-12, digits: int = 4) -> str:
    """:func:`fmt` of ``x``, or ``"< floor"`` when ``|x| < floor`` (round-off, not a result)."""
    x = float(x)
    if math.isfinite(x) and abs(x) < floor:
        return f"< {floor:.0e}"
    return fmt(x, digits)


def fmt_point(coordinates, floor: float = 1e-12, digits: int = 4) -> str:
    """``"(x, y, ...)"`` with each coordinate below ``floor`` in size printed as ``0``."""
    values = [float(c) for c in coordinates]
    return "(" + ", ".join("0" if abs(v) < floor else fmt(v, digits) for v in values) + ")"
