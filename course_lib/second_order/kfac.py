r"""K-FAC: Kronecker-factored approximate curvature for networks of ``nn.Linear`` layers.

Martens & Grosse, "Optimizing neural networks with Kronecker-factored approximate curvature", ICML 2015.

A linear layer :math:`s = W \bar a` (with :math:`\bar a = [a; 1]` when it has a bias) has the
weight gradient :math:`\nabla_W \ell = g\, \bar a^\top`, :math:`g = \partial \ell/\partial s`. Its block
of the Fisher matrix is

.. math::

    F = \mathbb E\big[\operatorname{vec}(g \bar a^\top)\operatorname{vec}(g \bar a^\top)^\top\big]
      = \mathbb E\big[(\bar a \bar a^\top) \otimes (g g^\top)\big]
      \approx \mathbb E[\bar a \bar a^\top] \otimes \mathbb E[g g^\top] = A \otimes S ,

where the targets inside :math:`g` are *sampled from the model's predictive distribution* (the true
Fisher; for a softmax output and cross-entropy it is also the Gauss-Newton matrix). The one
approximation is that activations and back-propagated gradients are independent. It is exact for a
single linear layer with a Gaussian output (then :math:`g` is noise independent of :math:`\bar a`).
Since :math:`(A\otimes S)^{-1} = A^{-1}\otimes S^{-1}` and
:math:`(A \otimes S)^{-1}\operatorname{vec}(V) = \operatorname{vec}(S^{-1} V A^{-1})`, the natural-gradient
step of a layer costs two small inverses, of size ``in+1`` and ``out``, instead of one of size
``(in+1)·out``:

.. math::

    \Delta W = -\eta\, (S + \pi\sqrt\delta\, I)^{-1}\, \nabla_W \ell\, (A + \tfrac{\sqrt\delta}{\pi} I)^{-1},
    \qquad \pi = \sqrt{\frac{\operatorname{tr}(A)/\dim A}{\operatorname{tr}(S)/\dim S}}

(factored Tikhonov damping :math:`\delta` = ``damping``, Martens & Grosse §6.3; they call :math:`S` "G"). The factors are running averages,
:math:`A \leftarrow \epsilon A + (1-\epsilon) A_{\text{batch}}` with :math:`\epsilon = \min(1 - 1/k,
\text{stat\_decay})`, and their damped inverses are recomputed every ``inverse_every`` steps (:math:`T`):
the expensive part is amortized. Parameters outside ``nn.Linear`` layers get a plain gradient step.

``fisher`` says where :math:`g` comes from (and so what :math:`S` is):

* ``"sampled"`` (default, Martens & Grosse): after the closure, the model is run again on the same
  input and the statistics are taken from the gradient of the loss at targets sampled from the
  model: :math:`y \sim \mathrm{Cat}(\mathrm{softmax}(f))` for ``loss="cross_entropy"``,
  :math:`y \sim \mathcal N(f, \tfrac{n_\text{out}}2 I)` for ``loss="mse"`` (the Gaussian whose negative
  log-likelihood is torch's ``mse_loss`` up to a constant); one extra forward and backward pass.
* ``"exact"``: the expectation over the targets in closed form: one backward pass per column of a
  square root of the output Fisher :math:`\Lambda` (:math:`\Lambda = \mathrm{diag}(p) - pp^\top` for
  cross-entropy, :math:`\tfrac2{n_\text{out}} I` for mse); ``n_out`` backward passes, exact for small outputs.
* ``"empirical"``: the gradients of the training loss itself (no extra pass; the "empirical Fisher",
  which is *not* curvature far from the optimum: Kunstner, Balles & Hennig, NeurIPS 2019). Its :math:`g` depends
  on the residuals, hence on :math:`\bar a`, so even for one linear layer :math:`F_{\rm emp} \ne A \otimes S`.

The losses are torch's: ``F.cross_entropy`` and ``F.mse_loss``, averaged over the batch (mse also over
the outputs). At scale: Osawa et al. (CVPR 2019) trained ResNet-50 on ImageNet with distributed K-FAC to 75% top-1
in 35 epochs with mini-batches of up to 16,384 (larger batches needed more epochs).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KFAC", "kfac_factors", "kfac_direction"]


def kfac_factors(inputs: torch.Tensor, output_grads: torch.Tensor, bias: bool = True):
    r"""``(A, S)`` of one batch: :math:`A = \frac1B \sum_i \bar a_i \bar a_i^\top`, :math:`S = \frac1B \sum_i g_i g_i^\top`.

    ``inputs`` ``(B, in)``, ``output_grads`` ``(B, out)`` (per-example gradients w.r.t. the layer's output,
    *not* divided by the batch size). With ``bias`` a column of ones is appended to the inputs.
    """
    inputs = inputs.reshape(-1, inputs.shape[-1])
    output_grads = output_grads.reshape(-1, output_grads.shape[-1])
    if bias:
        inputs = torch.cat([inputs, inputs.new_ones(inputs.shape[0], 1)], dim=1)
    return inputs.T @ inputs / inputs.shape[0], output_grads.T @ output_grads / output_grads.shape[0]


def _damped_inverse(matrix: torch.Tensor, damping: float) -> torch.Tensor:
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    if damping > 0:
        return torch.linalg.inv(matrix + damping * eye)
    return torch.linalg.pinv(matrix, hermitian=True)


def kfac_direction(grad_matrix: torch.Tensor, A: torch.Tensor, S: torch.Tensor, damping: float = 0.0):
    r""":math:`(S + \pi\sqrt\delta I)^{-1}\, \nabla\, (A + \tfrac{\sqrt\delta}\pi I)^{-1}` for ``grad_matrix`` ``(out, in[+1])``.

    ``damping`` is :math:`\delta`; with ``damping=0`` the plain :math:`S^{-1}\nabla A^{-1}` (pseudo-inverses if singular).
    """
    a_inv, s_inv = _inverses(A, S, damping)
    return s_inv @ grad_matrix @ a_inv


def _inverses(A, S, damping):
    if damping > 0:
        pi = torch.sqrt((torch.trace(A) / A.shape[0]) / (torch.trace(S) / S.shape[0]).clamp_min(1e-30))
        pi = float(pi.clamp(1e-8, 1e8))
        root = damping ** 0.5
        return _damped_inverse(A, root / pi), _damped_inverse(S, root * pi)
    return _damped_inverse(A, 0.0), _damped_inverse(S, 0.0)


class KFAC(torch.optim.Optimizer):
    r"""K-FAC (Martens & Grosse, ICML 2015) for a ``model`` whose weights sit in ``nn.Linear`` layers.

    ``KFAC(model, lr=0.1, damping=1e-3, momentum=0.0, weight_decay=0.0, stat_decay=0.95,
    inverse_every=10, fisher="sampled", loss="cross_entropy", generator=None)``; see the module
    docstring for the update. ``step(closure)`` needs the closure (it zeroes the gradients, runs the
    model, computes the loss, calls ``backward`` and returns the loss, as for LBFGS). The model's
    first positional input of the last forward pass is kept (by a hook) for the extra statistics pass.
    State per weight: ``step``, ``A``, ``S`` (running averages), ``A_inv``, ``S_inv``; ``momentum_buffer``
    per parameter when ``momentum > 0``. ``layers`` lists the covered ``nn.Linear`` modules;
    :meth:`remove_hooks` detaches the optimizer from the model.
    """

    def __init__(self, model: nn.Module, lr=0.1, damping=1e-3, momentum=0.0, weight_decay=0.0, stat_decay=0.95,
                 inverse_every=10, *, fisher="sampled", loss="cross_entropy", generator=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= damping:
            raise ValueError(f"Invalid damping value: {damping}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= stat_decay < 1.0:
            raise ValueError(f"Invalid stat_decay value: {stat_decay}")
        if int(inverse_every) < 1:
            raise ValueError(f"Invalid inverse_every value: {inverse_every}")
        if fisher not in ("sampled", "exact", "empirical"):
            raise ValueError(f"fisher must be 'sampled', 'exact' or 'empirical', got {fisher!r}")
        if loss not in ("cross_entropy", "mse"):
            raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
        if not isinstance(model, nn.Module):
            raise ValueError("KFAC takes the model (an nn.Module), not its parameters")
        self.model = model
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not self.layers:
            raise ValueError("KFAC found no nn.Linear layer in the model")
        defaults = dict(lr=lr, damping=damping, momentum=momentum, weight_decay=weight_decay,
                        stat_decay=stat_decay, inverse_every=int(inverse_every))
        super().__init__([p for p in model.parameters() if p.requires_grad], defaults)
        self.fisher, self.loss, self.generator = fisher, loss, generator
        self._capture = fisher == "empirical"
        self._inputs, self._outputs, self._grads = {}, {}, {}
        self._model_input = None
        self._handles = [model.register_forward_pre_hook(self._save_model_input)]
        self._handles += [layer.register_forward_hook(self._save_layer) for layer in self.layers]

    # ---- hooks --------------------------------------------------------------------------------------
    def _save_model_input(self, module, args):
        if args:
            self._model_input = args[0].detach()

    def _save_layer(self, module, inputs, output):
        if not self._capture:
            return
        self._inputs[module] = inputs[0].detach()
        self._outputs[module] = output
        if self.fisher == "empirical" and output.requires_grad:
            def keep(grad, module=module):
                self._grads[module] = grad.detach()
            output.register_hook(keep)

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---- statistics ---------------------------------------------------------------------------------
    def _output_fisher_roots(self, output: torch.Tensor) -> list[torch.Tensor]:
        """Columns :math:`L_k` (each ``(B, out)``) with :math:`\\sum_k L_k L_k^\\top` the output Fisher, or one sample."""
        out_dim = output.shape[-1]
        output = output.detach()
        if self.loss == "mse":
            scale = (2.0 / out_dim) ** 0.5
            if self.fisher == "sampled":
                noise = torch.randn(output.shape, generator=self.generator, dtype=output.dtype,
                                    device="cpu" if self.generator is not None else output.device)
                return [scale * noise.to(output.device)]
            eye = torch.eye(out_dim, dtype=output.dtype, device=output.device)
            return [scale * eye[k].expand_as(output) for k in range(out_dim)]
        p = torch.softmax(output, dim=-1)
        if self.fisher == "sampled":
            probs = p.cpu() if self.generator is not None else p
            y = torch.multinomial(probs, 1, generator=self.generator).to(output.device).squeeze(-1)
            return [p - nn.functional.one_hot(y, out_dim).to(p.dtype)]
        eye = torch.eye(out_dim, dtype=p.dtype, device=p.device)
        return [p[:, k:k + 1].sqrt() * (eye[k] - p) for k in range(out_dim)]

    def _batch_statistics(self) -> dict:
        """``{layer: (A_batch, S_batch)}`` for the current step."""
        stats = {}
        if self.fisher == "empirical":
            for layer in self.layers:
                if layer in self._inputs and layer in self._grads:
                    a, g = self._inputs[layer], self._grads[layer]
                    g = g.reshape(-1, g.shape[-1]) * g.reshape(-1, g.shape[-1]).shape[0]  # undo the batch mean
                    stats[layer] = kfac_factors(a, g, bias=layer.bias is not None)
            return stats
        if self._model_input is None:
            raise RuntimeError("KFAC saw no forward pass of the model: the closure must run the model")
        self._capture = True
        try:
            with torch.enable_grad():
                output = self.model(self._model_input)
                layers = [m for m in self.layers if m in self._outputs]
                outs = [self._outputs[m] for m in layers]
                sums = {m: None for m in layers}
                roots = self._output_fisher_roots(output)
                for i, root in enumerate(roots):
                    grads = torch.autograd.grad(output, outs, grad_outputs=root, retain_graph=i < len(roots) - 1)
                    for m, g in zip(layers, grads):
                        g = g.reshape(-1, g.shape[-1])
                        part = g.T @ g / g.shape[0]
                        sums[m] = part if sums[m] is None else sums[m] + part
            for m in layers:
                a_factor, _ = kfac_factors(self._inputs[m], self._inputs[m].new_zeros(1, 1), bias=m.bias is not None)
                stats[m] = (a_factor, sums[m])
        finally:
            self._capture = False
            self._outputs.clear()
        return stats

    # ---- the step -----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure):
        """Evaluate the closure, update the factors, refresh the inverses every ``inverse_every`` steps, step."""
        if closure is None:
            raise ValueError("KFAC requires a closure that re-evaluates the model and calls backward")
        self._grads.clear()
        with torch.enable_grad():
            loss = closure()
        group = self.param_groups[0]
        stats = self._batch_statistics()
        self._inputs.clear()
        self._grads.clear()
        covered = set()
        for layer in self.layers:
            weight, bias = layer.weight, layer.bias
            if weight.grad is None or layer not in stats:
                continue
            state = self.state[weight]
            state["step"] = state.get("step", 0) + 1
            k = state["step"]
            a_batch, s_batch = stats[layer]
            eps = min(1.0 - 1.0 / k, group["stat_decay"])
            if k == 1:
                state["A"], state["S"] = a_batch.clone(), s_batch.clone()
            else:
                state["A"].mul_(eps).add_(a_batch, alpha=1 - eps)
                state["S"].mul_(eps).add_(s_batch, alpha=1 - eps)
            if (k - 1) % group["inverse_every"] == 0:
                state["A_inv"], state["S_inv"] = _inverses(state["A"], state["S"], group["damping"])
            grad = weight.grad
            if bias is not None:
                bgrad = bias.grad if bias.grad is not None else torch.zeros_like(bias)
                grad = torch.cat([grad, bgrad[:, None]], dim=1)
            direction = state["S_inv"] @ grad @ state["A_inv"]
            pieces = [(weight, direction[:, :weight.shape[1]])]
            if bias is not None:
                pieces.append((bias, direction[:, -1]))
            for param, d in pieces:
                self._apply(param, d, group)
                covered.add(param)
        for param in group["params"]:
            if param not in covered and param.grad is not None:
                self._apply(param, param.grad, group)
        return loss

    def _apply(self, param, direction, group):
        if group["weight_decay"]:
            direction = direction + group["weight_decay"] * param
        if group["momentum"]:
            state = self.state[param]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = direction.clone()
            else:
                buf.mul_(group["momentum"]).add_(direction)
            direction = buf
        param.add_(direction, alpha=-group["lr"])
