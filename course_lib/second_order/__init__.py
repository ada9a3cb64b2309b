"""Second-order optimization: curvature from Hessian-vector products, Newton-type methods, K-FAC, and
Duda's online gradient regression (OGR).

* :mod:`.hvp`: ``hvp`` (Pearlmutter's trick), ``hessian``, ``lanczos``, ``top_eigenvalues``,
  ``spectral_density`` (stochastic Lanczos quadrature);
* :mod:`.newton`: ``Newton``, ``SaddleFreeNewton`` (exact or Krylov), ``newton_direction``,
  ``saddle_free_direction``, ``run_second_order`` (2-D surfaces);
* :mod:`.lbfgs`: ``lbfgs_direction`` (the two-loop recursion), ``conjugate_gradient``;
* :mod:`.kfac`: ``KFAC``, ``kfac_factors``, ``kfac_direction``.
"""

from .hvp import SpectrumEstimate, flatten, hessian, hvp, lanczos, spectral_density, top_eigenvalues, unflatten
from .kfac import KFAC, kfac_direction, kfac_factors
from .lbfgs import conjugate_gradient, lbfgs_direction
from .newton import Newton, SaddleFreeNewton, newton_direction, run_second_order, saddle_free_direction
from .ogr import OGR
from .sharpness import edge_statistics, gd_with_sharpness, power_iteration, sharpness

__all__ = ["hvp", "hessian", "flatten", "unflatten", "lanczos", "top_eigenvalues", "spectral_density",
           "SpectrumEstimate", "Newton", "SaddleFreeNewton", "newton_direction", "saddle_free_direction",
           "run_second_order", "lbfgs_direction", "conjugate_gradient", "KFAC", "kfac_factors", "kfac_direction",
           "OGR", "sharpness", "power_iteration", "gd_with_sharpness", "edge_statistics"]
