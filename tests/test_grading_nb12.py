"""Notebook 12's checks: the correct code passes with one fixed line; each planted bug is caught."""

import pytest
import torch

from course_lib import factorization as fz
from course_lib.grading import check_effective_rank, check_factor_gradient_step, check_power_sharpness, check_svt
from course_lib.second_order.sharpness import power_iteration


# ---------------------------------------------------------------------------------------------- power iteration

def power_ok(matvec, v0, iters):
    v = v0 / v0.norm()
    estimate = 0.0
    for _ in range(iters):
        h = matvec(v)
        estimate = torch.dot(v, h).item()
        v = h / h.norm()
    return estimate


def power_no_normalization_of_v0(matvec, v0, iters):
    v, estimate = v0, 0.0
    for _ in range(iters):
        h = matvec(v)
        estimate = torch.dot(v, h).item()
        v = h / h.norm()
    return estimate


def power_norm_not_rayleigh(matvec, v0, iters):  # ||Hv||: loses the sign of a negative eigenvalue
    v, estimate = v0 / v0.norm(), 0.0
    for _ in range(iters):
        h = matvec(v)
        estimate = h.norm().item()
        v = h / h.norm()
    return estimate


def power_one_extra_product(matvec, v0, iters):
    v = v0 / v0.norm()
    for _ in range(iters):
        h = matvec(v)
        v = h / h.norm()
    return torch.dot(v, matvec(v)).item()


def power_abs(matvec, v0, iters):
    return abs(power_ok(matvec, v0, iters))


def power_one_iteration_short(matvec, v0, iters):
    return power_ok(matvec, v0, max(iters - 1, 1)) if iters > 1 else power_ok(matvec, v0, 1)


def test_power_sharpness_correct_passes(capsys):
    check_power_sharpness(power_ok)
    check_power_sharpness(lambda matvec, v0, iters: power_iteration(matvec, v0, iters)[0])
    assert capsys.readouterr().out == "Sharpness by power iteration: all 6 checks passed\n" * 2


@pytest.mark.parametrize("bug", [power_no_normalization_of_v0, power_norm_not_rayleigh, power_one_extra_product,
                                 power_abs, power_one_iteration_short])
def test_power_sharpness_bugs_caught(bug):
    with pytest.raises(AssertionError, match=r"Sharpness by power iteration, case \d of 6 .*(expected|called)"):
        check_power_sharpness(bug)


def test_power_sharpness_unsolved_raises_not_implemented():
    def stub(matvec, v0, iters):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError):
        check_power_sharpness(stub)


# ---------------------------------------------------------------------------------------------- effective rank

def erank_ok(matrix):
    s = torch.linalg.svdvals(matrix)
    p = s / s.sum()
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


def erank_squares(matrix):  # normalizes the squared singular values
    s = torch.linalg.svdvals(matrix) ** 2
    p = s / s.sum()
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


def erank_entropy_only(matrix):  # forgets the exp
    s = torch.linalg.svdvals(matrix)
    p = s / s.sum()
    p = p[p > 0]
    return (-(p * p.log()).sum()).item()


def erank_nan_on_zeros(matrix):  # 0 log 0 left in: nan
    s = torch.linalg.svdvals(matrix)
    p = s / s.sum()
    return torch.exp(-(p * p.log()).sum()).item()


def erank_eigenvalues(matrix):  # eigenvalues of a non-symmetric or signed matrix instead of singular values
    if matrix.shape[0] != matrix.shape[1]:
        return erank_ok(matrix)
    values = torch.linalg.eigvals(matrix).real
    p = values / values.sum()
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


def erank_rank(matrix):  # the ordinary rank
    return float(torch.linalg.matrix_rank(matrix))


def test_effective_rank_correct_passes(capsys):
    check_effective_rank(erank_ok)
    check_effective_rank(fz.effective_rank)
    assert capsys.readouterr().out == "Effective rank: all 7 checks passed\n" * 2


@pytest.mark.parametrize("bug", [erank_squares, erank_entropy_only, erank_nan_on_zeros, erank_eigenvalues, erank_rank])
def test_effective_rank_bugs_caught(bug):
    with pytest.raises(AssertionError, match=r"Effective rank, case \d of 7 .*expected"):
        check_effective_rank(bug)


# ---------------------------------------------------------------------------------------------- SVT

def svt_ok(matrix, tau):
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u @ torch.diag((s - tau).clamp_min(0)) @ vh


