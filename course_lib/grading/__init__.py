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

A check compares the learner's code in float64 with an independent reference (torch.optim, the
``adabound`` package, closed forms) on several cases. On success it prints one fixed line,
``<Title>: all N checks passed``; otherwise it raises AssertionError saying which case, which step,
which parameter or state entry, expected against got. A ``NotImplementedError`` from an unsolved
exercise passes through unchanged.

The grader (``python -m course_lib.grading NOTEBOOK [--json]``, or :func:`grade_notebook`) puts the
original check cells back, runs the notebook under nbval and scores each exercise; see
:mod:`course_lib.grading.grader`.
"""

from .exercises import (check_gradient_descent, check_hvp, check_minibatch_sgd, check_momentum_rate,
                        check_optimal_momentum, check_step_size_theory)
from .optimizers import OPTIMIZER_CHECKS, check_optimizer
from .saddle_checks import check_classify_critical_point, check_perturbed_gd
from .surface_checks import check_assign_basins, check_hessian_2d

__all__ = ["check_optimizer", "check_hvp", "check_gradient_descent", "check_step_size_theory",
           "check_classify_critical_point", "check_perturbed_gd",
           "check_minibatch_sgd", "check_momentum_rate", "check_optimal_momentum", "OPTIMIZER_CHECKS",
           "check_hessian_2d", "check_assign_basins",
           "grade_notebook", "GradeReport", "ExerciseResult", "restore_check_cells"]

_GRADER_NAMES = {"grade_notebook", "GradeReport", "ExerciseResult", "restore_check_cells"}


def __getattr__(name):
    # the grader (nbformat, subprocess) is loaded only when asked for: check cells stay light
    if name in _GRADER_NAMES:
        from . import grader
        return getattr(grader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
