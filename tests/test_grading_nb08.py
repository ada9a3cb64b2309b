"""Notebook 08's checks: the correct code passes with one fixed line; each planted bug is caught."""

import pytest
import torch

from course_lib import second_order
from course_lib.grading import (check_kfac_factors, check_lbfgs_direction, check_network_hvp, check_newton_direction,
                                check_saddle_free_direction)


def hvp_ok(loss_fn, params, vs):
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vs))
    return [h.detach() for h in torch.autograd.grad(dot, params)]


def hvp_gradient_only(loss_fn, params, vs):  # returns the gradient
    return [g.detach() for g in torch.autograd.grad(loss_fn(), params)]


def hvp_per_parameter(loss_fn, params, vs):  # block-diagonal Hessian: ignores the cross terms
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    return [torch.autograd.grad((g * v).sum(), p, retain_graph=True)[0] for g, v, p in zip(grads, vs, params)]


def hvp_flat(loss_fn, params, vs):  # one flat tensor instead of a list
    return second_order.flatten(hvp_ok(loss_fn, params, vs))


def hvp_changes_params(loss_fn, params, vs):
    out = hvp_ok(loss_fn, params, vs)
    with torch.no_grad():
        params[0].add_(1e-3)
    return out


def newton_ok(grad, hessian, damping):
    return -torch.linalg.solve(hessian + damping * torch.eye(len(grad), dtype=grad.dtype), grad)


def newton_plus(grad, hessian, damping):
    return torch.linalg.solve(hessian + damping * torch.eye(len(grad), dtype=grad.dtype), grad)


def newton_no_damping(grad, hessian, damping):
    return -torch.linalg.solve(hessian, grad)


def newton_transposed_solve(grad, hessian, damping):  # H^{-1} applied as g^T H^{-1} with H + damping on the diagonal only once
    return -torch.linalg.solve(hessian + damping, grad)


def sfn_ok(grad, hessian, damping):
    values, vectors = torch.linalg.eigh(hessian)
    return -vectors @ ((vectors.T @ grad) / (values.abs() + damping))


def sfn_entrywise_abs(grad, hessian, damping):
    return -torch.linalg.solve(hessian.abs() + damping * torch.eye(len(grad), dtype=grad.dtype), grad)


def sfn_is_newton(grad, hessian, damping):
    return newton_ok(grad, hessian, damping)


def sfn_damping_inside_abs(grad, hessian, damping):
    values, vectors = torch.linalg.eigh(hessian)
    return -vectors @ ((vectors.T @ grad) / (values + damping).abs())


def lbfgs_ok(grad, s_list, y_list):
    return second_order.lbfgs_direction(grad, s_list, y_list)


def _two_loop(grad, s_list, y_list, *, gamma="newest", order="right", sign=-1):
    q = grad.clone()
    if not s_list:
        return sign * q
    rhos = [1 / torch.dot(y, s) for s, y in zip(s_list, y_list)]
    alphas = [0] * len(s_list)
    first = reversed(range(len(s_list))) if order == "right" else range(len(s_list))
    for i in first:
        alphas[i] = rhos[i] * torch.dot(s_list[i], q)
        q = q - alphas[i] * y_list[i]
    if gamma == "newest":
        k = -1
    elif gamma == "oldest":
        k = 0
    r = q if gamma == "one" else torch.dot(s_list[k], y_list[k]) / torch.dot(y_list[k], y_list[k]) * q
    second = range(len(s_list)) if order == "right" else reversed(range(len(s_list)))
    for i in second:
        beta = rhos[i] * torch.dot(y_list[i], r)
        r = r + (alphas[i] - beta) * s_list[i]
    return sign * r


def kfac_ok(inputs, output_grads):
    a = torch.cat([inputs, torch.ones(inputs.shape[0], 1, dtype=inputs.dtype)], dim=1)
    return a.T @ a / a.shape[0], output_grads.T @ output_grads / output_grads.shape[0]


def kfac_no_bias(inputs, output_grads):
    return inputs.T @ inputs / inputs.shape[0], output_grads.T @ output_grads / output_grads.shape[0]


def kfac_sum(inputs, output_grads):
    a, g = kfac_ok(inputs, output_grads)
    return a * inputs.shape[0], g * inputs.shape[0]


def kfac_outer_of_means(inputs, output_grads):
    a = torch.cat([inputs, torch.ones(inputs.shape[0], 1, dtype=inputs.dtype)], dim=1).mean(0)
    g = output_grads.mean(0)
    return torch.outer(a, a), torch.outer(g, g)


def kfac_bias_first(inputs, output_grads):
    a = torch.cat([torch.ones(inputs.shape[0], 1, dtype=inputs.dtype), inputs], dim=1)
    return a.T @ a / a.shape[0], output_grads.T @ output_grads / output_grads.shape[0]


def test_correct_code_passes_with_one_line(capsys):
    check_network_hvp(hvp_ok)
    check_network_hvp(lambda f, ps, vs: second_order.hvp(lambda _: f(), ps, vs))
    check_newton_direction(newton_ok)
    check_newton_direction(second_order.newton_direction)
    check_saddle_free_direction(sfn_ok)
    check_saddle_free_direction(second_order.saddle_free_direction)
    check_lbfgs_direction(lbfgs_ok)
    check_lbfgs_direction(_two_loop)
    check_kfac_factors(kfac_ok)
    check_kfac_factors(second_order.kfac_factors)
    assert capsys.readouterr().out == (
        "Hessian-vector product on a network: all 5 checks passed\n" * 2
        + "Newton direction: all 6 checks passed\n" * 2
        + "Saddle-free Newton direction: all 6 checks passed\n" * 2
        + "L-BFGS two-loop recursion: all 4 checks passed\n" * 2
        + "K-FAC factors: all 5 checks passed\n" * 2)


