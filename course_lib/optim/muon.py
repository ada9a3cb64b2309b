r"""Muon: momentum, orthogonalized by a Newton-Schulz iteration (Jordan et al., 2024).

For a weight *matrix* :math:`W \in \mathbb{R}^{m \times n}` with gradient :math:`G_t`, Muon keeps
SGD's momentum :math:`M_t` and steps along its "orthogonalization": with the SVD
:math:`M = U \Sigma V^\top`, the update is (approximately) :math:`O = U V^\top`, the
matrix with the same singular vectors and every singular value set to 1. It is the
steepest-descent direction for the spectral norm,
:math:`O = \arg\max_{\|O\|_2 \le 1} \langle M, O \rangle`: every direction the momentum
points to moves equally far, so rare directions (small singular values) are not
drowned by the few dominant ones that a gradient of a hidden layer is made of.

Computing an SVD each step is slow on an accelerator; an odd matrix polynomial is fast.
After scaling :math:`X_0 = M / \|M\|_F` (so every singular value :math:`s` is in :math:`(0, 1]`),

.. math::

    A_k = X_k X_k^\top, \qquad X_{k+1} = a X_k + (b A_k + c A_k^2)\, X_k

acts on each singular value separately, :math:`s \mapsto a s + b s^3 + c s^5`, and leaves the
singular vectors alone; one step costs three matrix products (:math:`X X^\top`, :math:`A^2`,
:math:`(bA + cA^2) X`), five steps fifteen. The classic cubic Newton-Schulz coefficients
:math:`(1.5, -0.5, 0)` drive every :math:`s \in (0, \sqrt 3)` to 1, slowly when :math:`s` is small;
Muon's quintic :math:`(3.4445, -4.7750, 2.0315)` has slope 3.4445 at 0, so five steps bring every
singular value :math:`s \ge 2\cdot 10^{-3}` (relative to :math:`\|M\|_F`) into about
:math:`[0.68, 1.2]`, not exactly 1, which trains just as well. Smaller ones are raised less:
:math:`s = 10^{-3}` ends at 0.47, :math:`s = 10^{-4}` at 0.05.

The step (momentum :math:`\beta`, learning rate :math:`\eta`, decoupled weight decay
:math:`\lambda_{\mathrm{wd}}`):

.. math::

    M_t &= \beta M_{t-1} + G_t \quad\text{(kept, as torch does, as the lerp } M_t = \beta M_{t-1} + (1-\beta) G_t\text{)} \\
    \tilde M_t &= G_t + \beta M_t \ \text{(Nesterov, as a lerp too)} \quad\text{or}\quad M_t \\
    W_t &= (1 - \eta\lambda_{\mathrm{wd}})\,W_{t-1} - \eta' \, \mathrm{NS}_5(\tilde M_t),
    \qquad \eta' = \eta \sqrt{\max(1, m/n)} \ \text{("original") or } 0.2\eta\sqrt{\max(m, n)}

The orthogonalized update has RMS about :math:`1/\sqrt{\max(m, n)}` (:math:`\min(m, n)` singular
values 1). "original" multiplies it by :math:`\sqrt{\max(1, m/n)}`, which gives an RMS of about
:math:`1/\sqrt n`, still depending on the fan-in :math:`n`; "match_rms_adamw" multiplies it by
:math:`0.2\sqrt{\max(m, n)}`, which gives about 0.2 for every shape, close to AdamW's, so AdamW's
learning rate can be reused.

Muon is for the weight matrices of *hidden* layers. Its authors give the biases and gains, the
input layer (embedding) and the output layer (head) to AdamW: :class:`MuonWithAdamW` does that by
default (``muon_params="hidden"``), see also :func:`split_muon_params`.

References: Jordan, Jin, Boza, You, Cesista, Newhouse & Bernstein, "Muon: An optimizer for hidden
layers in neural networks" (blog post, 2024); Bernstein & Newhouse, "Old optimizer, new norm: an
anthology" (2024); Liu et al., "Muon is scalable for LLM training" (2025); Higham, "Functions of
matrices" (SIAM 2008), ch. 8, for the Newton-Schulz iteration.
"""

from __future__ import annotations

import math

import torch

from ._base import Optimizer, check, check_adam_hyperparameters
from .adam import Adam

__all__ = ["Muon", "MuonWithAdamW", "newton_schulz", "split_muon_params", "MUON_NS_COEFFICIENTS"]

