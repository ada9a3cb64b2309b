"""Checks of the function exercises, against closed forms and independent re-computations.

* ``check_hvp(hvp)``: ``hvp(f, x, v)`` returns :math:`\\nabla^2 f(x)\\,v` (double backward); compared with
  Hessians written out by hand for six functions (quadratic, Rosenbrock, elementwise on a matrix,
  log-sum-exp, a 0-dim input, :math:`\\|x\\|^4`). ``x`` and ``v`` are plain float64 tensors (``x`` does not
  require grad: ``hvp`` makes its own copy that does, ``x.detach().requires_grad_(True)``).
* ``check_gradient_descent(gradient_descent)``: ``gradient_descent(A, b, x0, lr, steps)`` on
  :math:`f(x) = \\tfrac12 x^\\top A x - b^\\top x` returns the iterates, a ``(steps + 1, n)`` tensor whose row
  ``k`` is :math:`x_k = x^* + (I - \\eta A)^k (x_0 - x^*)`.
* ``check_step_size_theory(convergence_rate, best_learning_rate)``: ``convergence_rate(lr, eigenvalues)``
  :math:`= \\max_i |1 - \\eta\\lambda_i|` and ``best_learning_rate(mu, L)`` :math:`= 2/(\\mu + L)`.
* ``check_minibatch_sgd(minibatch_sgd)``: ``minibatch_sgd(X, y, w0, lr, batch_size, epochs, generator)``
  returns the final ``w`` of mini-batch SGD on :math:`\\tfrac12\\,\\mathrm{mean}((Xw - y)^2)`, with a fresh
  ``torch.randperm(n, generator=generator)`` each epoch and batches of consecutive slices of it.
* ``check_momentum_rate(momentum_rate)``: ``momentum_rate(lr, beta, lam)`` is the spectral radius of heavy
  ball's 2x2 matrix :math:`\\begin{pmatrix} 1 + \\beta - \\eta\\lambda & -\\beta \\\\ 1 & 0 \\end{pmatrix}`,
  compared with the moduli of its eigenvalues (notebook 02).
* ``check_optimal_momentum(optimal_momentum)``: ``optimal_momentum(mu, L)`` returns ``(lr, beta)`` with
  :math:`\\eta^\\star = (2/(\\sqrt L + \\sqrt\\mu))^2` and
  :math:`\\beta^\\star = ((\\sqrt L - \\sqrt\\mu)/(\\sqrt L + \\sqrt\\mu))^2` (notebook 02).

All inputs are float64 CPU tensors (plain floats for the scalar functions); results are compared to a
relative 1e-8.
"""

from __future__ import annotations

import torch

from ._common import (compare_iterates, compare_number, compare_tensor, fail, fmt, generator, learner_error,
                      quiet_and_isolated, shape_str, succeed)

__all__ = ["check_hvp", "check_gradient_descent", "check_step_size_theory", "check_minibatch_sgd",
           "check_momentum_rate", "check_optimal_momentum"]

F64 = torch.float64


