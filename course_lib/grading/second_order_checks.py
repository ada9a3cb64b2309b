"""Checks of notebook 08 (second-order methods).

* ``check_network_hvp(hvp)``: ``hvp(loss_fn, params, vs)`` -> list of tensors :math:`H v` (one per parameter), where
  ``loss_fn()`` computes the loss from the tensors in ``params`` (which require grad); compared with the exact
  Hessian (:func:`course_lib.second_order.hessian`) times the flattened ``vs``.
* ``check_newton_direction(newton_direction)``: ``newton_direction(grad, hessian, damping)`` ->
  :math:`-(H + \\lambda I)^{-1} g`, compared with ``torch.linalg.solve``.
* ``check_saddle_free_direction(saddle_free_direction)``: ``saddle_free_direction(grad, hessian, damping)`` ->
  :math:`-(|H| + \\lambda I)^{-1} g` with :math:`|H| = U|\\Lambda|U^\\top`; compared with a solve against the
  absolute-value matrix built from ``torch.linalg.eigh``.
* ``check_lbfgs_direction(lbfgs_direction)``: ``lbfgs_direction(grad, s_list, y_list)`` -> :math:`-H_k g` by the
  two-loop recursion; compared with the direction ``torch.optim.LBFGS`` takes at every step of runs on quadratics.
* ``check_kfac_factors(kfac_factors)``: ``kfac_factors(inputs, output_grads)`` -> ``(A, S)``, K-FAC's Kronecker
  factors of one linear layer (Martens & Grosse 2015, who call the second one :math:`G`): the second moments
  :math:`A = \\frac1B \\sum_i \\bar a_i \\bar a_i^\\top` of the inputs with a one appended (the bias),
  :math:`\\bar a_i = [a_i; 1]`, and :math:`S = \\frac1B \\sum_i g_i g_i^\\top` of the back-propagated output
  gradients; compared with averages of per-example outer products.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import second_order
from ._common import compare_tensor, fail, generator, learner_error, quiet_and_isolated, shape_str, succeed

F64 = torch.float64

__all__ = ["check_network_hvp", "check_newton_direction", "check_saddle_free_direction", "check_lbfgs_direction",
           "check_kfac_factors"]


# ---------------------------------------------------------------------------------------------
# Hessian-vector products on a list of parameters


def _mlp_case(seed, sizes, activation, n=12):
    gen = generator(seed)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params.append((torch.randn(b, a, generator=gen, dtype=F64) / a ** 0.5).requires_grad_(True))
        params.append((0.1 * torch.randn(b, generator=gen, dtype=F64)).requires_grad_(True))
    X = torch.randn(n, sizes[0], generator=gen, dtype=F64)
    Y = torch.randn(n, sizes[-1], generator=gen, dtype=F64)

    def loss_fn():
        h = X
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i + 2 < len(params):
                h = activation(h)
        return ((h - Y) ** 2).mean()

    return params, loss_fn


def _hvp_cases():
    cases = []
    params, loss_fn = _mlp_case(1, (3, 4, 2), torch.tanh)
    cases.append(("an MLP 3-4-2 with tanh, squared error", params, loss_fn))
    params, loss_fn = _mlp_case(2, (2, 5, 3, 1), torch.nn.functional.softplus)
    cases.append(("an MLP 2-5-3-1 with softplus (three layers)", params, loss_fn))
    params, loss_fn = _mlp_case(3, (4, 1), torch.tanh)
    cases.append(("linear least squares: a quadratic, H v is constant", params, loss_fn))
    gen = generator(4)
    w = torch.randn(3, 2, generator=gen, dtype=F64).requires_grad_(True)
    s = torch.tensor(0.7, dtype=F64, requires_grad=True)
    cases.append(("a 0-dim parameter next to a matrix: f = s^2 sum(w^3) + sin(s)", [w, s],
                  lambda: s ** 2 * (w ** 3).sum() + torch.sin(s)))
    u = torch.randn(5, generator=gen, dtype=F64).requires_grad_(True)
    cases.append(("one parameter in the list: f = log(1 + |u|^2)^2", [u], lambda: torch.log1p((u ** 2).sum()) ** 2))
    return cases


def check_network_hvp(hvp) -> None:
    """Five losses of lists of parameters (MLPs, a quadratic, a 0-dim parameter), random vectors ``vs``."""
    __tracebackhide__ = True  # noqa: F841
    title = "Hessian-vector product on a network"
    cases = _hvp_cases()
    with quiet_and_isolated():
        for number, (name, params, loss_fn) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            gen = generator(100 + number)
            vs = [torch.randn(p.shape, generator=gen, dtype=F64) for p in params]
            exact = second_order.hessian(lambda ps: loss_fn(), params)
            expected = second_order.unflatten(exact @ second_order.flatten(vs), params)
            before = [p.detach().clone() for p in params]
            moved = []

            def watched(_loss_fn=loss_fn, _params=params, _before=before, _moved=moved):
                # where hvp evaluates the loss: only at the given parameters, never at params + h v
                if not _moved and any(not torch.equal(p.detach(), b) for p, b in zip(_params, _before)):
                    _moved.append(max((p.detach() - b).abs().max().item() for p, b in zip(_params, _before)))
                return _loss_fn()

            try:
                got = hvp(watched, params, [v.clone() for v in vs])
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: hvp(loss_fn, params, vs)", err,
                              "g = torch.autograd.grad(loss_fn(), params, create_graph=True); then "
                              "torch.autograd.grad(sum((gi * vi).sum() ...), params)")
            if isinstance(got, torch.Tensor) or not isinstance(got, (list, tuple)) or len(got) != len(params):
                fail(f"{prefix}: hvp must return a list with one tensor per parameter ({len(params)}), "
                     f"got {type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))
            if moved:
                fail(f"{prefix}: hvp evaluated loss_fn with the parameters moved (by up to {moved[0]:.3g}): finite "
                     f"differences of the gradient are not allowed; differentiate the gradient again "
                     f"(create_graph=True, then a second torch.autograd.grad), which is exact")
            for i, (g, e) in enumerate(zip(got, expected)):
                if not isinstance(g, torch.Tensor):
                    fail(f"{prefix}: entry {i} is a {type(g).__name__}, expected a tensor of shape {shape_str(e.shape)}")
                problem = compare_tensor(g, e, f"(H v) for parameter {i} (shape {shape_str(e.shape)})")
                if problem:
                    fail(f"{prefix}: {problem}\n  Hint: the second backward pass differentiates the dot product of "
                         f"the whole gradient with the whole v, summed over all parameters")
            if any(not torch.equal(p.detach(), b) for p, b in zip(params, before)):
                fail(f"{prefix}: hvp changed the parameters; it must leave them as they are")
    succeed(title, len(cases))


# ---------------------------------------------------------------------------------------------
# Newton and saddle-free Newton directions


def _sym(values, seed):
    values = torch.tensor(values, dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=generator(seed), dtype=F64))
    return q @ torch.diag(values) @ q.T


def _direction_cases():
    t = lambda rows: torch.tensor(rows, dtype=F64)  # noqa: E731
    return [
        ("a bowl diag(1, 4), no damping", t([2.0, -1.0]), t([[1.0, 0.0], [0.0, 4.0]]), 0.0),
        ("the saddle x^2 - y^2 at (0.5, 0.5), H = diag(2, -2)", t([1.0, -1.0]), t([[2.0, 0.0], [0.0, -2.0]]), 0.0),
        ("a dense 4x4 positive definite H, damping 0.5", t([1.0, 0.0, -2.0, 0.5]), _sym([0.1, 1.0, 3.0, 10.0], 5), 0.5),
        ("a dense 5x5 indefinite H (eigenvalues -3 ... 4), damping 0.1", t([0.3, -1.0, 2.0, 0.0, 1.0]),
         _sym([-3.0, -0.5, 0.2, 1.0, 4.0], 6), 0.1),
        ("1x1, negative curvature -2, damping 0.5", t([1.5]), t([[-2.0]]), 0.5),
        ("the quartic saddle at (1, 0.3): H = diag(1, -0.73), damping 0.2", t([1.0, -0.273]), t([[1.0, 0.0], [0.0, -0.73]]),
         0.2),
    ]


def _check_direction(fn, title, reference, hint):
    __tracebackhide__ = True  # noqa: F841
    cases = _direction_cases()
    with quiet_and_isolated():
        for number, (name, g, h, damping) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            expected = reference(g, h, damping)
            try:
                got = fn(g.clone(), h.clone(), damping)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {fn.__name__}(grad, hessian, damping={damping})", err)
            problem = compare_tensor(got, expected, "the direction")
            if problem:
                fail(f"{prefix}: {problem}\n  Hint: {hint}")
    succeed(title, len(cases))


def _newton_reference(g, h, damping):
    return -torch.linalg.solve(h + damping * torch.eye(len(g), dtype=F64), g)


def _sfn_reference(g, h, damping):
    values, vectors = torch.linalg.eigh(h)
    absolute = vectors @ torch.diag(values.abs()) @ vectors.T
    return -torch.linalg.solve(absolute + damping * torch.eye(len(g), dtype=F64), g)


def check_newton_direction(newton_direction) -> None:
    """Six gradients and Hessians (definite, indefinite, dense, 1x1), with and without damping."""
    _check_direction(newton_direction, "Newton direction", _newton_reference,
                     "the direction is -(H + damping I)^{-1} g: solve the system (torch.linalg.solve), "
                     "and mind the minus sign")


def check_saddle_free_direction(saddle_free_direction) -> None:
    """The same six cases: the direction with |H| (absolute eigenvalues, same eigenvectors) plus damping."""
    _check_direction(saddle_free_direction, "Saddle-free Newton direction", _sfn_reference,
                     "|H| = U diag(|lambda|) U^T from torch.linalg.eigh (not the absolute value of H's entries); "
                     "the direction is -(|H| + damping I)^{-1} g")


# ---------------------------------------------------------------------------------------------
# L-BFGS two-loop recursion, against torch.optim.LBFGS


def _lbfgs_runs():
    runs = []
    for seed, n, history, steps, lr in ((11, 4, 3, 7, 0.5), (12, 6, 1, 5, 1.0), (13, 5, 5, 9, 0.3)):
        a = torch.randn(n, n, generator=generator(seed), dtype=F64)
        hess = a @ a.T / n + 0.3 * torch.eye(n, dtype=F64)
        b = torch.randn(n, generator=generator(seed + 100), dtype=F64)
        runs.append((f"a {n}-dimensional quadratic, history_size={history}, lr={lr}", hess, b, history, steps, lr))
    return runs


def check_lbfgs_direction(lbfgs_direction) -> None:
    """Three runs of torch.optim.LBFGS on quadratics (memory 1, 3, 5): the learner's direction at every step."""
    __tracebackhide__ = True  # noqa: F841
    title = "L-BFGS two-loop recursion"
    runs = _lbfgs_runs()
    with quiet_and_isolated():
        g0 = torch.tensor([1.0, -2.0], dtype=F64)
        try:
            got = lbfgs_direction(g0.clone(), [], [])
        except Exception as err:  # noqa: BLE001
            learner_error(f"{title}, case 1 of {len(runs) + 1} (no pairs yet): lbfgs_direction(g, [], [])", err)
        problem = compare_tensor(got, -g0, "the direction")
        if problem:
            fail(f"{title}, case 1 of {len(runs) + 1} (no pairs yet: the direction is -g): {problem}")
        for number, (name, hess, b, history, steps, lr) in enumerate(runs, start=2):
            x = torch.zeros(len(b), dtype=F64, requires_grad=True)
            opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=history)

            def closure():
                opt.zero_grad()
                loss = 0.5 * x @ hess @ x - b @ x
                loss.backward()
                return loss

            for step in range(steps):
                opt.step(closure)
                state = opt.state[x]
                if step == 0:
                    continue
                prefix = f"{title}, case {number} of {len(runs) + 1} ({name}), step {step + 1}"
                s_list = [s.clone() for s in state["old_stps"]]
                y_list = [y.clone() for y in state["old_dirs"]]
                try:
                    got = lbfgs_direction(state["prev_flat_grad"].clone(), s_list, y_list)
                except Exception as err:  # noqa: BLE001
                    learner_error(f"{prefix}: lbfgs_direction(g, s_list, y_list) with {len(s_list)} pairs", err)
                problem = compare_tensor(got, state["d"], f"the direction with {len(s_list)} pairs")
                if problem:
                    fail(f"{prefix}: {problem} (torch.optim.LBFGS's direction)\n  Hint: first loop newest to "
                         f"oldest, H0 = (s^T y / y^T y) I of the newest pair, second loop oldest to newest; "
                         f"return -r")
    succeed(title, len(runs) + 1)


