"""Notebook 06's checks: the correct code passes with one fixed line; each planted bug is caught."""

import pytest
import torch

from course_lib import saddles
from course_lib.grading import check_classify_critical_point, check_perturbed_gd


def _eig(h):
    return torch.linalg.eigvalsh(torch.as_tensor(h, dtype=torch.float64))


def classify_ok(hessian, tol):
    e = _eig(hessian)
    if e.min() > tol:
        return "minimum"
    if e.max() < -tol:
        return "maximum"
    if e.min() < -tol and e.max() > tol:
        return "strict saddle"
    return "degenerate"


def classify_non_strict(hessian, tol):  # >= instead of >
    e = _eig(hessian)
    if e.min() >= tol:
        return "minimum"
    if e.max() <= -tol:
        return "maximum"
    if e.min() <= -tol and e.max() >= tol:
        return "strict saddle"
    return "degenerate"


def classify_ignores_tol(hessian, tol):
    return classify_ok(hessian, 0.0)


def classify_any_negative_is_saddle(hessian, tol):
    e = _eig(hessian)
    if e.min() < -tol and e.max() <= tol and e.max() >= -tol:
        return "strict saddle"
    return classify_ok(hessian, tol)


def classify_says_saddle(hessian, tol):
    kind = classify_ok(hessian, tol)
    return "saddle" if kind == "strict saddle" else kind


def classify_diagonal_only(hessian, tol):
    return classify_ok(torch.diag(torch.diag(torch.as_tensor(hessian))), tol)


def _pgd(grad_fn, x0, lr, radius, threshold, steps, generator, *, kick_and_step=False, no_root=False, strict=False,
         rand_first=False, global_rng=False, no_x0=False):
    x = x0.clone()
    points = [] if no_x0 else [x.clone()]
    d = x.numel()
    for _ in range(steps):
        g = grad_fn(x)
        n = torch.linalg.vector_norm(g)
        if (n < threshold) if strict else (n <= threshold):
            gen = None if global_rng else generator
            if rand_first:
                r = radius * torch.rand((), generator=gen, dtype=x.dtype) ** (1 / d)
                u = torch.randn(d, generator=gen, dtype=x.dtype)
            else:
                u = torch.randn(d, generator=gen, dtype=x.dtype)
                r = radius * torch.rand((), generator=gen, dtype=x.dtype) ** (1 if no_root else 1 / d)
            x = x + r * u / torch.linalg.vector_norm(u)
            if kick_and_step:
                x = x - lr * g
        else:
            x = x - lr * g
        points.append(x.clone())
    return torch.stack(points)


def pgd_ok(*args):
    return _pgd(*args)


def test_correct_code_passes_with_one_line(capsys):
    check_classify_critical_point(classify_ok)
    check_classify_critical_point(saddles.classify_critical_point)
    check_perturbed_gd(pgd_ok)
    check_perturbed_gd(saddles.perturbed_gd)
    assert capsys.readouterr().out == ("Classify critical points: all 11 checks passed\n" * 2
                                       + "Perturbed gradient descent: all 5 checks passed\n" * 2)


@pytest.mark.parametrize("fn, pattern", [
    (classify_non_strict, r"case 10 of 11 .*expected 'degenerate', got 'strict saddle'"),
    (classify_ignores_tol, r"case 9 of 11 .*expected 'degenerate', got 'minimum'"),
    (classify_any_negative_is_saddle, r"case 7 of 11 .*expected 'degenerate', got 'strict saddle'"),
    (classify_says_saddle, r"case 3 of 11 .*returned 'saddle'"),
    (classify_diagonal_only, r"case 4 of 11 .*expected 'strict saddle', got 'degenerate'"),
], ids=["non-strict inequalities", "ignores tol", "negative-and-zero is a saddle", "wrong name", "diagonal only"])
def test_planted_classify_bug_is_caught(fn, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_classify_critical_point(fn)


@pytest.mark.parametrize("option, pattern", [
    ("kick_and_step", r"case 1 of 5 .*a kick \(\|\|g\|\| <= threshold\): iterate x_\d+ \(row \d+\) differs"),
    ("no_root", r"case 1 of 5 .*a kick"),
    ("strict", r"case 3 of 5 .*step 1, a kick"),
    ("rand_first", r"case 1 of 5 .*a kick"),
    ("global_rng", r"case 1 of 5 .*a kick"),
    ("no_x0", r"case 1 of 5 .*returned shape \(150, 2\), expected \(151, 2\)"),
])
def test_planted_pgd_bug_is_caught(option, pattern):
    def buggy(*args):
        return _pgd(*args, **{option: True})
    with pytest.raises(AssertionError, match=pattern):
        check_perturbed_gd(buggy)


def test_not_implemented_passes_through():
    def stub(*args):
        raise NotImplementedError
    for check in (check_classify_critical_point, check_perturbed_gd):
        with pytest.raises(NotImplementedError):
            check(stub)