def _call(prefix, fn, *args, hint=""):
    __tracebackhide__ = True  # noqa: F841
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 (the learner's code may raise anything)
        learner_error(prefix, err, hint)


# ---------------------------------------------------------------------------------------------
# Hessian-vector products


def _hvp_cases():
    gen = generator(11)
    cases = []

    n = 4
    A = torch.randn(n, n, generator=gen, dtype=F64)
    b = torch.randn(n, generator=gen, dtype=F64)
    x = torch.randn(n, generator=gen, dtype=F64)
    v = torch.randn(n, generator=gen, dtype=F64)
    cases.append(("quadratic 1/2 x^T A x + b^T x (A not symmetric), x of shape (4,)",
                  lambda x: 0.5 * x @ A @ x + b @ x, x, v, 0.5 * (A + A.T) @ v))

    x = torch.tensor([-1.2, 1.0], dtype=F64)
    v = torch.tensor([0.3, -0.7], dtype=F64)
    hessian = torch.tensor([[1200 * x[0] ** 2 - 400 * x[1] + 2, -400 * x[0]],
                            [-400 * x[0], 200.0]], dtype=F64)
    cases.append(("Rosenbrock (1 - x)^2 + 100 (y - x^2)^2 at (-1.2, 1)",
                  lambda z: (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2, x, v, hessian @ v))

    x = torch.randn(2, 3, generator=gen, dtype=F64)
    v = torch.randn(2, 3, generator=gen, dtype=F64)
    cases.append(("elementwise sum(x^4 / 4 + sin(x)) on a (2, 3) matrix",
                  lambda x: (x ** 4 / 4 + torch.sin(x)).sum(), x, v, (3 * x ** 2 - torch.sin(x)) * v))

    x = torch.randn(5, generator=gen, dtype=F64)
    v = torch.randn(5, generator=gen, dtype=F64)
    p = torch.softmax(x, dim=0)
    cases.append(("log-sum-exp log(sum(exp(x))), x of shape (5,)",
                  lambda x: torch.logsumexp(x, dim=0), x, v, p * v - p * (p @ v)))

    x = torch.tensor(0.7, dtype=F64)
    v = torch.tensor(-1.3, dtype=F64)
    cases.append(("a 0-dim x: f(x) = x^3", lambda x: x ** 3, x, v, 6 * x * v))

    x = torch.randn(3, generator=gen, dtype=F64)
    v = torch.randn(3, generator=gen, dtype=F64)
    cases.append(("||x||^4 = (x . x)^2, x of shape (3,) (H = 4 ||x||^2 I + 8 x x^T)",
                  lambda x: (x @ x) ** 2, x, v, 4 * (x @ x) * v + 8 * x * (x @ v)))
    return cases


def check_hvp(hvp) -> None:
    """``hvp(f, x, v)`` must return H(x) v for a scalar function ``f``; ``x`` is a plain tensor (no grad)."""
    __tracebackhide__ = True  # noqa: F841
    title = "Hessian-vector product"
    cases = _hvp_cases()
    with quiet_and_isolated():
        for number, (name, f, x, v, expected) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            x_before, v_before = x.clone(), v.clone()
            points = []

            def f(z, _f=f, _points=points):  # records where hvp evaluates f: only at x, never at x + h v
                _points.append(z.detach().clone())
                return _f(z)

            got = _call(f"{prefix}: hvp(f, x, v)", hvp, f, x, v,
                        hint=("x is a plain tensor that does not require grad: start from "
                              "x = x.detach().requires_grad_(True), take the gradient with create_graph=True, "
                              "then differentiate (gradient * v).sum() (or pass grad_outputs=v)"))
            if not isinstance(got, torch.Tensor):
                fail(f"{prefix}: hvp must return a tensor of x's shape {shape_str(x.shape)}, "
                     f"got {type(got).__name__}")
            away = [z for z in points if z.shape != x.shape or not torch.equal(z, x_before)]
            if away:
                step = (away[0] - x_before).abs().max().item() if away[0].shape == x.shape else float("nan")
                fail(f"{prefix}: hvp evaluated f at a point other than x (max |z - x| = {step:.3g}): finite "
                     f"differences of the gradient are not allowed; differentiate the gradient again "
                     f"(create_graph=True, then a second torch.autograd.grad), which is exact")
            problem = compare_tensor(got, expected, "H(x) v")
            if problem:
                fail(f"{prefix}: {problem} (expected {fmt(expected)}, got {fmt(got.detach())})")
            if not torch.equal(x, x_before) or not torch.equal(v, v_before):
                fail(f"{prefix}: hvp changed its input x or v in place; it must leave them as they are")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------
# gradient descent on a quadratic


def _spd(n, gen, low, high):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    eigenvalues = torch.linspace(low, high, n, dtype=F64)
    return (q * eigenvalues) @ q.T


def _gd_cases():
    gen = generator(21)
    cases = [
        ("diagonal A = diag(1, 10), lr=0.05, 10 steps",
         torch.diag(torch.tensor([1.0, 10.0], dtype=F64)), torch.tensor([1.0, -2.0], dtype=F64),
         torch.tensor([3.0, 4.0], dtype=F64), 0.05, 10),
        ("dense 3x3 A with eigenvalues 0.5 to 4, lr=0.2, 25 steps",
         _spd(3, gen, 0.5, 4.0), torch.randn(3, generator=gen, dtype=F64), torch.randn(3, generator=gen, dtype=F64),
         0.2, 25),
        ("steps=0: only x0", _spd(2, gen, 1.0, 3.0), torch.randn(2, generator=gen, dtype=F64),
         torch.randn(2, generator=gen, dtype=F64), 0.1, 0),
        ("lr above 2/L: the iterates diverge, lr=0.25 with L=10, 8 steps",
         torch.diag(torch.tensor([1.0, 10.0], dtype=F64)), torch.tensor([0.5, 1.0], dtype=F64),
         torch.tensor([1.0, 1.0], dtype=F64), 0.25, 8),
        ("5x5 A with eigenvalues 1 to 20, lr=2/21, 200 steps (converges to x* = A^-1 b)",
         _spd(5, gen, 1.0, 20.0), torch.randn(5, generator=gen, dtype=F64), torch.randn(5, generator=gen, dtype=F64),
         2 / 21, 200),
    ]
    return cases


def check_gradient_descent(gradient_descent) -> None:
    """``gradient_descent(A, b, x0, lr, steps)`` must return the ``(steps + 1, n)`` iterates x_0, ..., x_steps."""
    __tracebackhide__ = True  # noqa: F841
    title = "Gradient descent"
    cases = _gd_cases()
    with quiet_and_isolated():
        for number, (name, A, b, x0, lr, steps) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            n = x0.shape[0]
            x_star = torch.linalg.solve(A, b)
            identity = torch.eye(n, dtype=F64)
            expected = torch.stack([x_star + torch.linalg.matrix_power(identity - lr * A, k) @ (x0 - x_star)
                                    for k in range(steps + 1)])
            inputs = [t.clone() for t in (A, b, x0)]
            got = _call(f"{prefix}: gradient_descent(A, b, x0, lr={fmt(lr)}, steps={steps})",
                        gradient_descent, *inputs, lr, steps)
            compare_iterates(got, expected, prefix, "gradient_descent",
                             "row 0 is x0 and row k is x_k, for k = 0, ..., steps",
                             lambda k, problem: f"{prefix}: {problem}; x_k = x* + (I - lr A)^k (x0 - x*)")
            for given, original, label in zip(inputs, (A, b, x0), ("A", "b", "x0")):
                if not torch.equal(given, original):
                    fail(f"{prefix}: gradient_descent changed its input {label} in place "
                         f"(x = x - ... makes a new tensor; x -= ... changes x0)")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------
# step size and conditioning


def check_step_size_theory(convergence_rate, best_learning_rate) -> None:
    """``convergence_rate(lr, eigenvalues) = max |1 - lr * eigenvalue|``; ``best_learning_rate(mu, L) = 2 / (mu + L)``."""
    __tracebackhide__ = True  # noqa: F841
    title = "Step-size theory"
    gen = generator(31)
    spectrum = torch.cat([torch.tensor([0.5, 8.0], dtype=F64),
                          torch.empty(6, dtype=F64).uniform_(0.5, 8.0, generator=gen)])
    rate_cases = [
        ("a step inside the stable range", 0.1, torch.tensor([1.0, 10.0], dtype=F64)),
        ("the largest eigenvalue sets the rate", 0.15, torch.tensor([1.0, 10.0], dtype=F64)),
        ("lr above 2/L: rate above 1 (divergence)", 0.3, torch.tensor([1.0, 10.0, 4.0], dtype=F64)),
        ("lr = 0: rate 1", 0.0, torch.tensor([2.0, 3.0], dtype=F64)),
    ]
    n_checks = len(rate_cases) + 2
    with quiet_and_isolated():
        for number, (name, lr, eigenvalues) in enumerate(rate_cases, start=1):
            prefix = f"{title}, case {number} of {n_checks} ({name})"
            expected = (1 - lr * eigenvalues).abs().max().item()
            got = _call(f"{prefix}: convergence_rate(lr={fmt(lr)}, eigenvalues={fmt(eigenvalues)})",
                        convergence_rate, lr, eigenvalues.clone())
            problem = compare_number(got, expected, f"convergence_rate(lr={fmt(lr)}, eigenvalues={fmt(eigenvalues)})")
            if problem:
                fail(f"{prefix}: {problem}; the rate is max_i |1 - lr * lambda_i|")
        number = len(rate_cases) + 1
        for mu, L in ((1.0, 10.0), (0.1, 100.0), (2.0, 2.0)):
            prefix = f"{title}, case {number} of {n_checks} (best_learning_rate)"
            got = _call(f"{prefix}: best_learning_rate(mu={fmt(mu)}, L={fmt(L)})", best_learning_rate, mu, L)
            problem = compare_number(got, 2 / (mu + L), f"best_learning_rate(mu={fmt(mu)}, L={fmt(L)})")
            if problem:
                fail(f"{prefix}: {problem}; the best constant step balances |1 - lr mu| = |1 - lr L|")
        number += 1
        prefix = f"{title}, case {number} of {n_checks} (the rate at the best learning rate)"
        mu, L = spectrum.min().item(), spectrum.max().item()
        best = _call(f"{prefix}: best_learning_rate(mu={fmt(mu)}, L={fmt(L)})", best_learning_rate, mu, L)
        best = float(best.item() if isinstance(best, torch.Tensor) else best)
        got = _call(f"{prefix}: convergence_rate(best_learning_rate(mu, L), eigenvalues)", convergence_rate,
                    best, spectrum.clone())
        problem = compare_number(got, (L - mu) / (L + mu),
                                 f"convergence_rate at lr = 2/(mu+L) for eigenvalues in [{fmt(mu)}, {fmt(L)}]")
        if problem:
            fail(f"{prefix}: {problem}; it should be (L - mu) / (L + mu) = (kappa - 1) / (kappa + 1)")
    succeed(title, n_checks)


# ---------------------------------------------------------------------------------------------
# mini-batch SGD


def _reference_minibatch_sgd(X, y, w0, lr, batch_size, epochs, gen):
    n = X.shape[0]
    w = w0.clone()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            residual = X[batch] @ w - y[batch]
            w = w - lr * (X[batch].T @ residual) / len(batch)
    return w


def _minibatch_cases():
    gen = generator(41)
    cases = []
    for name, n, d, lr, batch_size, epochs in (
        ("n=12, batch_size=4, 1 epoch", 12, 3, 0.1, 4, 1),
        ("n=10, batch_size=4: the last batch has 2 rows; 2 epochs", 10, 3, 0.1, 4, 2),
        ("batch_size = n: full-batch gradient descent, 5 epochs", 8, 2, 0.2, 8, 5),
        ("batch_size=1: plain SGD, 3 epochs", 7, 2, 0.05, 1, 3),
        ("n=10, batch_size=3, 20 epochs: a new permutation every epoch", 10, 4, 0.05, 3, 20),
    ):
        X = torch.randn(n, d, generator=gen, dtype=F64)
        y = X @ torch.randn(d, generator=gen, dtype=F64) + 0.1 * torch.randn(n, generator=gen, dtype=F64)
        w0 = torch.randn(d, generator=gen, dtype=F64)
        cases.append((name, X, y, w0, lr, batch_size, epochs, 100 + len(cases)))
    return cases


def check_minibatch_sgd(minibatch_sgd) -> None:
    """``minibatch_sgd(X, y, w0, lr, batch_size, epochs, generator)`` must return the final w (shape (d,))."""
    __tracebackhide__ = True  # noqa: F841
    title = "Mini-batch SGD"
    cases = _minibatch_cases()
    with quiet_and_isolated():
        for number, (name, X, y, w0, lr, batch_size, epochs, seed) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = _reference_minibatch_sgd(X, y, w0, lr, batch_size, epochs, generator(seed))
            expected_rng = generator(seed)
            for _ in range(epochs):
                torch.randperm(X.shape[0], generator=expected_rng)
            inputs = [t.clone() for t in (X, y, w0)]
            learner_rng = generator(seed)
            call = (f"minibatch_sgd(X of shape {shape_str(X.shape)}, y, w0, lr={fmt(lr)}, "
                    f"batch_size={batch_size}, epochs={epochs}, generator)")
            got = _call(f"{prefix}: {call}", minibatch_sgd, *inputs, lr, batch_size, epochs, learner_rng)
            problem = compare_tensor(got, expected, "the final w")
            if problem:
                hint = ("each epoch draws perm = torch.randperm(n, generator=generator) and walks through "
                        "idx = perm[i:i + batch_size]; the step is w - lr * X_b^T (X_b w - y_b) / len(idx)")
                if not torch.equal(learner_rng.get_state(), expected_rng.get_state()):
                    hint += ("; your code did not draw exactly one torch.randperm(n, generator=generator) "
                             "per epoch")
                fail(f"{prefix}: {problem}\n  Hint: {hint}")
            for given, original, label in zip(inputs, (X, y, w0), ("X", "y", "w0")):
                if not torch.equal(given, original):
                    fail(f"{prefix}: minibatch_sgd changed its input {label} in place")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------
# momentum on a quadratic (notebook 02)


def _companion_rate(lr: float, beta: float, lam: float) -> float:
    """The spectral radius of [[1 + beta - lr lam, -beta], [1, 0]], from its eigenvalues (the reference)."""
    matrix = torch.tensor([[1.0 + beta - lr * lam, -beta], [1.0, 0.0]], dtype=F64)
    return torch.linalg.eigvals(matrix).abs().max().item()


_MOMENTUM_RATE_CASES = (
    # (name, lr, beta, lam, relative tolerance)
    ("complex roots (underdamped): the rate is sqrt(beta)", 0.5, 0.81, 1.0, None),
    ("real roots (overdamped): small curvature, small momentum", 0.1, 0.5, 0.2, None),
    ("beta = 0: gradient descent's |1 - lr * lam|", 0.3, 0.0, 4.0, None),
    ("a large step: the negative root is the larger one", 1.0, 0.3, 2.4, None),
    ("lr * lam above 2 + 2 beta: rate above 1 (divergence)", 1.0, 0.5, 3.2, None),
    ("critical damping beta = (1 - sqrt(lr * lam))^2: a double root", 1.0, 0.16, 0.36, 1e-6),
    ("lam = 0, a flat direction: rate 1", 0.5, 0.9, 0.0, None),
    ("momentum close to 1 and a tiny curvature: real roots", 0.01, 0.95, 0.05, None),
)


def check_momentum_rate(momentum_rate) -> None:
    """``momentum_rate(lr, beta, lam)``: the spectral radius of heavy ball's 2x2 matrix for the eigenvalue ``lam``.

    Compared with the largest modulus of the eigenvalues of ``[[1 + beta - lr*lam, -beta], [1, 0]]``
    (``torch.linalg.eigvals``) on eight cases: complex and real roots, beta = 0, a dominant negative root,
    divergence, critical damping (a double root: compared to a relative 1e-6), a flat direction.
    """
    __tracebackhide__ = True  # noqa: F841
    title = "Momentum rate"
    cases = _MOMENTUM_RATE_CASES
    with quiet_and_isolated():
        for number, (name, lr, beta, lam, rtol) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = f"momentum_rate(lr={fmt(lr)}, beta={fmt(beta)}, lam={fmt(lam)})"
            got = _call(f"{prefix}: {call}", momentum_rate, lr, beta, lam)
            expected = _companion_rate(lr, beta, lam)
            if isinstance(got, complex) or (isinstance(got, torch.Tensor) and got.is_complex()):
                fail(f"{prefix}: {call} returned a complex number; the rate is a modulus, |t| (use .abs())")
            problem = compare_number(got, expected, call, rtol=rtol or 1e-8)
            if problem:
                fail(f"{prefix}: {problem}\n  Hint: the rate is the largest |t| over the two roots of "
                     f"t^2 - (1 + beta - lr*lam) t + beta = 0, i.e. over the eigenvalues of the matrix "
                     f"[[1 + beta - lr*lam, -beta], [1, 0]]; complex roots have modulus sqrt(beta)")
    succeed(title, len(cases))


_OPTIMAL_MOMENTUM_CASES = (
    # (name, mu, L)
    ("kappa = 100", 1.0, 100.0),
    ("kappa = 100 with L = 1", 0.01, 1.0),
    ("kappa = 1: no momentum needed, the step 1/L", 2.0, 2.0),
    ("kappa = 16", 0.5, 8.0),
    ("kappa = 9", 3.0, 27.0),
    ("a large kappa = 1e5", 1e-4, 10.0),
)


def _as_pair(result):
    """``(lr, beta)`` as two floats, or None when ``result`` is not a pair of numbers."""
    if isinstance(result, torch.Tensor):
        result = result.detach().reshape(-1).tolist()
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return None
    pair = []
    for value in result:
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                return None
            value = value.item()
        try:
            pair.append(float(value))
        except (TypeError, ValueError):
            return None
    return tuple(pair)


def _close(a: float, b: float, rtol: float = 1e-8) -> bool:
    return abs(a - b) <= 1e-12 + rtol * abs(b)


def check_optimal_momentum(optimal_momentum) -> None:
    """``optimal_momentum(mu, L)`` must return the pair ``(lr, beta)`` with the smallest heavy-ball rate.

    Closed form (Polyak, 1964): lr* = (2 / (sqrt(L) + sqrt(mu)))^2, beta* = ((sqrt(L) - sqrt(mu)) / (sqrt(L) +
    sqrt(mu)))^2, on six (mu, L) from kappa = 1 to kappa = 1e5.
    """
    __tracebackhide__ = True  # noqa: F841
    title = "Optimal momentum"
    cases = _OPTIMAL_MOMENTUM_CASES
    with quiet_and_isolated():
        for number, (name, mu, L) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = f"optimal_momentum(mu={fmt(mu)}, L={fmt(L)})"
            got = _call(f"{prefix}: {call}", optimal_momentum, mu, L)
            pair = _as_pair(got)
            if pair is None:
                fail(f"{prefix}: {call} must return a pair of numbers (lr, beta), got {fmt(got)}")
            root_mu, root_L = mu ** 0.5, L ** 0.5
            lr_star = (2 / (root_L + root_mu)) ** 2
            beta_star = ((root_L - root_mu) / (root_L + root_mu)) ** 2
            got_lr, got_beta = pair
            if _close(got_lr, lr_star) and _close(got_beta, beta_star):
                continue
            hints = []
            if _close(got_lr, beta_star) and _close(got_beta, lr_star) and not _close(lr_star, beta_star):
                hints.append("you returned (beta, lr): return the pair in the order (lr, beta)")
            if _close(got_lr, 2 / (mu + L)):
                hints.append("lr = 2/(mu + L) is gradient descent's best step; with momentum the best step is "
                             "(2 / (sqrt(L) + sqrt(mu)))^2")
            if _close(got_lr, 2 / (root_L + root_mu)):
                hints.append("the best step is the square of 2 / (sqrt(L) + sqrt(mu))")
            if _close(got_beta, beta_star ** 0.5) and beta_star > 0:
                hints.append("(sqrt(L) - sqrt(mu)) / (sqrt(L) + sqrt(mu)) is the rate; beta* is its square")
            hint = ("\n  Hint: " + "; ".join(hints)) if hints else (
                "\n  Hint: lr* = (2 / (sqrt(L) + sqrt(mu)))^2 and beta* = ((sqrt(L) - sqrt(mu)) / "
                "(sqrt(L) + sqrt(mu)))^2 make both extreme eigenvalues critically damped")
            wrong = []
            if not _close(got_lr, lr_star):
                wrong.append(f"lr expected {lr_star:.12g}, got {got_lr:.12g}")
            if not _close(got_beta, beta_star):
                wrong.append(f"beta expected {beta_star:.12g}, got {got_beta:.12g}")
            fail(f"{prefix}: {call}: {'; '.join(wrong)}{hint}")
    succeed(title, len(cases))
