r"""What every optimizer of the course shares, so that each optimizer's own file
holds only its mathematics.

A course optimizer subclasses :class:`torch.optim.Optimizer` (so schedulers,
``state_dict``, ``zero_grad`` and ``add_param_group`` work unchanged) and writes

* ``init_state(param, state, group)``: fill a parameter's empty state dict;
* ``update(param, grad, state, group)``: **the readable rule**, one tensor at a time;
* optionally ``update_foreach(group, params, grads, states)``: the same rule on all
  tensors of a group at once with ``torch._foreach_*`` kernels (fewer Python
  round-trips and kernel launches); tested equal to ``update``;
* optionally ``update_differentiable(param, grad, state, group)``: the rule written
  with out-of-place operations only, so that autograd can differentiate through it
  (``differentiable=True``).

``step`` does the rest: it evaluates the closure, skips parameters whose
``.grad`` is ``None``, creates state lazily and picks the path:

* ``differentiable=True``: the step runs with autograd on, through ``update_differentiable``.
  If the parameters are non-leaf tensors that depend on earlier quantities (a tensor
  learning rate that requires grad, the initial weights), the new parameters depend on
  them too, so that a *hypergradient* :math:`\partial f(\theta_k) / \partial \eta` is one
  ``backward()`` away;
* ``fused=True`` (where torch.optim offers it): the multi-tensor path (the course writes no
  custom kernels); ``foreach=True`` or ``False`` is obeyed; ``foreach=None`` (the default)
  means what it means in ``torch.optim``: the multi-tensor path when every tensor is on a
  CUDA device.

The keywords ``foreach``, ``maximize``, ``capturable``, ``differentiable`` and ``fused``
mean what they mean in torch.optim. ``capturable=True`` (CUDA-graph capture) is refused:
the course's steps read scalars such as the step count on the host, which a captured
graph cannot do.
"""

from __future__ import annotations

import torch

__all__ = ["Optimizer", "check", "check_adam_hyperparameters", "check_lr", "check_flags", "new_step_counter",
           "to_scalar", "value_of", "real", "store", "FLAG_FALLBACKS"]

#: what torch.optim's ``__setstate__`` gives a param group that lacks one of these keys
FLAG_FALLBACKS = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": None}


def check(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``: torch.optim's hyperparameter checks."""
    if not condition:
        raise ValueError(message)


def check_lr(lr, *, foreach=None, capturable=False, refuse_tensor_foreach=False) -> None:
    """torch.optim's checks of a learning rate, in its order and words.

    A tensor learning rate must hold one element; Adam-like optimizers (``refuse_tensor_foreach``)
    also refuse it with ``foreach=True``, as torch does (its multi-tensor kernels take numbers)."""
    if isinstance(lr, torch.Tensor):
        if refuse_tensor_foreach and foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
    check(0.0 <= lr, f"Invalid learning rate: {lr}")


def check_adam_hyperparameters(lr, eps, betas) -> None:
    """The checks every Adam-like optimizer starts with, in torch's order and words."""
    check_lr(lr)
    check(0.0 <= eps, f"Invalid epsilon value: {eps}")
    check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")


def check_flags(*, foreach=None, capturable=False, differentiable=False, fused=None) -> None:
    """The implementation keywords: ``capturable=True`` is refused, ``fused`` excludes the other two."""
    if capturable:
        raise ValueError("capturable=True is not supported: course_lib.optim does not support CUDA graphs "
                         "(its steps read scalars such as the step count on the host, which graph capture "
                         "forbids); use torch.optim for captured steps")
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def check_fused_param(param: torch.Tensor) -> None:
    """torch's condition for ``fused=True``: floating-point parameters on a device with fused kernels."""
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    supported = _get_fused_kernels_supported_devices()
    if not (param.device.type in supported and torch.is_floating_point(param)):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                           f"supported devices: {supported} but {param.dtype} and {param.device.type}")


def to_scalar(x):
    """A one-element tensor as a 0-dim tensor (torch.optim's ``_to_scalar``); numbers unchanged."""
    if isinstance(x, torch.Tensor) and x.dim() != 0:
        return x.squeeze()
    return x


def value_of(x):
    """A hyperparameter as a Python number (a tensor's value, as torch's multi-tensor paths read it)."""
    return x.item() if isinstance(x, torch.Tensor) else x


def real(tensor: torch.Tensor) -> torch.Tensor:
    """A complex tensor as a real view (real and imaginary parts are separate coordinates, as in torch)."""
    return torch.view_as_real(tensor) if torch.is_complex(tensor) else tensor


