r"""Two-dimensional test surfaces: where optimizers are watched at work.

A :class:`Surface` is a function :math:`f:\mathbb R^2\to\mathbb R` evaluated on a *batch*
of points: ``surface(xy)`` takes a tensor of shape ``(..., 2)`` (any device, any float
dtype) and returns the values, shape ``(...)``. Each surface knows its critical points
(``minima``, ``saddles``, ``maxima``), plot ``bounds``, a good ``default_start``, a one-line
``description``, its ``formula`` (LaTeX) and where it comes from (``reference``). Each
also has a closed-form :meth:`Surface.gradient` (cheaper than autograd when thousands of
starts run at once) and :meth:`Surface.hessian` (autograd on that gradient).

=================================  =============================================  ==========
name                               formula                                        kind
=================================  =============================================  ==========
quadratic                          :math:`\tfrac12(x^2 + 2y^2)`                   convex
ill_conditioned_quadratic          :math:`\tfrac12(x^2 + 25y^2)`                  convex
rotated_ill_conditioned_quadratic  the same, turned by 45 degrees                 convex
rosenbrock                         :math:`(1-x)^2 + 100(y-x^2)^2`                 valley
himmelblau                         :math:`(x^2+y-11)^2 + (x+y^2-7)^2`             multimodal
rastrigin                          :math:`20 + \sum_i x_i^2 - 10\cos 2\pi x_i`    multimodal
beale                              :math:`\sum_k (c_k - x + x y^k)^2`             valley
saddle                             :math:`x^2 - y^2`                              saddle
monkey_saddle                      :math:`x^3 - 3xy^2`                            saddle
quartic_saddle                     :math:`x^2/2 - y^2/2 + y^4/4`                  saddle
=================================  =============================================  ==========

A critical point (:math:`\nabla f = 0`) is a *minimum* when the Hessian is positive
definite, a *strict saddle* when the Hessian has a negative eigenvalue (gradient descent
escapes it from almost every start), and *degenerate* when the Hessian is singular: then
the Hessian alone cannot tell, and :func:`classify_point` looks at the function around the
point (the monkey saddle's Hessian is zero, yet it is a saddle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

__all__ = ["Surface", "SURFACES", "get_surface", "quadratic_surface", "hessian", "classify_point",
           "rastrigin_critical_points"]

Point = tuple[float, float]
Bounds = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, eq=False)
class Surface:
    r"""A 2-D function, its closed-form gradient, its critical points and how to plot it.

    ``function(x, y)`` and ``gradient_xy(x, y) -> (df/dx, df/dy)`` act elementwise on
    tensors of equal shape; ``surface(xy)`` and ``surface.gradient(xy)`` wrap them for
    points ``(..., 2)``, keeping their device and dtype (plain numbers become float64).

    The rest describes the landscape: ``bounds`` ``((xmin, xmax), (ymin, ymax))`` frame
    the interesting part; ``minima`` (the global one first), ``saddles`` and ``maxima``
    list the critical points inside them, with ``min_value`` the global minimum value
    (``None`` when unbounded below); ``default_start`` is a start that shows the surface's
    difficulty; ``kind`` is ``"convex"``, ``"valley"``, ``"multimodal"`` or ``"saddle"``;
    ``convex`` is ``True``/``False`` where known; ``bounded_below`` says whether a run may
    legitimately fly off to :math:`-\infty`; ``description``, ``formula`` (LaTeX) and
    ``reference`` say what it is and where it comes from.
    """

    name: str
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(repr=False)
    gradient_xy: Callable[[torch.Tensor, torch.Tensor], tuple] = field(repr=False)
    bounds: Bounds
    minima: tuple[Point, ...] = ()
    saddles: tuple[Point, ...] = ()
    maxima: tuple[Point, ...] = ()
    min_value: float | None = None
    default_start: Point = (0.0, 0.0)
    kind: str = ""
    convex: bool | None = None
    bounded_below: bool = True
    description: str = ""
    formula: str = ""
    reference: str = ""

    def __call__(self, xy) -> torch.Tensor:
        return self.function(*_as_points(xy).unbind(-1))

    def gradient(self, xy) -> torch.Tensor:
        """:math:`\\nabla f` at each point of ``(..., 2)``, in closed form; shape ``(..., 2)``."""
        xy = _as_points(xy)
        gx, gy = self.gradient_xy(*xy.unbind(-1))
        if not (isinstance(gx, torch.Tensor) and isinstance(gy, torch.Tensor) and gx.shape == gy.shape):
            gx, gy = (torch.as_tensor(g, dtype=xy.dtype, device=xy.device) for g in (gx, gy))
            gx, gy = torch.broadcast_tensors(gx, gy, xy[..., 0])[:2]
        return torch.stack((gx, gy), dim=-1)

    def hessian(self, xy) -> torch.Tensor:
        """The Hessian at each point of ``(..., 2)``, shape ``(..., 2, 2)`` (see :func:`hessian`)."""
        return hessian(self, xy)

    @property
    def center(self) -> Point:
        (x0, x1), (y0, y1) = self.bounds
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def critical_points(self) -> list[tuple[Point, str]]:
        """Every listed point with what it is: ``"minimum"``, ``"saddle"`` or ``"maximum"``."""
        return ([(p, "minimum") for p in self.minima] + [(p, "saddle") for p in self.saddles]
                + [(p, "maximum") for p in self.maxima])


def _as_points(xy) -> torch.Tensor:
    if not isinstance(xy, torch.Tensor):
        xy = torch.as_tensor(xy, dtype=torch.float64)
    if xy.shape[-1:] != (2,):
        raise ValueError(f"a surface takes points of shape (..., 2), got {tuple(xy.shape)}")
    return xy


def hessian(surface: Surface, xy) -> torch.Tensor:
    r"""The Hessian :math:`\nabla^2 f` at each point of ``(..., 2)``: two backward passes through the gradient.

    Rows of a batch do not interact, so row :math:`i` of every Hessian is the gradient of
    :math:`\sum_{\text{points}} \partial_i f` at once. Integer input is computed in float64.
    """
    xy = _as_points(xy)
    xy = (xy if xy.is_floating_point() else xy.double()).detach().requires_grad_(True)
    with torch.enable_grad():
        grad = surface.gradient(xy)
        rows = [torch.autograd.grad(grad[..., i].sum(), xy, retain_graph=i == 0, allow_unused=True)[0]
                for i in range(2)]
    rows = [torch.zeros_like(xy) if row is None else row for row in rows]
    return torch.stack(rows, dim=-2).detach()


def classify_point(surface: Surface, point, *, tol: float = 1e-6, radius: float = 1e-2) -> str:
    """What ``point`` is for ``surface``: ``"not critical"``, ``"minimum"``, ``"maximum"``, ``"strict saddle"``,
    or, when the Hessian is singular, ``"degenerate minimum"``/``"degenerate saddle"``/``"degenerate maximum"``,
    decided by comparing ``f`` on a small circle (``radius``) with ``f(point)``.
    """
    p = _as_points(torch.as_tensor(point, dtype=torch.float64))
    if surface.gradient(p).norm() > tol * max(1.0, float(surface(p).abs())):
        return "not critical"
    eigenvalues = torch.linalg.eigvalsh(surface.hessian(p))
    scale = max(1.0, float(eigenvalues.abs().max()))
    low, high = float(eigenvalues[0]) / scale, float(eigenvalues[-1]) / scale
    if low < -tol and high > tol:
        return "strict saddle"
    if low > tol:
        return "minimum"
    if high < -tol:
        return "maximum"
    angles = torch.linspace(0, 2 * math.pi, 361, dtype=torch.float64)[:-1]
    ring = p + radius * torch.stack([angles.cos(), angles.sin()], dim=-1)
    change = surface(ring) - surface(p)
    below, above = bool((change < 0).any()), bool((change > 0).any())
    if low < -tol:  # a direction of negative curvature: a strict saddle unless f falls all around
        return "strict saddle" if above else "degenerate maximum"
    if below and above:
        return "degenerate saddle"
    return "degenerate maximum" if below else "degenerate minimum"


# --------------------------------------------------------------------------- quadratics

def quadratic_surface(eigenvalues=(1.0, 25.0), angle: float = 0.0, *, name: str = "quadratic",
                      bounds: Bounds = ((-3.0, 3.0), (-3.0, 3.0)), default_start: Point = (-2.5, 1.5),
                      description: str = "") -> Surface:
    r""":math:`f(p) = \tfrac12 p^\top A p`, :math:`A = R_\theta\,\mathrm{diag}(\lambda_1, \lambda_2)\,R_\theta^\top`.

    ``angle`` (degrees) turns the axes of the ellipses: an axis-aligned quadratic is
    solved by any per-coordinate method (Adagrad, RMSprop, Adam rescale each axis), a
    turned one is not. The condition number is :math:`\kappa = \lambda_{\max}/\lambda_{\min}`.
    """
    lam1, lam2 = (float(v) for v in eigenvalues)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    a, b, d = lam1 * c * c + lam2 * s * s, (lam1 - lam2) * c * s, lam1 * s * s + lam2 * c * c  # A = [[a, b], [b, d]]
    kappa = max(lam1, lam2) / min(lam1, lam2) if min(lam1, lam2) > 0 else math.inf
    convex = min(lam1, lam2) >= 0
    return Surface(
        name, lambda x, y: 0.5 * (a * x * x + 2 * b * x * y + d * y * y), lambda x, y: (a * x + b * y, b * x + d * y),
        bounds, minima=((0.0, 0.0),) if convex else (), saddles=() if convex else ((0.0, 0.0),),
        min_value=0.0 if convex else None, default_start=default_start, kind="convex" if convex else "saddle",
        convex=convex, bounded_below=convex,
        description=description or f"quadratic bowl, eigenvalues {lam1:g} and {lam2:g} (kappa = {kappa:g}), "
                                   f"axes turned by {angle:g} degrees",
        formula=r"\tfrac12 p^\top A p", reference="the model of every smooth minimum (Taylor's theorem)")


# --------------------------------------------------------------------------- rastrigin's many critical points

def _rastrigin_1d(t):
    return t * t - 10 * torch.cos(2 * math.pi * t) + 10


def _rastrigin_1d_grad(t):
    return 2 * t + 20 * math.pi * torch.sin(2 * math.pi * t)


def rastrigin_critical_points(limit: float = 2.5) -> tuple[list[float], list[float]]:
    r"""The 1-D critical points of :math:`h(t) = t^2 - 10\cos 2\pi t + 10` in ``(-limit, limit)``: (minima, maxima).

    Rastrigin's function is :math:`h(x) + h(y)`, so its minima pair two 1-D minima, its
    maxima two 1-D maxima, and its saddles one of each. Newton's method from every
    half-integer finds them (near the integers: minima; near the half-integers: maxima).
    """
    seeds = torch.arange(-math.ceil(2 * limit), math.ceil(2 * limit) + 1, dtype=torch.float64) / 2
    t = seeds.clone()
    for _ in range(50):
        t = t - _rastrigin_1d_grad(t) / (2 + 40 * math.pi ** 2 * torch.cos(2 * math.pi * t))
    keep = t.abs() < limit
    is_min = (torch.cos(2 * math.pi * t) > 0) & keep
    return sorted(t[is_min].tolist(), key=abs), sorted(t[~is_min & keep].tolist(), key=abs)


_R_MIN, _R_MAX = rastrigin_critical_points(2.5)


# --------------------------------------------------------------------------- the catalogue

def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _rosenbrock_grad(x, y):
    return -2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)


def _himmelblau(x, y):
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2


def _himmelblau_grad(x, y):
    a, b = x * x + y - 11, x + y * y - 7
    return 4 * x * a + 2 * b, 2 * a + 4 * y * b


def _beale_terms(x, y):
    return 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y ** 3


def _beale(x, y):
    t1, t2, t3 = _beale_terms(x, y)
    return t1 * t1 + t2 * t2 + t3 * t3


def _beale_grad(x, y):
    t1, t2, t3 = _beale_terms(x, y)
    return (2 * t1 * (y - 1) + 2 * t2 * (y * y - 1) + 2 * t3 * (y ** 3 - 1),
            2 * x * (t1 + 2 * y * t2 + 3 * y * y * t3))


_CATALOGUE = [
    quadratic_surface((1.0, 2.0), 0.0, name="quadratic", default_start=(-2.5, 2.0),
                      description="a round-ish bowl (kappa = 2): every method should shine here"),
    quadratic_surface((1.0, 25.0), 0.0, name="ill_conditioned_quadratic", bounds=((-3.0, 3.0), (-2.0, 2.0)),
                      default_start=(-2.5, 1.0),
                      description="a long, narrow, axis-aligned valley (kappa = 25): GD zig-zags across it, "
                                  "per-coordinate methods rescale the axes"),
    quadratic_surface((1.0, 25.0), 45.0, name="rotated_ill_conditioned_quadratic", default_start=(-2.0, 0.5),
                      description="the same valley (kappa = 25) turned by 45 degrees: per-coordinate "
                                  "rescaling no longer fits its axes"),
    Surface("rosenbrock", _rosenbrock, _rosenbrock_grad, ((-2.0, 2.0), (-1.0, 3.0)), minima=((1.0, 1.0),),
            min_value=0.0, default_start=(-1.5, 2.5), kind="valley", convex=False,
            description="a curved, flat-bottomed banana valley: finding it is easy, following it is hard",
            formula=r"(1-x)^2 + 100\,(y-x^2)^2",
            reference="H. H. Rosenbrock, An automatic method for finding the greatest or least value of a "
                      "function, The Computer Journal 3(3), 1960"),
    Surface("himmelblau", _himmelblau, _himmelblau_grad, ((-5.0, 5.0), (-5.0, 5.0)),
            minima=((3.0, 2.0), (-2.80511808695274, 3.13131251825057), (-3.77931025337775, -3.28318599128617),
                    (3.58442834033049, -1.8481265269644)),
            saddles=((0.0866775045553963, 2.88425470117478), (-3.07302575076439, -0.0813530442879675),
                     (3.38515418360702, 0.0738518798377493), (-0.12796134673068, -1.95371498024458)),
            maxima=((-0.270844590667348, -0.923038556479981),), min_value=0.0, default_start=(-0.5, -0.5),
            kind="multimodal", convex=False,
            description="four equal minima, four saddles between them and a hill in the middle: "
                        "which minimum a run reaches depends on where it starts",
            formula=r"(x^2+y-11)^2 + (x+y^2-7)^2",
            reference="D. M. Himmelblau, Applied Nonlinear Programming, McGraw-Hill, 1972"),
    Surface("rastrigin", lambda x, y: _rastrigin_1d(x) + _rastrigin_1d(y),
            lambda x, y: (_rastrigin_1d_grad(x), _rastrigin_1d_grad(y)), ((-2.5, 2.5), (-2.5, 2.5)),
            minima=tuple((a, b) for a in _R_MIN for b in _R_MIN),
            saddles=tuple((a, b) for a in _R_MIN for b in _R_MAX) + tuple((a, b) for a in _R_MAX for b in _R_MIN),
            maxima=tuple((a, b) for a in _R_MAX for b in _R_MAX), min_value=0.0, default_start=(2.2, 1.7),
            kind="multimodal", convex=False,
            description="a bowl covered in egg-box ripples: a local minimum near every integer point, "
                        "the global one at the origin",
            formula=r"20 + \sum_{i} \left(x_i^2 - 10\cos 2\pi x_i\right)",
            reference="L. A. Rastrigin, Systems of Extremal Control, Nauka, Moscow, 1974 "
                      "(generalized by Muehlenbein, Schomisch & Born, 1991)"),
    Surface("beale", _beale, _beale_grad, ((-4.5, 4.5), (-4.5, 4.5)), minima=((3.0, 0.5),),
            saddles=((0.0, 1.0), (0.100537937324158, -2.64451358502312)), min_value=0.0, default_start=(1.0, 1.5),
            kind="valley", convex=False,
            description="flat plateaus and steep walls, values from 0 to 10^5: a test of step-size control",
            formula=r"(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
            reference="E. M. L. Beale, On an iterative method for finding a local minimum of a function of more "
                      "than one variable, Tech. Rep. 25, Statistical Techniques Research Group, Princeton, 1958"),
    Surface("saddle", lambda x, y: x * x - y * y, lambda x, y: (2 * x, -2 * y), ((-2.0, 2.0), (-2.0, 2.0)),
            saddles=((0.0, 0.0),), default_start=(-1.5, 0.05), kind="saddle", convex=False, bounded_below=False,
            description="the horse saddle: up along x, down along y; a strict saddle (Hessian eigenvalues 2 "
                        "and -2) that gradient descent leaves exponentially fast unless it starts on the x-axis",
            formula=r"x^2 - y^2",
            reference="the hyperbolic paraboloid; strict saddles: Ge, Huang, Jin & Yuan, Escaping from saddle "
                      "points, COLT 2015; Lee, Simchowitz, Jordan & Recht, COLT 2016"),
    Surface("monkey_saddle", lambda x, y: x ** 3 - 3 * x * y * y, lambda x, y: (3 * x * x - 3 * y * y, -6 * x * y),
            ((-1.5, 1.5), (-1.5, 1.5)), saddles=((0.0, 0.0),), default_start=(1.0, 0.1), kind="saddle",
            convex=False, bounded_below=False,
            description="three valleys (room for a monkey's tail): a degenerate saddle whose Hessian is zero, "
                        "so curvature cannot reveal it and gradients near it are tiny",
            formula=r"x^3 - 3xy^2 = \mathrm{Re}\,(x + iy)^3",
            reference="a higher-order saddle; Anandkumar & Ge, Efficient approaches for escaping higher order "
                      "saddle points in non-convex optimization, COLT 2016"),
    Surface("quartic_saddle", lambda x, y: 0.5 * x * x - 0.5 * y * y + 0.25 * y ** 4,
            lambda x, y: (x, y ** 3 - y), ((-2.0, 2.0), (-2.0, 2.0)), minima=((0.0, 1.0), (0.0, -1.0)),
            saddles=((0.0, 0.0),), min_value=-0.25, default_start=(-1.5, 0.01), kind="saddle", convex=False,
            description="a strict saddle between two minima (0, +-1): the bounded cousin of x^2 - y^2, "
                        "the textbook picture of escaping a saddle",
            formula=r"\tfrac12 x^2 - \tfrac12 y^2 + \tfrac14 y^4",
            reference="the standard strict-saddle example of Ge et al. (COLT 2015) and Jin, Ge, Netrapalli, "
                      "Kakade & Jordan, How to escape saddle points efficiently, ICML 2017"),
]

SURFACES: dict[str, Surface] = {surface.name: surface for surface in _CATALOGUE}


def get_surface(name) -> Surface:
    """The catalogue's surface called ``name`` (a :class:`Surface` is returned as it is)."""
    if isinstance(name, Surface):
        return name
    try:
        return SURFACES[name]
    except KeyError:
        raise KeyError(f"unknown surface {name!r}; known: {', '.join(SURFACES)}") from None
