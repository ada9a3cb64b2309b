r"""Drive any optimizer over a 2-D surface and record where it goes.

* :func:`run_trajectory` runs one start: the parameter is one tensor of shape ``(2,)``.
* :func:`run_batch` runs ``B`` starts as **one** vectorized run: the parameter is one
  tensor of shape ``(B, 2)`` and the loss is the *sum* of the per-row values, so row
  :math:`i`'s gradient is :math:`\nabla f(p_i)` alone. For every optimizer that acts
  coordinate by coordinate (SGD with momentum or Nesterov, Adagrad, Adadelta, RMSprop,
  Adam and its family, Adamax, NAdam, AdaBound) row :math:`i` is then exactly the run
  from start :math:`i` (tested in float64). Optimizers that mix coordinates of a tensor
  (Adafactor's factored scale and update clipping, L-BFGS, Shampoo, Muon) are not
  separable: for them use :func:`run_trajectory` per start.

The optimizer is a class with hyperparameters (``run_trajectory(Adam, "rosenbrock",
(-1, 2), 200, lr=0.05)``), any factory ``factory(params, **hparams)`` (a
``functools.partial`` or a lambda), or the name of a :mod:`course_lib.optim` class.
Gradients come from the surface's closed form (:meth:`Surface.gradient`), or from
autograd for a plain function of ``(..., 2)`` points.

**Divergence.** A row diverges at step :math:`k` when its point or its loss after step
:math:`k` is not finite, or the point leaves the box of half-width ``escape_radius``
(default :math:`10^6`) around the centre of the surface's bounds. From then on that row is
*frozen*: in a batch its gradient is set to zero and its point is reset to its last finite
point after every step, and in the record ``points[k:]`` and ``losses[k:]`` **repeat the
last finite point and loss** (so plots and basin maps never meet a NaN). ``diverged_at`` is
``k`` (``None`` in a :class:`Trajectory`, ``-1`` in a :class:`TrajectoryBatch` when the row
never diverged). One row's divergence never touches another row. A run stops early once
every row has diverged.

**Speed.** Per step the loop does only the gradient, the optimizer's step, and (in a batch)
the freezing; losses are evaluated for all recorded points at once at the end. On one
core of the course's 2-core CPU, ``run_batch`` of 10,000 starts x 200 steps with
:class:`course_lib.optim.Adam` takes about 0.15-0.2 s (``python -m course_lib.bench --suite
trajectories``), and a 200-step :func:`run_trajectory` about 20 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .surfaces import Surface, get_surface

__all__ = ["Trajectory", "TrajectoryBatch", "Basins", "run_trajectory", "run_batch", "basins", "grid_points",
           "make_optimizer", "ESCAPE_RADIUS"]

ESCAPE_RADIUS = 1e6


@dataclass
class Trajectory:
    """One run: ``points`` ``(steps+1, 2)`` (``points[0]`` is the start), ``losses`` ``(steps+1,)``, ``diverged_at``."""

    points: torch.Tensor
    losses: torch.Tensor
    diverged_at: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def final_point(self) -> torch.Tensor:
        return self.points[-1]


@dataclass
class TrajectoryBatch:
    """``B`` runs: ``points`` ``(B, steps+1, 2)``, ``losses`` ``(B, steps+1)``, ``diverged_at`` ``(B,)`` (-1: never).

    ``batch[i]`` is row ``i`` as a :class:`Trajectory`.
    """

    points: torch.Tensor
    losses: torch.Tensor
    diverged_at: torch.Tensor
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> Trajectory:
        k = int(self.diverged_at[i])
        return Trajectory(self.points[i], self.losses[i], None if k < 0 else k, dict(self.info, row=i))

    @property
    def diverged(self) -> torch.Tensor:
        return self.diverged_at >= 0

    @property
    def final_points(self) -> torch.Tensor:
        return self.points[:, -1]

    def nearest_minimum(self, minima=None, tol: float = 1e-2) -> torch.Tensor:
        """For each row, the index of the listed minimum its final point lies within ``tol`` of, else -1.

        Diverged rows get -1. ``minima`` defaults to the surface's ``.minima``: what basin maps colour by.
        """
        minima = self.info["surface"].minima if minima is None else minima
        final = self.final_points
        if len(minima) == 0:
            return torch.full((len(self),), -1, dtype=torch.long, device=final.device)
        centres = torch.as_tensor(minima, dtype=final.dtype, device=final.device)
        distance, index = torch.cdist(final, centres).min(dim=1)
        return torch.where((distance <= tol) & ~self.diverged.to(final.device), index, -1)


def make_optimizer(optimizer, params, **hparams) -> torch.optim.Optimizer:
    """``optimizer(params, **hparams)``; ``optimizer`` may be a class, a factory or a :mod:`course_lib.optim` name."""
    if isinstance(optimizer, str):
        from . import optim
        try:
            optimizer = getattr(optim, optimizer)
        except AttributeError:
            raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(optim.__all__)}") from None
    return optimizer(params, **hparams)


def _gradient_function(surface):
    if isinstance(surface, Surface):
        return surface, surface.gradient

    def autograd_gradient(xy):
        with torch.enable_grad():
            xy = xy.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(surface(xy).sum(), xy)
        return grad

    return surface, autograd_gradient


def _starts_tensor(starts, device, dtype) -> torch.Tensor:
    if isinstance(starts, torch.Tensor):
        starts = starts.detach().to(device=device, dtype=dtype or (starts.dtype if starts.is_floating_point()
                                                                   else torch.float64))
    else:  # plain numbers: float64, except on Apple's MPS, which has no float64
        default = torch.float32 if device is not None and torch.device(device).type == "mps" else torch.float64
        starts = torch.as_tensor(starts, dtype=dtype or default, device=device)
    if starts.shape[-1:] != (2,):
        raise ValueError(f"starting points must have shape (..., 2), got {tuple(starts.shape)}")
    if not torch.isfinite(starts).all():
        raise ValueError("starting points must be finite")
    return starts.clone()


@torch.no_grad()
def _drive(optimizer, surface, start: torch.Tensor, steps: int, escape_radius: float, hparams: dict):
    """The loop both runners share; ``start`` is ``(2,)`` or ``(B, 2)``. Returns points, losses, diverged_at.

    A batch checks every step which rows are still finite and inside the box and freezes the
    others. A single run has no other rows to protect: it only looks every 16 steps (to stop
    early) and finds its divergence step afterwards, which gives the same record with less
    Python per step. The losses of all recorded points are evaluated at the end in one call.
    """
    function, gradient = _gradient_function(surface)
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    param = start.clone()
    opt = make_optimizer(optimizer, [param], **hparams)
    centre = torch.as_tensor(getattr(surface, "center", (0.0, 0.0)), dtype=param.dtype, device=param.device)
    points = param.new_empty((steps + 1, *param.shape))
    points[0] = param
    freeze = param.dim() > 1
    alive = torch.ones(param.shape[:-1], dtype=torch.bool, device=param.device)
    alive_steps = torch.zeros(param.shape[:-1], dtype=torch.long, device=param.device)
    zero = param.new_zeros(())

    def inside(xy):  # False for NaN and inf too
        return ((xy - centre).abs() <= escape_radius).all(-1)

    def set_gradient():
        param.grad = torch.where(alive[..., None], gradient(param), zero) if freeze else gradient(param)

    def closure():  # only optimizers that re-evaluate the loss (L-BFGS) get it
        set_gradient()
        return function(param).sum()

    needs_closure = isinstance(opt, torch.optim.LBFGS)
    last = steps
    for k in range(1, steps + 1):
        set_gradient()
        opt.step(closure) if needs_closure else opt.step()
        if freeze:
            alive &= inside(param)
            param.copy_(torch.where(alive[..., None], param, points[k - 1]))  # a frozen row stays where it was
            alive_steps += alive
        points[k] = param
        if k % 16 == 0 and not (alive.any() if freeze else inside(param)):  # all gone: stop, fill the tail below
            last = k
            break
    losses = function(points[:last + 1])
    # a row diverged at the first step whose point left the box or whose loss is not finite
    bad = ~(torch.isfinite(losses) & inside(points[:last + 1]))
    diverged_at = torch.where(bad.any(0), bad.int().argmax(0), steps + 1)
    if freeze:
        diverged_at = torch.minimum(diverged_at, torch.where(alive, steps + 1, alive_steps + 1))
    diverged = diverged_at <= steps
    diverged_at = torch.where(diverged, diverged_at, -1)
    # from then on repeat the last finite point and loss
    t = torch.arange(steps + 1, device=param.device).view(-1, *([1] * (param.dim() - 1)))
    source = torch.where(diverged & (t >= diverged_at), (diverged_at - 1).clamp(min=0), t.clamp(max=last))
    points = points.gather(0, source[..., None].expand(-1, *param.shape))
    losses = losses.gather(0, source.clamp(max=last))
    return points, losses, diverged_at


def run_trajectory(optimizer_cls, surface, start, steps: int = 100, *, escape_radius: float = ESCAPE_RADIUS,
                   device=None, dtype=None, **hparams) -> Trajectory:
    """Run ``optimizer_cls(params, **hparams)`` for ``steps`` steps on ``surface`` from ``start`` (one point).

    ``surface`` is a :class:`Surface`, its name, or any function of ``(..., 2)`` points.
    ``start`` is two numbers or a ``(2,)`` tensor (its device and dtype are kept unless
    ``device``/``dtype`` say otherwise; plain numbers run in float64).
    """
    start = _starts_tensor(start, device, dtype)
    if start.shape != (2,):
        raise ValueError(f"run_trajectory takes one point (2,), got {tuple(start.shape)}; see run_batch")
    surface = get_surface(surface) if isinstance(surface, str) else surface
    points, losses, diverged_at = _drive(optimizer_cls, surface, start, steps, escape_radius, hparams)
    k = int(diverged_at)
    return Trajectory(points, losses, None if k < 0 else k, dict(surface=surface, hparams=hparams))


def run_batch(optimizer_cls, surface, starts, steps: int = 100, *, escape_radius: float = ESCAPE_RADIUS,
              device=None, dtype=None, **hparams) -> TrajectoryBatch:
    """Run ``B`` starts ``(B, 2)`` as one parameter tensor of shape ``(B, 2)``; see the module's docstring."""
    starts = _starts_tensor(starts, device, dtype)
    if starts.dim() != 2:
        raise ValueError(f"run_batch takes starting points (B, 2), got {tuple(starts.shape)}")
    surface = get_surface(surface) if isinstance(surface, str) else surface
    points, losses, diverged_at = _drive(optimizer_cls, surface, starts, steps, escape_radius, hparams)
    return TrajectoryBatch(points.transpose(0, 1), losses.transpose(0, 1), diverged_at,
                           dict(surface=surface, hparams=hparams))


