"""Multi-layer perceptron feature extractor."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from nets.base import FeatureExtractor, flat_size, observation_shape

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


class MLP(FeatureExtractor):
    """Flatten, then ``Linear -> activation`` per hidden width; ``output_dim`` is the last width.

    With no hidden widths the extractor is the identity on the flattened input, so a linear head on top
    gives a single-layer perceptron / softmax regression.
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "relu",
    ) -> None:
        shape = observation_shape(observation_space)
        in_dim = flat_size(shape)
        widths = [int(w) for w in hidden_sizes]
        super().__init__(shape, widths[-1] if widths else in_dim)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = [nn.Flatten()]
        for width in widths:
            layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation]()]
            in_dim = width
        self.layers = nn.Sequential(*layers)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