def hvp_central_differences(loss_fn, params, vs, h=1e-5):
    """(g(theta + h v) - g(theta - h v)) / 2h: accurate to about 1e-9 here, but not what the lesson asks."""
    def gradient(sign):
        with torch.no_grad():
            for p, v in zip(params, vs):
                p.add_(sign * h * v)
        g = torch.autograd.grad(loss_fn(), params)
        with torch.no_grad():
            for p, v in zip(params, vs):
                p.sub_(sign * h * v)
        return g
    return [(a - b) / (2 * h) for a, b in zip(gradient(1), gradient(-1))]


@pytest.mark.parametrize("fn, pattern", [
    (hvp_gradient_only, r"case 1 of 5 .*\(H v\) for parameter 0 .*differs"),
    (hvp_per_parameter, r"case 1 of 5 .*\(H v\) for parameter \d .*differs"),
    (hvp_flat, r"case 1 of 5 .*must return a list"),
    (hvp_changes_params, r"case 1 of 5 .*changed the parameters"),
    (hvp_central_differences, r"case 1 of 5 .*evaluated loss_fn with the parameters moved .*finite differences"),
], ids=["gradient", "block diagonal", "flat tensor", "changes params", "finite differences"])
def test_planted_hvp_bug_is_caught(fn, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_network_hvp(fn)


@pytest.mark.parametrize("fn, pattern", [
    (newton_plus, r"case 1 of 6 .*direction differs"),
    (newton_no_damping, r"case 3 of 6 .*direction differs"),
    (newton_transposed_solve, r"case 3 of 6 .*direction differs"),
], ids=["sign", "no damping", "damping on every entry"])
def test_planted_newton_bug_is_caught(fn, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_newton_direction(fn)


@pytest.mark.parametrize("fn, pattern", [
    (sfn_is_newton, r"case 2 of 6 .*direction differs"),
    (sfn_entrywise_abs, r"case 3 of 6 .*direction differs"),
    (sfn_damping_inside_abs, r"case 4 of 6 .*direction differs"),
], ids=["newton", "entrywise abs", "damping inside abs"])
def test_planted_sfn_bug_is_caught(fn, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_saddle_free_direction(fn)


@pytest.mark.parametrize("options, pattern", [
    (dict(gamma="oldest"), r"case 2 of 4 .*step 3.*direction with 2 pairs differs"),
    (dict(gamma="one"), r"case 2 of 4 .*step 2.*direction with 1 pairs differs"),
    (dict(order="left"), r"case 2 of 4 .*step 3.*differs"),
    (dict(sign=1), r"case 1 of 4 .*no pairs yet"),
], ids=["gamma of the oldest pair", "no initial scaling", "loops in the wrong order", "sign"])
def test_planted_lbfgs_bug_is_caught(options, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_lbfgs_direction(lambda g, s, y: _two_loop(g, s, y, **options))


def kfac_s_summed(inputs, output_grads):
    a, s = kfac_ok(inputs, output_grads)
    return a, s * inputs.shape[0]


def kfac_s_transposed_batch(inputs, output_grads):
    a, _ = kfac_ok(inputs, output_grads)
    return a, output_grads @ output_grads.T / output_grads.shape[0]


@pytest.mark.parametrize("fn, pattern", [
    (kfac_no_bias, r"case 1 of 5 .*A has shape \(3, 3\), expected \(4, 4\)"),
    (kfac_sum, r"case 1 of 5 .*A differs"),
    (kfac_outer_of_means, r"case 1 of 5 .*A differs"),
    (kfac_bias_first, r"case 1 of 5 .*A differs"),
    (kfac_s_summed, r"case 1 of 5 .*: S differs.*\n  Hint: average the outer products of the output gradients"),
    (kfac_s_transposed_batch, r"case 1 of 5 .*: S has shape \(8, 8\), expected \(2, 2\)"),
    (lambda inputs, output_grads: kfac_ok(inputs, output_grads)[0], r"case 1 of 5 .*a pair \(A, S\), got Tensor"),
], ids=["no bias column", "sum not mean", "outer product of means", "ones first", "S summed not averaged",
        "S over the batch index", "only A returned"])
def test_planted_kfac_bug_is_caught(fn, pattern):
    with pytest.raises(AssertionError, match=pattern):
        check_kfac_factors(fn)


def test_not_implemented_passes_through():
    def stub(*args):
        raise NotImplementedError
    for check in (check_network_hvp, check_newton_direction, check_saddle_free_direction, check_lbfgs_direction,
                  check_kfac_factors):
        with pytest.raises(NotImplementedError):
            check(stub)


def test_checks_do_not_move_the_global_rng():
    state = torch.random.get_rng_state()
    check_network_hvp(hvp_ok)
    check_kfac_factors(kfac_ok)
    check_lbfgs_direction(lbfgs_ok)
    assert torch.equal(torch.random.get_rng_state(), state)