def grid_points(bounds, resolution: int = 50, *, device=None, dtype=torch.float64):
    """``(xs, ys, points)``: a ``resolution x resolution`` grid over ``bounds``; ``points[i, j] = (xs[j], ys[i])``."""
    (x0, x1), (y0, y1) = bounds
    xs = torch.linspace(x0, x1, resolution, dtype=dtype, device=device)
    ys = torch.linspace(y0, y1, resolution, dtype=dtype, device=device)
    return xs, ys, torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


@dataclass
class Basins:
    """Which minimum each start of a grid reaches: ``labels[i, j]`` for the start ``(xs[j], ys[i])``.

    A label is an index into ``surface.minima``, or -1 when the run ended near none of them
    (still on its way, stuck at a saddle) and ``diverged`` marks runs that diverged.
    """

    xs: torch.Tensor
    ys: torch.Tensor
    labels: torch.Tensor
    diverged: torch.Tensor
    batch: TrajectoryBatch

    def fractions(self) -> dict[int, float]:
        """The share of starts per label (-1: none), e.g. ``{0: 0.27, 1: 0.24, ...}``."""
        values, counts = torch.unique(self.labels, return_counts=True)
        return {int(v): float(c) / self.labels.numel() for v, c in zip(values, counts)}


def basins(optimizer_cls, surface, steps: int = 300, *, resolution: int = 60, bounds=None, tol: float = 1e-2,
           device=None, **hparams) -> Basins:
    """The basins of attraction of ``surface``'s minima for one optimizer: :func:`run_batch` from every grid point."""
    surface = get_surface(surface) if isinstance(surface, str) else surface
    xs, ys, grid = grid_points(bounds or surface.bounds, resolution, device=device)
    batch = run_batch(optimizer_cls, surface, grid.reshape(-1, 2), steps, **hparams)
    shape = grid.shape[:2]
    return Basins(xs, ys, batch.nearest_minimum(tol=tol).reshape(shape), batch.diverged.reshape(shape), batch)
