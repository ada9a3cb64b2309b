"""What every check shares: how it fails, how it compares numbers, how it succeeds.

A check raises :class:`AssertionError` with a message that names the case, the
step and the quantity, and shows expected against got; on success it prints one
fixed line. It never prints a partial score: the grader reads pass or fail from
whether the check cell raised and whether its output is that line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings

import torch

RTOL = 1e-8
"""Relative tolerance of every comparison (all checks compute in float64)."""


def fail(message: str, cause: BaseException | None = None):
    """Raise the AssertionError that a learner reads."""
    __tracebackhide__ = True  # noqa: F841 (IPython and pytest hide this frame)
    raise AssertionError(message) from cause


def succeed(title: str, n_checks: int) -> None:
    """Print the one fixed success line."""
    print(f"{title}: all {n_checks} checks passed")


def fmt(value) -> str:
    """A number as the learner should see it: 12 significant digits, enough to show a 1e-8 difference."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            value = value.item()
        else:
            return fmt_tensor(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return f"{value:.12g}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(fmt(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def fmt_tensor(tensor: torch.Tensor, limit: int = 8) -> str:
    flat = tensor.detach().reshape(-1).tolist()
    body = ", ".join(f"{v:.6g}" for v in flat[:limit])
    if len(flat) > limit:
        body += ", ..."
    return f"tensor([{body}], shape {tuple(tensor.shape)})"


def shape_str(shape) -> str:
    return str(tuple(shape))


def call_kwargs(kwargs: dict) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in kwargs.items())


def compare_tensor(got, expected: torch.Tensor, what: str, *, atol: float | None = None,
                   rtol: float = RTOL, reshape: bool = False, tiny_hint: str | None = None) -> str | None:
    """``None`` if ``got`` equals ``expected`` to ``rtol`` (float64), else a sentence that says how it differs.

    ``atol`` defaults to ``1e-10`` times the largest magnitude in ``expected`` (at least 1e-10 for
    values of order one), so values that cross zero are compared sensibly. ``tiny_hint``: what a
    difference below a relative 1e-5 most likely comes from in this case (the caller knows the case:
    eps matters only where gradients are tiny); without it a tiny difference gets no guess.
    """
    if not isinstance(got, torch.Tensor):
        try:
            got = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return f"{what} should be a tensor, got {type(got).__name__}"
    got = got.detach()
    expected = expected.detach().to(torch.float64)
    if tuple(got.shape) != tuple(expected.shape):
        if reshape and got.numel() == expected.numel():
            got = got.reshape(expected.shape)
        else:
            return f"{what} has shape {shape_str(got.shape)}, expected {shape_str(expected.shape)}"
    if got.is_complex() or expected.is_complex():
        return f"{what} is complex, expected a real tensor"
    dtype_note = ""
    if got.dtype != torch.float64:
        dtype_note = (f" (your tensor has dtype {got.dtype}; the check uses float64, so keep the "
                      f"dtype of the inputs: e.g. torch.zeros(..., dtype=x.dtype) or torch.zeros_like(x))")
    got = got.to(torch.float64).cpu()
    expected = expected.cpu()
    if expected.numel() == 0:
        return None
    scale = expected.abs().max().item() if torch.isfinite(expected).all() else 1.0
    if atol is None:
        atol = 1e-10 * max(1.0, scale)
    difference = (got - expected).abs()
    bad = ~(difference <= atol + rtol * expected.abs())  # NaN counts as bad
    both_nan = torch.isnan(got) & torch.isnan(expected)
    same_inf = torch.isinf(got) & torch.isinf(expected) & (got == expected)
    bad &= ~(both_nan | same_inf)
    if not bad.any():
        return None
    excess = torch.where(bad, (difference - atol - rtol * expected.abs()).nan_to_num(float("inf")),
                         torch.zeros_like(difference))
    flat_index = int(excess.reshape(-1).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat_index), expected.shape)) \
        if expected.dim() else ()
    got_value, expected_value = got[index].item(), expected[index].item()
    where = f" at index {index}" if expected.dim() else ""
    n_bad = int(bad.sum())
    count = f"; {n_bad} of {expected.numel()} entries differ" if expected.numel() > 1 else ""
    relative = abs(got_value - expected_value) / max(abs(expected_value), 1e-300)
    tiny_note = ""
    if not dtype_note and relative < 1e-5 and tiny_hint:
        tiny_note = f" (a tiny difference: {tiny_hint})"
    return (f"{what} differs{where}: expected {expected_value:.12g}, got {got_value:.12g}"
            f"{count}{dtype_note}{tiny_note}")


