"""Checks of notebook 10 (do adaptive methods beat SGD?): the selection rule, Wilson's features, SWATS.

``check_select_learning_rate(select_learning_rate)``: ``select_learning_rate(val_accuracy, val_loss)`` with two
``(n_lrs, n_seeds)`` tables returns the index of the chosen learning rate: the highest mean validation accuracy
over seeds, a diverged run (non-finite loss) counting as accuracy 0 and loss +inf; ties to the lower mean loss,
then to the lower index. Cases with answers worked out by hand, then random tables against
:func:`course_lib.tuning.select_best`.

``check_wilson_features(wilson_features)``: ``wilson_features(y)`` for +1/-1 labels returns the ``(n, 3 + 5n)``
design of Wilson et al. (2017): ``x[0] = y_i``, ``x[1] = x[2] = 1``, ones at ``3 + 5i ...`` (1 column for a
positive, 5 for a negative). Compared with matrices written out by hand and with
:func:`course_lib.wilson.wilson_features`, and the identity ``X sign(X^T y) = 4 y``.

``check_swats(SWATS)``: the learner's optimizer class (``SWATS(params, lr, betas, eps, switch_tol)``, with
``.switched_at``) against the course's :class:`course_lib.optim.swats.SWATS` on fixed gradient sequences; before
the switch with ``eps=0`` against ``torch.optim.Adam(eps=0)``, after it against ``torch.optim.SGD`` with
``momentum=beta1`` and ``lr=(1 - beta1) * Lambda``.
"""

from __future__ import annotations

import math

import torch

from .. import tuning, wilson
from ..optim.swats import SWATS as ReferenceSWATS
from ._common import (compare_number, compare_tensor, fail, fmt, generator, learner_error, own_code_only,
                      quiet_and_isolated, succeed)

F64 = torch.float64
INF = math.inf


def _t(rows):
    return torch.tensor(rows, dtype=F64)


_SELECT_CASES = (
    # (name, val_accuracy, val_loss, expected index)
    ("a clear winner", _t([[0.5, 0.6], [0.9, 0.92], [0.7, 0.8]]), _t([[1.0, 0.9], [0.3, 0.25], [0.6, 0.5]]), 1),
    ("the mean over seeds decides, not the best seed", _t([[0.99, 0.5], [0.9, 0.9]]), _t([[0.1, 2.0], [0.3, 0.3]]), 1),
    ("a tie in mean accuracy goes to the lower mean loss", _t([[0.9, 0.8], [0.85, 0.85], [0.7, 0.7]]),
     _t([[0.4, 0.5], [0.3, 0.35], [0.9, 0.9]]), 1),
    ("a diverged seed counts as accuracy 0, whatever accuracy was recorded",
     _t([[0.8, 0.8], [0.95, 0.9]]), _t([[0.5, 0.5], [0.2, INF]]), 0),
    ("a nan loss is a diverged run too", _t([[0.8, 0.8, 0.8], [0.9, 0.9, 0.9]]),
     _t([[0.5, 0.5, 0.5], [0.2, math.nan, 0.2]]), 0),
    ("a full tie goes to the smallest learning rate (the lowest index)", torch.full((4, 3), 0.5, dtype=F64),
     torch.ones(4, 3, dtype=F64), 0),
    ("one learning rate, one seed", _t([[0.3]]), _t([[2.0]]), 0),
    ("every run diverged: all tie, the first rate", torch.full((3, 2), 0.9, dtype=F64),
     torch.full((3, 2), INF, dtype=F64), 0),
)


