"""What every optimizer of the course shares, so that each optimizer's own file
holds only its mathematics.

A course optimizer subclasses :class:`torch.optim.Optimizer` (so schedulers,
``state_dict``, ``zero_grad`` and ``add_param_group`` work unchanged) and writes

* ``init_state(param, state, group)``: fill a parameter's empty state dict;
* ``update(param, grad, state, group)``: **the readable rule**, one tensor at a time;
* optionally ``update_foreach(group, params, grads, states)``: the same rule on all
  tensors of a group at once with ``torch._foreach_*`` kernels (fewer Python
  round-trips and kernel launches); tested equal to ``update``.

``step`` does the rest: it evaluates the closure, skips parameters whose
``.grad`` is ``None``, creates state lazily and picks the path: ``foreach=True``
or ``False`` is obeyed; ``foreach=None`` (the default) means what it means in
``torch.optim``: the multi-tensor path when every tensor is on a CUDA device.
"""

from __future__ import annotations

import torch

__all__ = ["Optimizer", "check", "check_adam_hyperparameters", "new_step_counter"]


def check(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``: torch.optim's hyperparameter checks."""
    if not condition:
        raise ValueError(message)


def check_adam_hyperparameters(lr, eps, betas) -> None:
    """The checks every Adam-like optimizer starts with, in torch's order and words."""
    check(0.0 <= lr, f"Invalid learning rate: {lr}")
    check(0.0 <= eps, f"Invalid epsilon value: {eps}")
    check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")


def new_step_counter() -> torch.Tensor:
    """A fresh ``state["step"]``: a 0-dim CPU tensor, as torch.optim keeps it (so state dicts move both ways).

    Its dtype follows torch's rule: float64 when that is the default dtype, float32 otherwise.
    """
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.tensor(0.0, dtype=dtype)


class Optimizer(torch.optim.Optimizer):
    """Base class of the course's optimizers: the loop, the closure and the lazy state."""

    #: state entries kept as 0-dim tensors, which an old checkpoint may hold as plain numbers
    scalar_state_keys = ("step",)

    def __setstate__(self, state):
        """Load state dicts that lack newer entries, as torch.optim does.

        A group key the state dict lacks takes this optimizer's default; a plain-number
        ``step`` (older torch checkpoints, or the ``adabound`` package) becomes a tensor.
        """
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in getattr(self, "defaults", {}).items():
                group.setdefault(key, value)
        for param_state in self.state.values():
            for key in self.scalar_state_keys:
                if key in param_state and not torch.is_tensor(param_state[key]):
                    param_state[key] = new_step_counter().fill_(float(param_state[key]))

    def init_state(self, param: torch.Tensor, state: dict, group: dict) -> None:
        """Fill ``state`` (empty) for ``param``. Optimizers with no state leave it empty."""

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        """Apply the update rule to one tensor, in place. Subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def update_foreach(self, group: dict, params: list, grads: list, states: list) -> None:
        """The multi-tensor path; by default the readable rule tensor by tensor."""
        for param, grad, state in zip(params, grads, states):
            self.update(param, grad, state, group)

    def use_foreach(self, group: dict, params: list) -> bool:
        foreach = group.get("foreach")
        if foreach is None:  # torch.optim's default: multi-tensor kernels on CUDA only
            return all(p.device.type == "cuda" for p in params)
        return bool(foreach)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; with a ``closure`` (re-evaluates the loss), return its loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, states = [], [], []
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[param]
                if len(state) == 0:
                    self.init_state(param, state, group)
                params.append(param)
                grads.append(param.grad)
                states.append(state)
            if not params:
                continue
            if self.use_foreach(group, params):
                self.update_foreach(group, params, grads, states)
            else:
                for param, grad, state in zip(params, grads, states):
                    self.update(param, grad, state, group)
        return loss