MUON_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(matrix: torch.Tensor, ns_coefficients=MUON_NS_COEFFICIENTS, ns_steps: int = 5,
                  eps: float = 1e-7, *, dtype: torch.dtype | None = torch.bfloat16) -> torch.Tensor:
    r"""Approximately orthogonalize ``matrix`` (``U V^T`` from its SVD) with ``ns_steps`` Newton-Schulz steps.

    ``dtype``: the precision of the iteration. Muon (and torch.optim.Muon) runs it in bfloat16,
    which is plenty for an update direction and fast on accelerators; ``dtype=None`` keeps the
    input's (float64 to study the iteration). The result has that dtype. Errors as torch's.
    """
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if matrix.dim() != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    x = matrix if dtype is None else matrix.to(dtype)
    tall = matrix.size(0) > matrix.size(1)
    if tall:  # work with the wide side: X X^T is then the smaller Gram matrix
        x = x.T
    x = x / x.norm().clamp(min=eps)  # the Frobenius norm bounds the spectral norm: all sigma <= 1
    for _ in range(ns_steps):
        gram = x @ x.T                                        # A = X X^T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # b A + c A^2
        x = torch.addmm(x, poly, x, beta=a)                   # a X + (b A + c A^2) X
    return x.T if tall else x


def _adjusted_lr(lr: float, adjust_lr_fn, shape) -> float:
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


def split_muon_params(model: torch.nn.Module, *, exclude=()):
    """``(matrices, others)``: the 2-D weights for Muon, and everything else (biases, ...) for AdamW.

    ``exclude``: modules whose weights go to ``others`` anyway (e.g. the input and the output layer, as Muon's
    authors do; :class:`MuonWithAdamW`'s ``muon_params="hidden"`` makes that choice from the parameters' order).
    """
    excluded = {id(p) for module in exclude for p in module.parameters()}
    matrices, others = [], []
    for param in model.parameters():
        if param.requires_grad:
            (matrices if param.dim() == 2 and id(param) not in excluded else others).append(param)
    return matrices, others