def check_select_learning_rate(select_learning_rate) -> None:
    """Eight hand-worked cases (means, ties, divergence, nan) and six random tables against the course's rule."""
    __tracebackhide__ = True  # noqa: F841
    title = "Learning-rate selection"
    cases = list(_SELECT_CASES)
    with quiet_and_isolated():
        g = generator(10)
        for r in range(6):
            n_l, n_s = 3 + r, 2 + r % 3
            acc = torch.randint(0, 4, (n_l, n_s), generator=g).to(F64) / 4  # coarse: ties happen
            loss = torch.rand(n_l, n_s, generator=g, dtype=F64)
            if r % 2:
                loss[r % n_l, 0] = INF
            cases.append((f"random tables {n_l} x {n_s}", acc, loss, tuning.select_best(acc, loss)))
        for number, (name, acc, loss, expected) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            call = f"select_learning_rate(val_accuracy={fmt(acc)}, val_loss={fmt(loss)})"
            try:
                got = select_learning_rate(acc.clone(), loss.clone())
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: {call}", err)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, int) or isinstance(got, bool):
                fail(f"{prefix}: {call} returned {got!r}; expected an int index (use int(...))")
            if got != expected:
                fail(f"{prefix}: {call}: expected index {expected}, got {got}\n  Hint: mean over seeds (axis 1) with "
                     f"diverged runs as accuracy 0 and loss inf; highest mean accuracy; ties to the lower mean "
                     f"loss, then to the lower index")
    succeed(title, len(cases))


def _hand_features():
    y = _t([1.0, -1.0])
    X = torch.zeros(2, 13, dtype=F64)
    X[0, :4] = _t([1.0, 1.0, 1.0, 1.0])
    X[1, :3] = _t([-1.0, 1.0, 1.0])
    X[1, 8:13] = 1.0
    return y, X


def check_wilson_features(wilson_features) -> None:
    """Two hand-written designs, four random label vectors, and X sign(X^T y) = 4 y when positives are the majority."""
    __tracebackhide__ = True  # noqa: F841
    title = "Wilson features"
    y_hand, X_hand = _hand_features()
    cases = [("y = [+1, -1], written out by hand", y_hand, X_hand),
             ("a single positive sample: [[1, 1, 1, 1, 0, 0, 0, 0]]", _t([1.0]), _t([[1.0, 1.0, 1.0, 1.0, 0, 0, 0, 0]]))]
    with quiet_and_isolated():
        g = generator(11)
        for n in (3, 5, 8, 12):
            y = torch.where(torch.rand(n, generator=g, dtype=F64) < 0.7, 1.0, -1.0).to(F64)
            y[0] = 1.0
            cases.append((f"{n} random labels {fmt(y)}", y, wilson.wilson_features(y)))
        for number, (name, y, expected) in enumerate(cases, start=1):
            prefix = f"{title}, case {number} of {len(cases)} ({name})"
            try:
                got = wilson_features(y.clone())
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}: wilson_features(y)", err)
            problem = compare_tensor(got, expected, "the design matrix X", atol=0.0, rtol=0.0)
            if problem:
                fail(f"{prefix}: {problem}\n  Hint: X has n rows and 3 + 5n columns; row i: [y_i, 1, 1, ...] and "
                     f"ones in columns 3 + 5i onwards (1 of them for y_i = +1, 5 for y_i = -1)")
            if y.sum() > 0:
                u = torch.sign(got.to(F64).T @ y)
                problem = compare_tensor(got.to(F64) @ u, 4 * y, "X sign(X^T y) (should be 4 y)")
                if problem:
                    fail(f"{prefix}: {problem}")
    succeed(title, len(cases))


_SWATS_CASES = (
    # (name, lr, betas, eps, switch_tol, noise, steps, seed); switch steps from the reference (asserted in the tests)
    ("never switches (switch_tol=0): the Adam phase, eps=1e-3", 0.05, (0.9, 0.999), 1e-3, 0.0, 0.1, 30, 1),
    ("deterministic gradients, switches at step 34", 0.1, (0.9, 0.999), 1e-9, 1e-3, 0.0, 60, 2),
    ("noisy gradients, switches at step 66", 0.03, (0.9, 0.999), 1e-9, 1e-4, 0.1, 90, 2),
    ("noisy gradients, switches at step 8", 0.01, (0.9, 0.999), 1e-9, 1e-4, 0.1, 25, 1),
    ("other betas (0.8, 0.99) and eps=1e-8", 0.03, (0.8, 0.99), 1e-8, 1e-4, 0.0, 60, 4),
    ("a loose tolerance: switches at step 2", 0.01, (0.9, 0.999), 1e-9, 1e-2, 0.0, 20, 3),
)


