"""The checks that the lessons call, and the grader that scores a learner's notebook.

Check functions (a check cell imports one and calls it once)::

    check_optimizer(cls, name)                    # name: gd, sgd, sgd_momentum, adagrad, adadelta, rmsprop,
                                                  # adam, adamw, amsgrad, adamax, nadam, adafactor, adabound
    check_hvp(hvp)                                # hvp(f, x, v) -> H(x) v
    check_gradient_descent(gradient_descent)      # gradient_descent(A, b, x0, lr, steps) -> (steps+1, n)
    check_step_size_theory(convergence_rate, best_learning_rate)
    check_minibatch_sgd(minibatch_sgd)            # minibatch_sgd(X, y, w0, lr, batch_size, epochs, generator)
    check_momentum_rate(momentum_rate)            # momentum_rate(lr, beta, lam) -> spectral radius (heavy ball)
    check_optimal_momentum(optimal_momentum)      # optimal_momentum(mu, L) -> (lr, beta)
    check_hessian_2d(hessian_2d)                  # hessian_2d(f, point) -> (2, 2) Hessian (notebook 05)
    check_assign_basins(assign_basins)            # assign_basins(final_points, minima, tol) -> labels (notebook 05)
    check_classify_critical_point(classify)       # classify(hessian, tol) -> 'minimum'/... (notebook 06)
    check_perturbed_gd(perturbed_gd)              # perturbed_gd(grad_fn, x0, lr, radius, threshold, steps, generator)
    check_lion(Lion)                              # a Lion class vs the paper's equations (notebook 11)
    check_newton_schulz(newton_schulz)            # newton_schulz(G, coefficients, steps) -> U p(S) V^T (notebook 11)
    check_schedule_free_sgd(schedule_free_sgd)    # schedule_free_sgd(grad_fn, x0, lr, momentum, steps) -> x's (nb 11)
    check_online_parabola(online_parabola)        # online_parabola(thetas, grads, beta) -> (lam, p) (notebook 09)
    check_hessian_from_moments(hessian_from_moments)  # (sigma, cov) -> H with H S + S H = C + C^T (notebook 09)
    check_ogr_step(ogr_step)                      # ogr_step(theta, m_theta, m_g, H, div, cut) -> new theta (nb 09)
    check_network_hvp(hvp)                        # hvp(loss_fn, params, vs) -> [H v per parameter] (notebook 08)
    check_newton_direction(newton_direction)      # (grad, hessian, damping) -> -(H + damping I)^{-1} g (notebook 08)
    check_saddle_free_direction(sfn_direction)    # (grad, hessian, damping) -> -(|H| + damping I)^{-1} g (nb 08)
    check_lbfgs_direction(lbfgs_direction)        # (grad, s_list, y_list) -> -H_k g, two-loop recursion (nb 08)
    check_kfac_factors(kfac_factors)              # (inputs, output_grads) -> (A, S) with a bias column (nb 08)
    check_select_learning_rate(select)            # select(val_accuracy, val_loss) -> index of the chosen lr (nb 10)
    check_wilson_features(wilson_features)        # wilson_features(y) -> (n, 3 + 5n) design of Wilson et al. (nb 10)
    check_swats(SWATS)                            # SWATS optimizer class: Adam, then SGD at the projected lr (nb 10)
    check_balancedness(balancedness)              # balancedness(weights) -> max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T|| (nb 07)
    check_balanced_factors(balanced_factors)      # balanced_factors(A, dims) -> balanced layers with product A (nb 07)
    check_end_to_end_update(end_to_end_update)    # (W, grad, lr, depth) -> W - lr sum_j [WW^T]^.. grad [W^TW]^.. (nb 07)
    check_saxe_mode_strength(saxe_mode_strength)  # (t, s, u0, tau) -> Saxe et al.'s sigmoid u(t) (nb 07)
    check_power_sharpness(power_sharpness)        # (matvec, v0, iters) -> power-iteration estimate (nb 12)
    check_effective_rank(effective_rank)          # matrix -> exp(entropy of s / sum s) (nb 12)
    check_svt(svt)                                # (X, tau) -> U diag((s - tau)_+) V^T (nb 12)
    check_factor_gradient_step(step)              # (factors, mask, target, lr) -> [W_j - lr G_j] (nb 12)

A check compares the learner's code in float64 with an independent reference (torch.optim, the
``adabound`` package, closed forms) on several cases. On success it prints one fixed line,
``<Title>: all N checks passed``; otherwise it raises AssertionError saying which case, which step,
which parameter or state entry, expected against got. A ``NotImplementedError`` from an unsolved
exercise passes through unchanged under pytest, nbval and the grader (``PYTEST_VERSION`` or
``COURSE_STRICT_CHECKS`` set); in a lesson run by hand the check prints "Not solved yet: ..." instead, so
that Run All reaches every cell below it.

While a check runs, the learner's class may not build or step an existing optimizer (``torch.optim``,
``adabound``, ``schedulefree``, ``course_lib.optim``): a profile function sees it and fails the check.

The grader (``python -m course_lib.grading NOTEBOOK_OR_FOLDER [--json] [--verbose]``, or
:func:`grade_notebook`) reads and hashes the course first, puts the original check cells back (by id,
else by their unchanged source, after the cells they depend on), runs the notebook under nbval and
scores each exercise; see :mod:`course_lib.grading.grader`.

Why the grader trusts no output of the notebook: code in an earlier cell can replace the check functions
(in ``course_lib.grading`` or ``sys.modules``), the reference (``torch.optim.Adam``), ``builtins`` or
IPython's exception hooks, or simply print the success line. So, as graders that run untrusted code in
the learner's own process must, it does two things (:mod:`course_lib.grading._guard`):

* **a pristine state for every check**: an IPython startup file, run before the notebook's first cell,
  snapshots the grading modules, ``torch``/``torch.optim``/``adabound``/``schedulefree``, ``builtins``,
  ``sys.modules``, ``sys.stdout``/``stderr`` and IPython's hooks; each restored check cell calls the guard,
  which puts all of it back (naming each change as *tampering* in the table and the JSON), then runs
  the cell's original source, and checks that nothing changed while it ran;
* **an authenticated verdict**: the guard sends pass or fail to the grader over a file outside the
  notebook's folder, each record with an HMAC keyed by a per-run secret that the startup file reads
  from a file it then deletes. The grader scores only authenticated verdicts, so forged output, a
  skipped or rewritten check cell, or a forged success line earns nothing.

A separate process per check would be stronger still, but a check needs the learner's live objects
(classes defined across several cells); the guard keeps that, and costs a few milliseconds per check.
"""

