"""Multi-layer perceptron feature extractor and the weight-initialisation schemes it offers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import gymnasium as gym
import torch
from torch import nn

from nets.base import FeatureExtractor, flat_size, observation_shape
from nets.configs import INITS, NORMS

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

# nn.init.calculate_gain knows no ELU/GELU; both behave like ReLU for positive inputs, so use its gain.
_GAIN_NAME: dict[str, Literal["sigmoid", "tanh", "relu", "leaky_relu"]] = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "relu",
    "gelu": "relu",
}


def init_linear(layer: nn.Linear, scheme: str, activation: str) -> None:
    """Re-initialise one layer's weights (biases to zero) for the activation that follows it.

    ``xavier``: Glorot & Bengio 2010, keeps activation variance for tanh/sigmoid units. ``he``: He et al.
    2015, the fan-in variance for rectifiers. ``orthogonal``: Saxe et al. 2014, scaled by the activation's
    gain as is usual in deep RL (e.g. PPO implementations). ``default`` leaves PyTorch's init alone.
    """
    if scheme == "default":
        return
    gain_name = _GAIN_NAME[activation]
    if scheme == "xavier":
        nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(gain_name))
    elif scheme == "he":
        nonlinearity: Literal["leaky_relu", "relu"] = "leaky_relu" if activation == "leaky_relu" else "relu"
        nn.init.kaiming_normal_(layer.weight, nonlinearity=nonlinearity)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(layer.weight, gain=nn.init.calculate_gain(gain_name))
    else:
        raise ValueError(f"unknown init {scheme!r}; choose one of {list(INITS)}")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class MLP(FeatureExtractor):
    """Flatten, then one block ``Linear -> [norm] -> activation -> [dropout]`` per hidden width.

    ``features_dim`` is the last width. With no hidden widths the extractor is the identity on the flattened
    input, so a linear head on top gives a single-layer perceptron (Rosenblatt 1958) and a linear head with
    a softmax/cross-entropy loss is multinomial logistic (softmax) regression.

    ``norm="batch"`` (Ioffe & Szegedy 2015) needs batches of more than one sample in training mode;
    ``norm="layer"`` (Ba et al. 2016) does not. Dropout follows Srivastava et al. 2014.
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str = "none",
        init: str = "default",
    ) -> None:
        shape = observation_shape(observation_space)
        in_dim = flat_size(shape)
        widths = [int(w) for w in hidden_sizes]
        super().__init__(shape, widths[-1] if widths else in_dim)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.activation = activation
        blocks: list[nn.Module] = []
        for width in widths:
            linear = nn.Linear(in_dim, width)
            init_linear(linear, init, activation)
            block: list[nn.Module] = [linear]
            if norm == "batch":
                block.append(nn.BatchNorm1d(width))
            elif norm == "layer":
                block.append(nn.LayerNorm(width))
            block.append(ACTIVATIONS[activation]())
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*block))
            in_dim = width
        self.layers = nn.Sequential(nn.Flatten(), *blocks)

    @property
    def blocks(self) -> list[nn.Sequential]:
        """The hidden blocks in order, each starting with its ``nn.Linear`` (used by layer-wise pretraining)."""
        return [m for m in self.layers if isinstance(m, nn.Sequential)]

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