def _shapes():
    return [(5,), (2, 3), ()]


def _problem(seed):
    g = generator(seed)
    n = sum(math.prod(s) for s in _shapes())
    A = torch.randn(n, n, generator=g, dtype=F64)
    A = A.T @ A / n + 0.1 * torch.eye(n, dtype=F64)
    b = torch.randn(n, generator=g, dtype=F64)
    return A, b, g


def _grad(A, b, params, noise, g):
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = A @ flat - b + noise * torch.randn(flat.shape[0], generator=g, dtype=F64)
    out, i = [], 0
    for p in params:
        out.append(grad[i:i + p.numel()].reshape(p.shape))
        i += p.numel()
    return out


def _make_params():
    return [torch.full(s, 0.1, dtype=F64).requires_grad_(True) for s in _shapes()]


def _groups(params, lr, two_groups):
    if not two_groups:
        return [{"params": params}]
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr * 3}]


def _run_swats(cls, case, two_groups=False):
    """The parameters after every step, and the optimizer."""
    _, lr, betas, eps, tol, noise, steps, seed = case
    A, b, g = _problem(seed)
    params = _make_params()
    opt = cls(_groups(params, lr, two_groups), lr=lr, betas=betas, eps=eps, switch_tol=tol)
    history = []
    for _ in range(steps):
        for p, gr in zip(params, _grad(A, b, params, noise, g)):
            p.grad = gr.clone()
        opt.step()
        history.append([p.detach().clone() for p in params])
    return history, opt


