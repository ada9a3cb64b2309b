"""Notebook 09's checks: the correct code passes with one fixed line; each planted bug is caught."""

import math

import pytest
import torch

from course_lib.grading import check_hessian_from_moments, check_ogr_step, check_online_parabola


# --------------------------------------------------------------------------- the online parabola
def parabola(thetas, grads, beta, *, both_new=False, no_shrink=False, zero_start=False, plus_p=False,
             zero_first=False, swap=False):
    T = len(thetas)
    lam = torch.full((T,), math.nan, dtype=thetas.dtype)
    p = torch.full((T,), math.nan, dtype=thetas.dtype)
    if zero_first:
        lam[0] = p[0] = 0.0
    w = 1 - beta if swap else beta
    m_t, m_g = (torch.zeros(()), torch.zeros(())) if zero_start else (thetas[0].clone(), grads[0].clone())
    var = cov = torch.zeros((), dtype=thetas.dtype)
    for t in range(0 if zero_start else 1, T):
        dt, dg = thetas[t] - m_t, grads[t] - m_g
        m_t, m_g = m_t + w * dt, m_g + w * dg
        if both_new:  # Var with the old means, Cov with the new ones: Cov is (1 - beta) times too small
            var = (1 - w) * (var + w * dt * dt)
            dt, dg = thetas[t] - m_t, grads[t] - m_g
            cov = (1 - w) * cov + w * dg * dt
        else:
            shrink = 1.0 if no_shrink else (1 - w)
            var, cov = shrink * (var + w * dt * dt), shrink * (cov + w * dg * dt)
        if t > 0 and var > 0:
            lam[t] = cov / var
            p[t] = m_t + m_g / lam[t] if plus_p else m_t - m_g / lam[t]
    return lam, p


def test_online_parabola_passes(capsys):
    check_online_parabola(parabola)
    assert capsys.readouterr().out == "Online parabola: all 6 checks passed\n"


@pytest.mark.parametrize("bug", ["both_new", "no_shrink", "zero_start", "plus_p", "zero_first", "swap"])
def test_online_parabola_bugs(bug):
    with pytest.raises(AssertionError, match="Online parabola, case"):
        check_online_parabola(lambda th, g, b: parabola(th, g, b, **{bug: True}))


def test_online_parabola_unsolved_passes_not_implemented():
    def stub(thetas, grads, beta):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError):
        check_online_parabola(stub)


# --------------------------------------------------------------------------- the Hessian solve
def hessian(sigma, cov, *, bug=None):
    if bug == "solve_no_sym":  # H = C Sigma^-1: right for exact data, not for noisy
        return torch.linalg.solve(sigma, cov.T).T
    s, u = torch.linalg.eigh(sigma)
    rhs = u.T @ ((2 * cov) if bug == "no_transpose" else (cov + cov.T)) @ u
    if bug == "product":
        denom = s[:, None] * s[None, :]
    elif bug == "diagonal_only":
        denom = 2 * s[:, None] + 0 * s[None, :]
    else:
        denom = s[:, None] + s[None, :]
    h = rhs / denom
    if bug == "no_rotate_back":
        return h
    return u @ h @ u.T


def test_hessian_passes(capsys):
    check_hessian_from_moments(hessian)
    assert capsys.readouterr().out == "Hessian from moments: all 5 checks passed\n"


@pytest.mark.parametrize("bug", ["solve_no_sym", "no_transpose", "product", "diagonal_only", "no_rotate_back"])
def test_hessian_bugs(bug):
    with pytest.raises(AssertionError, match="Hessian from moments, case"):
        check_hessian_from_moments(lambda s, c: hessian(s, c, bug=bug))


# --------------------------------------------------------------------------- the step
def step(theta, m_theta, m_g, hess, div, cut, *, bug=None):
    g_hat = m_g if bug == "momentum_only" else m_g + hess @ (theta - m_theta)
    lam, v = torch.linalg.eigh(hess)
    if bug == "no_abs":
        denom = torch.where(lam.abs() * div > cut, lam * div, torch.full_like(lam, cut))
    elif bug == "no_div":
        denom = lam.abs().clamp(min=cut)
    elif bug == "min":
        denom = (lam.abs() * div).clamp(max=cut)
    elif bug == "cut_times_div":
        denom = lam.abs().clamp(min=cut) * div
    else:
        denom = (lam.abs() * div).clamp(min=cut)
    start = m_theta if bug == "from_mean" else theta
    return start - v @ ((v.T @ g_hat) / denom)


def test_step_passes(capsys):
    check_ogr_step(step)
    assert capsys.readouterr().out == "OGR step: all 6 checks passed\n"


@pytest.mark.parametrize("bug", ["momentum_only", "no_abs", "no_div", "min", "cut_times_div", "from_mean"])
def test_step_bugs(bug):
    with pytest.raises(AssertionError, match="OGR step, case"):
        check_ogr_step(lambda *a: step(*a, bug=bug))


def test_checks_do_not_move_the_global_rng():
    state = torch.random.get_rng_state()
    check_ogr_step(step)
    check_hessian_from_moments(hessian)
    check_online_parabola(parabola)
    assert torch.equal(state, torch.random.get_rng_state())