def compare_number(got, expected: float, what: str, *, rtol: float = RTOL, atol: float = 1e-12) -> str | None:
    """``None`` if the scalar ``got`` equals ``expected``, else a sentence that says how it differs."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            return f"{what} should be a number (or a tensor with one element), got shape {shape_str(got.shape)}"
        got = got.item()
    try:
        got = float(got)
    except (TypeError, ValueError):
        return f"{what} should be a number, got {type(got).__name__}"
    if got == expected or abs(got - expected) <= atol + rtol * abs(expected):
        return None
    return f"{what}: expected {expected:.12g}, got {got:.12g}"


@contextlib.contextmanager
def quiet_and_isolated(default_dtype: torch.dtype | None = None):
    """Run a check without warnings on stderr (nbval compares stderr) and without touching global state.

    The CPU random number generator, grad mode and default dtype are restored afterwards.
    ``default_dtype``: the default dtype while the check runs (the optimizer checks use float64,
    so that the scalars torch.optim and a learner keep as tensors, like ``step``, are exact).
    """
    cpu_rng = torch.random.get_rng_state()
    grad_enabled = torch.is_grad_enabled()
    previous_dtype = torch.get_default_dtype()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if default_dtype is not None:
                torch.set_default_dtype(default_dtype)
            yield
        finally:
            torch.set_default_dtype(previous_dtype)
            torch.random.set_rng_state(cpu_rng)
            torch.set_grad_enabled(grad_enabled)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def learner_error(prefix: str, err: Exception, hint: str = ""):
    """Turn an exception raised by the learner's code into a check failure that says where it happened.

    ``NotImplementedError`` is re-raised as it is: it means "not done yet", and the lessons'
    tests rely on seeing exactly that.
    """
    __tracebackhide__ = True  # noqa: F841
    if isinstance(err, NotImplementedError):
        raise err
    message = f"{prefix} raised {type(err).__name__}: {err}"
    if hint:
        message += f"\n  Hint: {hint}"
    fail(message, err)


def compare_iterates(got, expected: torch.Tensor, prefix: str, call: str, rows: str, explain) -> None:
    """Fail unless ``got`` is a tensor shaped like ``expected`` (one row per iterate) and equal to it row by row.

    ``rows`` says what the rows are (shown when the type or shape is wrong); ``explain(k, problem)`` returns the
    message for the first row ``k`` that differs (the rule that produced the row, a hint).
    """
    __tracebackhide__ = True  # noqa: F841
    if not isinstance(got, torch.Tensor):
        fail(f"{prefix}: {call} returned {type(got).__name__}; expected one tensor of shape "
             f"{shape_str(expected.shape)} ({rows}; torch.stack a list of iterates)")
    if tuple(got.shape) != tuple(expected.shape):
        fail(f"{prefix}: {call} returned shape {shape_str(got.shape)}, expected {shape_str(expected.shape)}: {rows}")
    for k in range(expected.shape[0]):
        problem = compare_tensor(got[k], expected[k], f"iterate x_{k} (row {k})")
        if problem:
            fail(explain(k, problem))


# ---------------------------------------------------------------------------------------------
# no existing implementation inside the learner's code


def _reference_code():
    """(directories whose code is an existing implementation, files in them that are allowed)."""
    import torch.optim

    roots = [os.path.dirname(torch.optim.__file__)]
    allowed = {os.path.join(roots[0], "optimizer.py"), os.path.join(roots[0], "__init__.py")}
    for name in ("adabound", "schedulefree", "course_lib.optim"):
        try:
            module = __import__(name, fromlist=["_"])
        except ImportError:
            continue
        roots.append(os.path.dirname(module.__file__))
        if name == "course_lib.optim":  # the lessons may build on its base class
            allowed |= {os.path.join(roots[-1], "_base.py"), os.path.join(roots[-1], "__init__.py")}
    return tuple(os.path.join(r, "") for r in roots), allowed


@contextlib.contextmanager
def own_code_only(what: str, active: bool = True):
    """Fail the check if the learner's code runs an existing optimizer while inside this block.

    Building or stepping a ``torch.optim`` optimizer (or one of ``adabound``, ``schedulefree``,
    ``course_lib.optim``), calling their functional forms, or a fused optimizer kernel
    (``torch._fused_adam_``, ...) from inside the learner's class is what the exercise asks to write;
    it is detected with a profile function (``sys.setprofile``) while the learner's code runs.
    """
    __tracebackhide__ = True  # noqa: F841
    if not active:
        yield
        return
    roots, allowed = _reference_code()
    found: list[str] = []

    def profile(frame, event, arg):
        if found:
            return
        if event == "call":
            filename = frame.f_code.co_filename
            if filename.startswith(roots) and filename not in allowed:
                module = frame.f_globals.get("__name__", filename)
                found.append(f"{module}.{frame.f_code.co_qualname if hasattr(frame.f_code, 'co_qualname') else frame.f_code.co_name}")
        elif event == "c_call" and getattr(arg, "__name__", "").startswith("_fused_"):
            found.append(f"torch.{arg.__name__}")

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)
    if found:
        fail(f"{what} ran {found[0]}, an existing implementation: running a torch.optim optimizer or its "
             f"functional form (or the adabound, schedulefree or course_lib.optim ones) from your code is not "
             f"allowed; write the update rule yourself")


# ---------------------------------------------------------------------------------------------
# an unsolved exercise in a lesson the learner runs: a report, not a halt

STRICT_ENV = "COURSE_STRICT_CHECKS"
"""Set (to anything but ``""``/``0``) to make every check raise on an unsolved exercise; pytest sets ``PYTEST_VERSION``,
which does the same, so nbval and the grader keep failing unsolved work."""

NOT_SOLVED = "Not solved yet"


def strict_checks() -> bool:
    """Whether an unsolved exercise must raise (grading, nbval, tests) rather than be reported (a learner's lab)."""
    flag = os.environ.get(STRICT_ENV, "")
    return (flag not in ("", "0")) or "PYTEST_VERSION" in os.environ


def _unsolved_in(err: NotImplementedError) -> str | None:
    """The learner's function that raised ``err`` (its innermost frame is notebook code), else None."""
    tb, last = err.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return None
    code = last.tb_frame.f_code
    library = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.dirname(os.__file__),
               os.path.dirname(torch.__file__))
    if os.path.abspath(code.co_filename).startswith(library):
        return None  # raised by a library: a real error, not a stub
    return getattr(code, "co_qualname", code.co_name)


def reports_unsolved(check):
    """Wrap a check so that, in a lesson run by hand, an unsolved exercise prints one plain line and the
    notebook goes on (Run All reaches every panel below); under :func:`strict_checks` it raises as before.

    Only a ``NotImplementedError`` raised in notebook code (the stub ``raise NotImplementedError()``) is
    reported; any other failure of the learner's code is the check's AssertionError, as always.
    """
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841
        try:
            return check(*args, **kwargs)
        except NotImplementedError as err:
            where = _unsolved_in(err)
            if strict_checks() or where is None:
                raise
            name = where if where != "<module>" else "the exercise cell"
            print(f"{NOT_SOLVED}: {name} still raises NotImplementedError. Replace `# YOUR CODE HERE` and "
                  f"`raise NotImplementedError()` in the exercise above with your code, run that cell, then run "
                  f"this check again.")
            return None

    return wrapper
