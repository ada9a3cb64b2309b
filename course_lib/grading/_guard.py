"""The grader's guard inside the learner's kernel: run each check cell in a state the learner's code did not prepare.

The grader (:mod:`course_lib.grading.grader`) starts the kernel with an IPython startup file that calls
:func:`install` before the first cell of the notebook runs. ``install``

1. reads (and deletes) a configuration file: a per-run secret nonce, the path of the result channel, and,
   for every check cell of the reference, its original source and its expected success line;
2. imports the course's check functions, ``torch.optim`` and the reference packages ``adabound`` and
   ``schedulefree`` (torch's own wrapping of an optimizer's ``step``, when the first one is built, is
   recognized as such);
3. snapshots what the checks rely on: the namespaces of those modules and of ``torch``, ``torch.Tensor``,
   ``builtins``, the code objects of their functions, the ``sys.modules`` entries, ``sys.stdout`` and
   ``sys.stderr``, IPython's exception hooks and input transformers;
4. opens the result channel (a file outside the notebook's folder) and puts
   ``__course_grading_check__`` into ``builtins``.

A restored check cell calls ``__course_grading_check__("<cell id>")``, which

* puts back everything in the snapshot that earlier cells changed (and names each change: *tampering*),
  resets IPython's custom exception handler, trace and profile functions;
* runs the cell's original source in the learner's namespace, with stdout captured;
* decides: the check passed when the source ran without an exception, nothing in the snapshot changed
  while it ran, and the last line the cell printed is the expected success line (earlier lines, a
  learner's debug prints, are shown but do not fail the check);
* writes the verdict to the result channel, authenticated with an HMAC keyed by the nonce. The grader
  scores a check only from an authenticated verdict, so printing a success line, forging nbval's
  output or skipping the check cell earns nothing.

Limits: the nonce lives in this process. Code written to read the grader's memory (``gc``, frames)
could find it; the guard defends against replacing, patching and hooking, and a teacher who suspects
more reads the notebook as run (``--keep``).
"""

from __future__ import annotations

import builtins
import os
import sys

ENTRY = "__course_grading_check__"
_GUARDED_PREFIXES = ("course_lib", "torch.optim", "adabound", "schedulefree")
_GUARDED_MODULES = ("torch", "torch.linalg", "torch.autograd", "torch.autograd.functional", "torch.nn.functional",
                    "torch.func", "torch.random", "math")
# set per request or per cell by IPython and ipykernel themselves
_VOLATILE_BUILTINS = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "__IPYTHON__", "__debug__",
                      "input", "raw_input", "help"}
_SKIPPED = ("course_lib.widgets", "course_lib.plotting", "course_lib.surface_plots", "course_lib.authoring",
            "course_lib.bench", "course_lib.grading.grader", "course_lib.grading.__main__",
            "course_lib.grading._nbval_plugin", "course_lib.grading._guard")


