"""Second-order optimization: curvature from Hessian-vector products, Newton-type methods, K-FAC, and
Duda's online gradient regression (OGR)."""

__all__ = []