def check_swats(SWATS) -> None:
    """Five gradient sequences (no switch, switches at steps 2 to ~100, noise, other betas), two parameter groups,
    the Adam phase against torch.optim.Adam and the SGD phase against torch.optim.SGD."""
    __tracebackhide__ = True  # noqa: F841
    import inspect

    from .optimizers import _borrowed_from

    title = "SWATS"
    if not inspect.isclass(SWATS) or not issubclass(SWATS, torch.optim.Optimizer):
        fail(f"{title}: check_swats needs your class, a subclass of torch.optim.Optimizer; got {SWATS!r}")
    borrowed = _borrowed_from(SWATS)
    if borrowed is not None:
        fail(f"{title}: {SWATS.__name__} is or inherits from {borrowed}, an existing implementation; "
             f"write the update rule yourself in a subclass of torch.optim.Optimizer")
    n_checks = 0
    with quiet_and_isolated(default_dtype=F64):
        runs = [(case, False) for case in _SWATS_CASES] + [(_SWATS_CASES[1], True)]
        for number, (case, two_groups) in enumerate(runs, start=1):
            name = case[0] + (", two parameter groups (the second with 3x the lr)" if two_groups else "")
            prefix = f"{title}, case {number} of {len(runs) + 2} ({name})"
            expected, ref = _run_swats(ReferenceSWATS, case, two_groups)
            try:
                with own_code_only(f"{prefix}: your SWATS"):
                    got, opt = _run_swats(SWATS, case, two_groups)
            except Exception as err:  # noqa: BLE001
                learner_error(f"{prefix}", err)
            switch = ref.switched_at
            for k, (e_step, g_step) in enumerate(zip(expected, got), start=1):
                for j, (e, gt) in enumerate(zip(e_step, g_step)):
                    problem = compare_tensor(gt, e, f"parameter {j} (shape {tuple(e.shape)}) after step {k}")
                    if problem:
                        phase = "Adam phase" if switch is None or k <= switch else f"SGD phase (switch at step {switch})"
                        fail(f"{prefix}: {problem} [{phase}]\n  Hint: the projection p^T p / (-p^T g) uses ALL "
                             f"tensors of the group; the test is |lambda_k / (1 - beta2^k) - gamma_k| < switch_tol "
                             f"for k > 1; after the switch v = beta1 v + g, w -= (1 - beta1) Lambda v")
            got_switch = getattr(opt, "switched_at", "missing")
            if got_switch != switch:
                fail(f"{prefix}: switched_at: expected {switch}, got {got_switch}")
            for gi, (rg, lg) in enumerate(zip(ref.param_groups, opt.param_groups)):
                if rg["switched_at"] != lg.get("switched_at", "missing"):
                    fail(f"{prefix}: group {gi}['switched_at']: expected {rg['switched_at']}, "
                         f"got {lg.get('switched_at', 'missing')}")
                if rg["sgd_lr"] is not None:
                    problem = compare_number(lg.get("sgd_lr"), rg["sgd_lr"], f"group {gi}['sgd_lr'] (Lambda)")
                    if problem:
                        fail(f"{prefix}: {problem}")
            n_checks += 1
        # independent references: torch.optim.Adam before any switch, torch.optim.SGD after it
        prefix = f"{title}, case {len(runs) + 1} of {len(runs) + 2} (eps=0, switch_tol=0 is torch.optim.Adam(eps=0))"
        case = ("adam", 0.05, (0.9, 0.99), 0.0, 0.0, 0.2, 25, 41)
        try:
            with own_code_only(f"{prefix}: your SWATS"):
                got, _ = _run_swats(SWATS, case)
        except Exception as err:  # noqa: BLE001
            learner_error(prefix, err)
        expected, _ = _run_swats(lambda groups, switch_tol, **kw: torch.optim.Adam(groups, **kw), case)
        for k, (e_step, g_step) in enumerate(zip(expected, got), start=1):
            for j, (e, gt) in enumerate(zip(e_step, g_step)):
                problem = compare_tensor(gt, e, f"parameter {j} after step {k}")
                if problem:
                    fail(f"{prefix}: {problem}\n  Hint: m/(sqrt(a) + eps) scaled by lr sqrt(1 - beta2^k) / (1 - beta1^k)")
        n_checks += 1
        prefix = f"{title}, case {len(runs) + 2} of {len(runs) + 2} (after the switch: torch.optim.SGD(momentum=beta1, " \
                 f"lr=(1 - beta1) Lambda))"
        case = _SWATS_CASES[1]
        try:
            with own_code_only(f"{prefix}: your SWATS"):
                got, opt = _run_swats(SWATS, case)
        except Exception as err:  # noqa: BLE001
            learner_error(prefix, err)
        ref_hist, ref = _run_swats(ReferenceSWATS, case)
        k0 = ref.switched_at
        A, b, g = _problem(case[-1])
        params = _make_params()
        beta1 = case[2][0]
        for k in range(case[6]):  # replay the reference's gradient stream, switching optimizer at k0
            grads = _grad(A, b, params, case[5], g)
            if k == k0:
                sgd = torch.optim.SGD(params, lr=(1 - beta1) * ref.param_groups[0]["sgd_lr"], momentum=beta1)
            if k < k0:
                with torch.no_grad():
                    for p, e in zip(params, ref_hist[k]):
                        p.copy_(e)
                continue
            for p, gr in zip(params, grads):
                p.grad = gr.clone()
            sgd.step()
            for j, (p, gt) in enumerate(zip(params, got[k])):
                problem = compare_tensor(gt, p.detach(), f"parameter {j} after step {k + 1}")
                if problem:
                    fail(f"{prefix}: {problem}\n  Hint: at the switch v starts at 0; then v = beta1 v + g and "
                         f"w -= (1 - beta1) Lambda v")
        n_checks += 1
    succeed(title, n_checks)