# ---------------------------------------------------------------------------------------------
# K-FAC factors


def _kfac_cases():
    cases = []
    for seed, (batch, din, dout) in enumerate(((8, 3, 2), (1, 4, 3), (50, 1, 1), (16, 6, 10)), start=30):
        gen = generator(seed)
        cases.append((f"batch {batch}, {din} inputs, {dout} outputs", torch.randn(batch, din, generator=gen, dtype=F64),
                      torch.randn(batch, dout, generator=gen, dtype=F64)))
    # the factors of a real layer: inputs and per-example output gradients of nn.Linear
    gen = generator(40)
    layer = nn.Linear(3, 2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, 3, generator=gen, dtype=F64))
    X = torch.randn(10, 3, generator=gen, dtype=F64)
    out = layer(X)
    grads = torch.autograd.grad(((out - 1) ** 2).sum(), out)[0]
    cases.append(("the input and the output gradients of an nn.Linear(3, 2)", X, grads.detach()))
    return cases


def check_kfac_factors(kfac_factors) -> None:
    r"""Five batches: :math:`A = \frac1B \sum_i \bar a_i \bar a_i^\top` with :math:`\bar a_i = [a_i; 1]`, and
    :math:`S = \frac1B \sum_i g_i g_i^\top` (per-example outer products of the output gradients; Martens &
    Grosse's :math:`G`).

    The last batch is a real layer's: the inputs and per-example output gradients of an ``nn.Linear(3, 2)``.
    """
    __tracebackhide__ = True  # noqa: F841
    title = "K-FAC factors"
    with quiet_and_isolated():
        cases = _kfac_cases()  # nn.Linear's initialization draws from the global generator: restored afterwards
        for number, (name, a, g) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            a1 = torch.cat([a, torch.ones(a.shape[0], 1, dtype=F64)], dim=1)
            expected_a = torch.einsum("bi,bj->ij", a1, a1) / a.shape[0]
            expected_s = torch.einsum("bi,bj->ij", g, g) / g.shape[0]
            try:
                got = kfac_factors(a.clone(), g.clone())
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: kfac_factors(inputs, output_grads)", err)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                fail(f"{prefix}: kfac_factors must return a pair (A, S), got {type(got).__name__}")
            for what, value, expected, hint in (
                    ("A", got[0], expected_a, "append a column of ones to the inputs (the bias), then average the "
                                              "outer products over the batch: a1.T @ a1 / B"),
                    ("S", got[1], expected_s, "average the outer products of the output gradients: g.T @ g / B")):
                problem = compare_tensor(value, expected, what)
                if problem:
                    fail(f"{prefix}: {problem}\n  Hint: {hint}")
    succeed(title, len(cases))