from .frontier_checks import check_lion, check_newton_schulz, check_schedule_free_sgd
from .comparison_checks import check_select_learning_rate, check_swats, check_wilson_features
from .exercises import (check_gradient_descent, check_hvp, check_minibatch_sgd, check_momentum_rate,
                        check_optimal_momentum, check_step_size_theory)
from .linear_net_checks import (check_balanced_factors, check_balancedness, check_end_to_end_update,
                                check_saxe_mode_strength)
from .optimizers import OPTIMIZER_CHECKS, check_optimizer
from .ogr_checks import check_hessian_from_moments, check_ogr_step, check_online_parabola
from .saddle_checks import check_classify_critical_point, check_perturbed_gd
from .second_order_checks import (check_kfac_factors, check_lbfgs_direction, check_network_hvp,
                                  check_newton_direction, check_saddle_free_direction)
from .surface_checks import check_assign_basins, check_hessian_2d
from .trajectory_checks import check_effective_rank, check_factor_gradient_step, check_power_sharpness, check_svt

__all__ = ["check_optimizer", "check_hvp", "check_gradient_descent", "check_step_size_theory",
           "check_classify_critical_point", "check_perturbed_gd",
           "check_minibatch_sgd", "check_momentum_rate", "check_optimal_momentum", "OPTIMIZER_CHECKS",
           "check_hessian_2d", "check_assign_basins",
           "check_lion", "check_newton_schulz", "check_schedule_free_sgd",
           "check_online_parabola", "check_hessian_from_moments", "check_ogr_step",
           "check_network_hvp", "check_newton_direction", "check_saddle_free_direction", "check_lbfgs_direction",
           "check_kfac_factors",
           "check_select_learning_rate", "check_wilson_features", "check_swats",
           "check_balancedness", "check_balanced_factors", "check_end_to_end_update", "check_saxe_mode_strength",
           "check_power_sharpness", "check_effective_rank", "check_svt", "check_factor_gradient_step",
           "grade_notebook", "GradeReport", "ExerciseResult", "restore_check_cells", "Course"]

from ._common import reports_unsolved as _reports_unsolved

for _name in [n for n in __all__ if n.startswith("check_")]:
    globals()[_name] = _reports_unsolved(globals()[_name])
del _name

_GRADER_NAMES = {"grade_notebook", "GradeReport", "ExerciseResult", "restore_check_cells", "Course"}


def __getattr__(name):
    # the grader (nbformat, subprocess) is loaded only when asked for: check cells stay light
    if name in _GRADER_NAMES:
        from . import grader
        return getattr(grader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
