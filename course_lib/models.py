r"""Small models for the digits: a multi-layer perceptron and a small convolutional net.

Both are plain :class:`torch.nn.Sequential` stacks, initialized by torch's defaults
from the global RNG (seed it first, e.g. with ``seed_everything``, or pass ``seed=``
to draw the weights from a private generator and leave the global RNG alone).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["mlp", "small_cnn", "count_parameters"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def _activation(activation):
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
        return _ACTIVATIONS[activation]
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(f"activation must be a name or an nn.Module class, got {activation!r}")


def _build(make, seed, device, dtype):
    if seed is None:
        model = make()
    else:
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)  # the CPU generator only: the weights are drawn on the CPU
            model = make()
        finally:
            torch.random.set_rng_state(state)
    return model.to(device=device, dtype=dtype)


def mlp(sizes, activation="relu", *, seed: int | None = None, device=None, dtype=torch.float32) -> nn.Sequential:
    r"""A fully connected net ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ``activation`` between layers.

    :math:`f(x) = W_L\,\sigma(\cdots\sigma(W_1 x + b_1)\cdots) + b_L`; the last layer has no
    activation (it returns logits). ``mlp([64, 32, 10])`` fits the digits.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes needs at least an input and an output size, all >= 1, got {sizes}")
    act = _activation(activation)

    def make():
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(act())
        return nn.Sequential(*layers)

    return _build(make, seed, device, dtype)


def small_cnn(channels=(8, 16), n_classes: int = 10, activation="relu", *, seed: int | None = None, device=None,
              dtype=torch.float32) -> nn.Sequential:
    r"""A small convolutional net for ``(n, 1, 8, 8)`` digit images.

    Two 3x3 convolutions (padding 1) with ``channels`` filters, each followed by the activation
    and a 2x2 max-pool (8x8 -> 4x4 -> 2x2), then a linear layer from the ``4 * channels[1]``
    features to ``n_classes`` logits. With the defaults it has 1,898 parameters.
    """
    c1, c2 = (int(c) for c in channels)
    if min(c1, c2, n_classes) < 1:
        raise ValueError(f"channels and n_classes must be >= 1, got {channels}, {n_classes}")
    act = _activation(activation)

    def make():
        return nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), act(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(4 * c2, n_classes),
        )

    return _build(make, seed, device, dtype)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