def store(state: dict, key: str, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``state[key] = value`` (a real view is turned back into a complex tensor like ``like``); returns ``value``.

    The differentiable rules compute new state out of place and rebind it, so that autograd keeps the
    old values it needs."""
    state[key] = torch.view_as_complex(value) if torch.is_complex(like) else value
    return value


def new_step_counter(fused: bool = False, device=None) -> torch.Tensor:
    """A fresh ``state["step"]``: a 0-dim tensor, as torch.optim keeps it (so state dicts move both ways).

    Its dtype follows torch's rule: float64 when that is the default dtype, float32 otherwise; on the
    CPU. With ``fused=True`` torch keeps it in float32 on the parameter's device; so do we.
    """
    if fused:
        return torch.zeros((), dtype=torch.float32, device=device)
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.tensor(0.0, dtype=dtype)


class Optimizer(torch.optim.Optimizer):
    """Base class of the course's optimizers: the loop, the closure and the lazy state."""

    #: state entries kept as 0-dim tensors, which an old checkpoint may hold as plain numbers
    scalar_state_keys = ("step",)
    #: the group keys a state dict may lack, and the value each then takes (torch's ``__setstate__``
    #: fallbacks: fixed values, not this optimizer's constructor arguments). ``None``: the
    #: constructor's defaults (for optimizers torch.optim does not have).
    group_fallbacks: dict | None = None
    #: whether ``update`` takes sparse gradients; otherwise ``sparse_message`` is raised
    supports_sparse = False
    sparse_message: str | None = None

    def __setstate__(self, state):
        """Load state dicts that lack newer entries, as torch.optim does.

        A group key the state dict lacks takes :attr:`group_fallbacks` (no key is added that
        the optimizer does not have); a plain-number ``step`` (older torch checkpoints, or the
        ``adabound`` package) becomes a tensor.
        """
        defaults = state.get("defaults", getattr(self, "defaults", {}))
        had_differentiable = "differentiable" in defaults  # torch's __setstate__ adds it to the defaults
        super().__setstate__(state)
        fallbacks = self.group_fallbacks
        if fallbacks is None:
            fallbacks = {key: value for key, value in self.defaults.items()
                         if key != "differentiable" or had_differentiable}
        for group in self.param_groups:
            for key, value in fallbacks.items():
                group.setdefault(key, value)
            for param in group["params"]:
                param_state = self.state.get(param, {})
                for key in self.scalar_state_keys:
                    if key in param_state and not torch.is_tensor(param_state[key]):
                        fused = bool(group.get("fused"))
                        counter = new_step_counter(fused, param.device)
                        param_state[key] = counter.fill_(float(param_state[key]))

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        """Fill ``state`` (empty) for ``param``. Optimizers with no state leave it empty."""

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        """Apply the update rule to one tensor, in place. Subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def update_differentiable(self, param, grad, state, group) -> None:
        """The rule with autograd on (``differentiable=True``); by default ``update`` itself."""
        self.update(param, grad, state, group)

    def update_foreach(self, group: dict, params: list, grads: list, states: list) -> None:
        """The multi-tensor path; by default the readable rule tensor by tensor."""
        for param, grad, state in zip(params, grads, states):
            self.update(param, grad, state, group)

    def use_foreach(self, group: dict, params: list) -> bool:
        if group.get("differentiable"):  # torch's _foreach kernels have no autograd
            return False
        if group.get("fused"):  # the course's "fused" path is its multi-tensor path
            return True
        foreach = group.get("foreach")
        if foreach is None:  # torch.optim's default: multi-tensor kernels on CUDA only
            return all(p.device.type == "cuda" for p in params)
        return bool(foreach)

    def check_param(self, param: torch.Tensor, group: dict) -> None:
        """Called once per parameter before its state is made (``fused`` checks the dtype)."""
        if group.get("fused"):
            check_fused_param(param)

    def step(self, closure=None):
        """Perform one optimization step; with a ``closure`` (re-evaluates the loss), return its loss.

        Autograd is off during the update, except with ``differentiable=True``.
        """
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            return self._step(closure)

    def _step(self, closure):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        all_state = self.state
        for group in self.param_groups:
            params, grads, states = [], [], []
            has_sparse, fresh = False, []
            differentiable = bool(group.get("differentiable"))
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    if not self.supports_sparse:
                        raise RuntimeError(self.sparse_message
                                           or f"{type(self).__name__} does not support sparse gradients")
                    has_sparse = True
                state = all_state.get(param)
                if not state:  # lazy initialization (an empty state may also come from a state dict)
                    state = all_state[param] = {} if state is None else state
                    self.check_param(param, group)
                    self.init_state(param, state, group)
                    fresh.append(param)
                if differentiable and torch.is_tensor(state.get("step")) and state["step"].requires_grad:
                    raise RuntimeError("`requires_grad` is not supported for `step` in differentiable mode")
                params.append(param)
                grads.append(grad)
                states.append(state)
            if not params:
                continue
            if differentiable:
                for param, grad, state in zip(params, grads, states):
                    self.update_differentiable(param, grad, state, group)
            elif self.use_foreach(group, params) and not has_sparse:
                self.update_foreach(group, params, grads, states)
            else:
                for param, grad, state in zip(params, grads, states):
                    self.update(param, grad, state, group)
            for param in fresh:  # an optimizer without state (SGD without momentum) stores none, as torch
                if not all_state[param]:
                    del all_state[param]
        return loss