class Muon(Optimizer):
    r"""Muon: SGD-Nesterov momentum whose update is orthogonalized, for 2-D parameters only.

    Same arguments, defaults (``lr=1e-3``, ``weight_decay=0.1``, ``momentum=0.95``,
    ``nesterov=True``, ``ns_coefficients=(3.4445, -4.7750, 2.0315)``, ``eps=1e-7``,
    ``ns_steps=5``, ``adjust_lr_fn=None``), state (``momentum_buffer``), errors and numbers as
    :class:`torch.optim.Muon` (whose Newton-Schulz iteration runs in bfloat16, and so does this one).
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=MUON_NS_COEFFICIENTS, eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        check(0.0 <= momentum, f"momentum should be >= 0 but is: {momentum}")
        check(0.0 <= weight_decay, f"weight decay should be >= 0 but is: {weight_decay}")
        check(adjust_lr_fn in (None, "original", "match_rms_adamw"),
              f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                check(param.dim() == 2,
                      f"Muon only supports 2D parameters whereas we found a parameter with size: {param.size()}")

    def init_state(self, param, state, group):
        if param.is_complex():
            raise RuntimeError("Muon does not support complex parameters")
        state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update(self, param, grad, state, group):
        if grad.dim() != 2:
            raise ValueError("Param gradient must be a 2D matrix")
        lr, momentum = float(group["lr"]), group["momentum"]
        buffer = state["momentum_buffer"]
        buffer.lerp_(grad, 1 - momentum)
        direction = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
        update = newton_schulz(direction, group["ns_coefficients"], group["ns_steps"], group["eps"],
                               dtype=group.get("ns_dtype", torch.bfloat16))  # only MuonWithAdamW's groups choose
        param.mul_(1 - lr * group["weight_decay"])
        param.add_(update, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], param.shape))


class MuonWithAdamW(Optimizer):
    r"""Muon for the hidden weight matrices (and conv kernels), AdamW for all other parameters.

    How Muon is used in practice (Jordan et al.'s "Muon with auxiliary Adam"): a model's
    ``parameters()`` go in; :class:`Muon`'s rule is applied to the tensors ``muon_params`` selects
    and :class:`~course_lib.optim.AdamW`'s rule (``adamw_lr``, ``adamw_betas``, ``adamw_eps``,
    ``adamw_weight_decay``) to the rest. ``muon_params``:

    * ``"hidden"`` (default): every tensor with two or more dimensions except the *first* and the
      *last* of them in the order given. For ``model.parameters()`` of a feed-forward network those
      are the input layer and the output layer, which Muon's authors leave to AdamW, with the biases;
      a network with fewer than three weight matrices then has no Muon parameter at all.
    * ``"matrices"``: every tensor with two or more dimensions, the input and output layers included.
    * an iterable of tensors, each one of ``params`` with at least two dimensions: exactly those.

    Two param groups, marked ``use_muon`` (an empty one is left out); ``lr`` is Muon's (the one a
    learning-rate sweep tunes), and a scheduler scales both groups. A conv kernel of shape
    ``(out, in, kh, kw)`` is orthogonalized as the ``(out, in * kh * kw)`` matrix it is to the layer's
    output, as Jordan et al. do for their CIFAR-10 networks (:class:`torch.optim.Muon` itself takes
    2-D parameters only). ``ns_dtype``: the precision of the Newton-Schulz iteration, bfloat16 as in
    torch (``None``: the parameter's own dtype, e.g. float64 for runs that must agree across machines).
    """

    def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0,
                 ns_coefficients=MUON_NS_COEFFICIENTS, eps=1e-7, ns_steps=5, adjust_lr_fn=None, *,
                 muon_params="hidden", adamw_lr=3e-3, adamw_betas=(0.9, 0.999), adamw_eps=1e-8,
                 adamw_weight_decay=0.0, ns_dtype=torch.bfloat16):
        params = list(params)
        check(all(isinstance(p, torch.Tensor) for p in params), "MuonWithAdamW takes a list of tensors, not groups")
        check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        check(0.0 <= momentum, f"momentum should be >= 0 but is: {momentum}")
        check(0.0 <= weight_decay, f"weight decay should be >= 0 but is: {weight_decay}")
        check_adam_hyperparameters(adamw_lr, adamw_eps, adamw_betas)
        check(0.0 <= adamw_weight_decay, f"Invalid weight_decay value: {adamw_weight_decay}")
        check(ns_dtype is None or isinstance(ns_dtype, torch.dtype), f"ns_dtype must be a torch.dtype or None, "
              f"got {ns_dtype!r}")
        chosen = _select_muon_params(params, muon_params)
        muon = dict(params=[p for p in params if id(p) in chosen], use_muon=True, lr=lr, momentum=momentum,
                    nesterov=nesterov, weight_decay=weight_decay, ns_coefficients=ns_coefficients, eps=eps,
                    ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn, ns_dtype=ns_dtype)
        adamw = dict(params=[p for p in params if id(p) not in chosen], use_muon=False, lr=adamw_lr,
                     betas=tuple(adamw_betas), eps=adamw_eps, weight_decay=adamw_weight_decay, amsgrad=False,
                     maximize=False, decoupled_weight_decay=True, foreach=False)
        super().__init__([group for group in (muon, adamw) if group["params"]], {})

    def init_state(self, param, state, group):
        (Muon if group["use_muon"] else Adam).init_state(self, param, state, group)

    def update(self, param, grad, state, group):
        if not group["use_muon"]:
            return Adam.update(self, param, grad, state, group)
        if param.dim() > 2:  # a conv kernel: the (out, in * kh * kw) matrix, views so that updates land in place
            rows = param.size(0)
            state = {"momentum_buffer": state["momentum_buffer"].view(rows, -1)}
            param, grad = param.view(rows, -1), grad.reshape(rows, -1)
        Muon.update(self, param, grad, state, group)


def _select_muon_params(params, muon_params) -> set:
    """The ids of the tensors of ``params`` that ``muon_params`` ("hidden", "matrices" or tensors) gives to Muon."""
    matrices = [p for p in params if p.dim() >= 2]
    if isinstance(muon_params, str):
        check(muon_params in ("hidden", "matrices"),
              f"muon_params must be 'hidden', 'matrices' or an iterable of tensors, got {muon_params!r}")
        chosen = matrices[1:-1] if muon_params == "hidden" else matrices
        return {id(p) for p in chosen}
    chosen = list(muon_params)
    given = {id(p) for p in params}
    for p in chosen:
        check(isinstance(p, torch.Tensor) and id(p) in given, "muon_params must be tensors from params")
        check(p.dim() >= 2, f"Muon takes tensors of two or more dimensions, muon_params has one of shape {tuple(p.shape)}")
    return {id(p) for p in chosen}