def svt_no_clamp(matrix, tau):
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u @ torch.diag(s - tau) @ vh


def svt_entries(matrix, tau):  # soft-thresholds the entries, not the singular values
    return torch.sign(matrix) * (matrix.abs() - tau).clamp_min(0)


def svt_hard(matrix, tau):  # hard thresholding: keeps the large singular values unshrunk
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u @ torch.diag(torch.where(s > tau, s, torch.zeros_like(s))) @ vh


def svt_transposed_v(matrix, tau):
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u @ torch.diag((s - tau).clamp_min(0)) @ vh.T if vh.shape[0] == vh.shape[1] else u @ torch.diag(s) @ vh


def test_svt_correct_passes(capsys):
    check_svt(svt_ok)
    check_svt(fz.svt)
    assert capsys.readouterr().out == "Singular value thresholding: all 6 checks passed\n" * 2


@pytest.mark.parametrize("bug", [svt_no_clamp, svt_entries, svt_hard, svt_transposed_v])
def test_svt_bugs_caught(bug):
    with pytest.raises(AssertionError, match=r"Singular value thresholding, case \d of 6 .*expected"):
        check_svt(bug)


def svt_entries_on_square(matrix, tau):  # right on rectangular matrices, thresholds the entries of square ones
    return svt_entries(matrix, tau) if matrix.shape[-1] == matrix.shape[-2] else svt_ok(matrix, tau)


def test_svt_thresholding_the_entries_gets_a_hint_that_says_so():
    with pytest.raises(AssertionError) as caught:
        check_svt(svt_entries)
    message = str(caught.value)
    assert "case 5 of 6" in message and "soft thresholding of the entries" in message and "singular values" in message
    # the rotated square case catches it on its own (the diagonal square cases cannot: there the two agree)
    with pytest.raises(AssertionError, match=r"(?s)case 6 of 6 \(a 5 x 5 matrix .*random orthogonal.*soft thresholding "
                                             r"of the entries"):
        check_svt(svt_entries_on_square)


def test_svt_other_bugs_get_no_entrywise_hint():
    with pytest.raises(AssertionError) as caught:
        check_svt(svt_hard)
    assert "soft thresholding of the entries" not in str(caught.value)


# ---------------------------------------------------------------------------------------------- factor step

def step_ok(factors, mask, target, lr):
    return fz.factor_gradient_step(factors, mask, target, lr)


def step_no_mask(factors, mask, target, lr):
    return fz.factor_gradient_step(factors, torch.ones_like(mask), target, lr)


def step_sequential(factors, mask, target, lr):  # updates W_1 first, then uses it for W_2's gradient
    factors = list(factors)
    for j in range(len(factors)):
        factors[j] = fz.factor_gradient_step(factors, mask, target, lr)[j]
    return factors


def step_untransposed(factors, mask, target, lr):  # (W_N ... W_{j+1}) instead of its transpose
    residual = mask * (fz.end_to_end_product(factors) - target)
    out = []
    for j in range(len(factors)):
        left = torch.eye(factors[j].shape[0], dtype=target.dtype)
        for w in factors[j + 1:]:
            left = w @ left
        right = torch.eye(factors[0].shape[1], dtype=target.dtype)
        for w in factors[:j]:
            right = w @ right
        out.append(factors[j] - lr * (left @ residual @ right.T))
    return out


def step_reversed(factors, mask, target, lr):  # product W_1 ... W_N
    return fz.factor_gradient_step(factors[::-1], mask, target, lr)[::-1] if len(factors) > 1 else step_ok(
        factors, mask, target, lr)


def step_plus(factors, mask, target, lr):
    return [2 * w - s for w, s in zip(factors, fz.factor_gradient_step(factors, mask, target, lr))]


def test_factor_gradient_step_correct_passes(capsys):
    check_factor_gradient_step(step_ok)
    assert capsys.readouterr().out == "Factor gradient step: all 5 checks passed\n"


@pytest.mark.parametrize("bug", [step_no_mask, step_sequential, step_untransposed, step_reversed, step_plus])
def test_factor_gradient_step_bugs_caught(bug):
    with pytest.raises(AssertionError, match=r"Factor gradient step, case \d of 5 .*(expected|raised)"):
        check_factor_gradient_step(bug)


def test_factor_gradient_step_returning_a_tensor_is_caught():
    with pytest.raises(AssertionError, match="list of"):
        check_factor_gradient_step(lambda factors, mask, target, lr: factors[0])