def install(config_path: str) -> None:
    """Read the configuration, snapshot the pristine state and put the entry point into ``builtins``."""
    import hashlib
    import hmac
    import io
    import json
    import os

    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    os.remove(config_path)
    nonce = bytes.fromhex(config["nonce"])
    cells = config["cells"]
    channel = os.open(config["channel"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _write_raw, _dumps, _new_mac, _sha256 = os.write, json.dumps, hmac.new, hashlib.sha256

    def send(record: dict) -> None:
        text = _dumps(record, sort_keys=True)
        mac = _new_mac(nonce, text.encode("utf-8"), _sha256).hexdigest()
        _write_raw(channel, (_dumps({"record": text, "mac": mac}) + "\n").encode("utf-8"))

    _import_references()
    snapshot = _Snapshot()
    _compile, _exec, _StringIO, _BaseException, _isinstance = compile, exec, io.StringIO, BaseException, isinstance
    _getframe, _settrace, _setprofile, _gettrace, _getprofile = (sys._getframe, sys.settrace, sys.setprofile,
                                                                  sys.gettrace, sys.getprofile)
    pristine_builtins = builtins
    counter = [0]

    def check(cell_id: str) -> None:
        __tracebackhide__ = True  # noqa: F841
        spec = cells.get(cell_id)
        if spec is None:
            raise RuntimeError(f"the grader knows no check cell {cell_id!r}")
        counter[0] += 1
        tampering = snapshot.restore()
        if _gettrace() is not None or _getprofile() is not None:
            tampering.append("a trace or profile function was set (sys.settrace / sys.setprofile)")
            _settrace(None)
            _setprofile(None)
        shell = snapshot.shell
        namespace = shell.user_ns if shell is not None else _getframe(1).f_globals
        if namespace.get("__builtins__") not in (pristine_builtins, vars(pristine_builtins)):
            tampering.append("the notebook's __builtins__ was replaced")
        namespace["__builtins__"] = pristine_builtins
        out, err = _Tee(snapshot.stdout, _StringIO()), _Tee(snapshot.stderr, _StringIO())
        sys.stdout, sys.stderr = out, err
        error = None
        try:
            _exec(_compile(spec["source"], f"<check cell {cell_id}>", "exec"), namespace)
        except _BaseException as exc:  # noqa: BLE001 (the verdict needs every way a check can end)
            error = exc
        finally:
            sys.stdout, sys.stderr = snapshot.stdout, snapshot.stderr
        during = snapshot.restore()
        if _gettrace() is not None or _getprofile() is not None:
            during.append("a trace or profile function was set (sys.settrace / sys.setprofile)")
            _settrace(None)
            _setprofile(None)
        printed = out.captured.getvalue()
        lines = [line for line in printed.splitlines() if line.strip()]
        expected = spec.get("expected")
        extra = lines[:-1] if lines and expected is not None and lines[-1].strip() == expected else lines
        problem = None
        if error is not None:
            problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        elif during:
            problem = "the learner's code changed the grading state while the check ran: " + "; ".join(during)
        elif expected is not None and (not lines or lines[-1].strip() != expected):
            problem = (f"the check ended without its success line {expected!r}"
                       + (f"; the last line printed was {lines[-1]!r}" if lines else "; nothing was printed"))
        send({"cell": cell_id, "seq": counter[0], "passed": problem is None, "problem": problem,
              "tampering": tampering + [f"while the check ran: {t}" for t in during],
              "extra_output": _first_lines(extra) if problem is None else "",
              "error_type": type(error).__name__ if error is not None else None})
        if error is not None:
            raise error
        if problem is not None:
            raise AssertionError(problem)

    setattr(builtins, ENTRY, check)
    snapshot.builtins[ENTRY] = check
    send({"ready": True, "pid": os.getpid()})


def _first_lines(lines: list, limit: int = 20) -> str:
    shown = [line[:300] for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"... ({len(lines) - limit} more lines)")
    return "\n".join(shown)


class _Tee:
    """A stream that writes to the pristine stream and keeps a copy."""

    def __init__(self, stream, captured):
        self.stream, self.captured = stream, captured

    def write(self, text):
        self.captured.write(text)
        return self.stream.write(text)

    def flush(self):
        return self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _import_references() -> None:
    """Import everything a check may use (not torch._dynamo, which building a first optimizer imports)."""
    import importlib
    import pkgutil

    import torch.optim  # noqa: F401

    import course_lib.grading  # noqa: F401
    for module in pkgutil.iter_modules(course_lib.grading.__path__):
        if module.name.endswith("_checks") or module.name in ("exercises", "optimizers", "_common"):
            importlib.import_module(f"course_lib.grading.{module.name}")
    import course_lib.optim._base  # noqa: F401
    for name in ("adabound", "schedulefree"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _torch_wrapper_of(new, old) -> bool:
    """Whether ``new`` is torch's own wrapper around ``old`` (functools.wraps, code in torch's files).

    torch wraps some functions itself at run time: an optimizer class's ``step`` when its first instance is
    built, ``torch.manual_seed`` and others when ``torch._dynamo`` is first imported.
    """
    import torch

    code = getattr(new, "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and code.co_filename.startswith(os.path.dirname(torch.__file__)))


class _Snapshot:
    """What the checks rely on, as it was before the first cell of the notebook ran."""

    def __init__(self):
        import torch

        self.modules = {name: module for name, module in sys.modules.items()
                        if module is not None and self._guarded(name)}
        self.namespaces = {name: dict(vars(module)) for name, module in self.modules.items()}
        self.builtins = dict(vars(builtins))
        classes = [torch.Tensor, getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase", None),
                   torch.optim.Optimizer, torch.nn.Module, torch.Generator]
        for name, module in self.modules.items():
            if name.startswith(_GUARDED_PREFIXES):
                classes += [v for v in vars(module).values()
                            if isinstance(v, type) and getattr(v, "__module__", None) == name]
        self.classes = {cls: dict(vars(cls)) for cls in dict.fromkeys(c for c in classes if c is not None)}
        self.codes = {}
        for name, namespace in self.namespaces.items():
            if name.startswith(_GUARDED_PREFIXES):
                for key, value in namespace.items():
                    if hasattr(value, "__code__"):
                        self.codes[(f"{name}.{key}", id(value))] = (value, value.__code__)
        for cls, namespace in self.classes.items():
            for key, value in namespace.items():
                if hasattr(value, "__code__"):
                    self.codes[(f"{cls.__module__}.{cls.__qualname__}.{key}", id(value))] = (value, value.__code__)
        self.stdout, self.stderr = sys.stdout, sys.stderr
        self.excepthook, self.displayhook = sys.excepthook, sys.displayhook
        try:
            from IPython import get_ipython
            self.shell = get_ipython()
        except ImportError:
            self.shell = None
        if self.shell is not None:
            shell = self.shell
            self.shell_attrs = dict(vars(shell))
            self.shell_classes = {cls: dict(vars(cls)) for cls in type(shell).__mro__
                                  if (cls.__module__ or "").startswith(("IPython", "ipykernel"))}
            self.shell_lists = {
                "IPython's input transformers (input_transformers_post)": shell.input_transformers_post,
                "IPython's input transformers (input_transformers_cleanup)":
                    shell.input_transformer_manager.cleanup_transforms,
                "IPython's input transformers (line_transforms)": shell.input_transformer_manager.line_transforms,
                "IPython's AST transformers (ast_transformers)": shell.ast_transformers,
            }
            self.shell_list_items = {key: list(value) for key, value in self.shell_lists.items()}

    @staticmethod
    def _guarded(name: str) -> bool:
        if name.startswith(_SKIPPED):
            return False
        return name in _GUARDED_MODULES or name.startswith(tuple(p + "." for p in _GUARDED_PREFIXES)) \
            or name in _GUARDED_PREFIXES

    def restore(self) -> list[str]:
        """Put back everything that changed; return a sentence for each change."""
        changes = []
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                changes.append(f"sys.modules[{name!r}] was replaced" if name in sys.modules
                               else f"sys.modules[{name!r}] was removed")
                sys.modules[name] = module
        for name, saved in self.namespaces.items():
            changes += _restore_namespace(self.modules[name], saved, name, is_class=False)
        changes += _restore_namespace(builtins, {k: v for k, v in self.builtins.items() if k not in _VOLATILE_BUILTINS},
                                      "builtins", is_class=False)
        for cls, saved in self.classes.items():
            changes += _restore_namespace(cls, saved, f"{cls.__module__}.{cls.__qualname__}", is_class=True)
        for (label, _), (function, code) in self.codes.items():
            if function.__code__ is not code:
                changes.append(f"the code of {label} was replaced")
                function.__code__ = code
        for stream, label in ((self.stdout, "stdout"), (self.stderr, "stderr")):
            if getattr(sys, label) is not stream:
                changes.append(f"sys.{label} was replaced")
                setattr(sys, label, stream)
        shell = self.shell
        if shell is not None:
            if shell.custom_exceptions:
                changes.append("IPython's custom exception handler was set (set_custom_exc)")
            shell.custom_exceptions = ()
            for cls, saved in self.shell_classes.items():
                changes += _restore_namespace(cls, saved, f"IPython's {cls.__name__}", is_class=True)
            current = vars(shell)
            for key, value in self.shell_attrs.items():
                if key in ("CustomTB", "InteractiveTB", "SyntaxTB", "showtraceback", "_showtraceback",
                           "run_cell", "run_code", "ex_run_cell", "showsyntaxerror", "displayhook",
                           "display_pub", "data_pub", "excepthook", "input_transformer_manager",
                           "input_transformers_post", "ast_transformers") and current.get(key) is not value:
                    changes.append(f"IPython's shell.{key} was replaced")
                    current[key] = value
            for key in [k for k in current if k not in self.shell_attrs and callable(getattr(type(shell), k, None))]:
                changes.append(f"IPython's shell.{key} was overridden")
                del current[key]
            for label, items in self.shell_lists.items():
                if list(items) != self.shell_list_items[label]:
                    changes.append(f"{label} were changed")
                    items[:] = self.shell_list_items[label]
        return changes


def _restore_namespace(owner, saved: dict, label: str, *, is_class: bool) -> list[str]:
    changes = []
    current = vars(owner)
    for key, value in saved.items():
        if key in ("__dict__", "__weakref__", "__doc__"):
            continue
        if key not in current:
            changes.append(f"{label}.{key} was deleted")
        elif current[key] is not value:
            if _torch_wrapper_of(current[key], value):
                saved[key] = current[key]  # torch's own wrapping (optimizer steps, torch._dynamo's disable)
                continue
            changes.append(f"{label}.{key} was replaced")
        else:
            continue
        try:
            setattr(owner, key, value) if is_class or not isinstance(current, dict) else current.__setitem__(key, value)
        except (TypeError, AttributeError):
            pass
    if is_class:
        for key in [k for k in current if k not in saved]:
            if key in ("__dict__", "__weakref__", "_abc_impl"):
                continue
            inherited = next((vars(base)[key] for base in owner.__mro__[1:] if key in vars(base)), None)
            if inherited is not None and _torch_wrapper_of(current[key], inherited):
                saved[key] = current[key]  # torch.optim wrapping an inherited step when the first instance is built
                continue
            changes.append(f"{label}.{key} was added")
            try:
                delattr(owner, key)
            except (TypeError, AttributeError):
                pass
    return changes
