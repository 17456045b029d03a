"""Convolutional feature extractors for (C, H, W) image observations.

All of them are a convolutional ``trunk`` followed by a fully connected ``head``; the flatten size between
the two comes from a dummy forward pass at construction, so every input size the architecture allows works.
A (H, W) observation space gets a channel axis added inside the net. Inputs smaller than the architecture's
receptive-field chain allows raise a ValueError naming the shape and the minimum.

``padding="same"`` pads each convolution by d * (k - 1) // 2 on every side (d its dilation): stride-1 odd
kernels keep the spatial size, strided ones give about ceil(n / stride). ``padding="valid"`` does not pad.

``dilation`` (every extractor here; default 1) spreads each kernel's taps d pixels apart, so a k x k kernel
covers d * (k - 1) + 1 pixels with the same weights: a larger receptive field without pooling or more
parameters (Yu & Koltun 2016, "Multi-scale context aggregation by dilated convolutions"). The flatten size and
the minimum input size follow from it like any other setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from nets.base import FeatureExtractor, observation_shape
from nets.configs import PADDINGS, POOLINGS
from nets.mlp import ACTIVATIONS
from nets.pooling import StochasticPool2d

_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, StochasticPool2d)


def image_shape(observation_space: gym.Space | Sequence[int], net_name: str) -> tuple[int, int, int]:
    """(C, H, W) of an image space; a (H, W) space is treated as one channel."""
    shape = observation_shape(observation_space)
    if len(shape) == 2:
        return (1, shape[0], shape[1])
    if len(shape) == 3:
        return (shape[0], shape[1], shape[2])
    raise ValueError(f"{net_name} needs (C, H, W) or (H, W) observations, got observation shape {shape}")


def conv_unit(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    padding: str,
    batch_norm: bool,
    activation: str = "relu",
    dilation: int = 1,
) -> list[nn.Module]:
    """Conv2d -> [BatchNorm2d] -> activation; the conv has no bias when batch norm follows (it would cancel)."""
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")
    pad = dilation * (kernel_size - 1) // 2 if padding == "same" else 0
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=pad,
            dilation=dilation,
            bias=not batch_norm,
        )
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(ACTIVATIONS[activation]())
    return layers


def pool_layer(kind: str, kernel_size: int, stride: int) -> nn.Module:
    """Max, average or stochastic (Zeiler & Fergus 2013) pooling with the given window."""
    if kind == "max":
        return nn.MaxPool2d(kernel_size, stride)
    if kind == "avg":
        return nn.AvgPool2d(kernel_size, stride)
    if kind == "stochastic":
        return StochasticPool2d(kernel_size, stride)
    raise ValueError(f"unknown pooling {kind!r}; choose one of {list(POOLINGS)}")


def _geometry(layer: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(span, stride, padding) of a conv/pool layer; the span of a dilated kernel is d * (k - 1) + 1."""

    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    stride = layer.stride if layer.stride is not None else layer.kernel_size
    kernel, dilation = pair(layer.kernel_size), pair(getattr(layer, "dilation", 1))
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    return span, pair(stride), pair(layer.padding)


def minimum_input_size(trunk: nn.Module) -> tuple[int, int]:
    """Smallest (H, W) for which every conv/pool window of ``trunk`` fits (output at least 1x1).

    Walks the layers backwards: a layer with kernel span k (d * (k - 1) + 1 when dilated), stride s and
    padding p needs (n_out - 1) * s + k - 2p input pixels for n_out outputs.
    """
    need = [1, 1]
    for layer in reversed([m for m in trunk.modules() if isinstance(m, _SPATIAL)]):
        kernel, stride, pad = _geometry(layer)
        for d in range(2):
            need[d] = max(1, (need[d] - 1) * stride[d] + kernel[d] - 2 * pad[d])
    return need[0], need[1]


class ConvNet(FeatureExtractor):
    """A conv ``trunk`` then ``Flatten -> ([Dropout] -> Linear -> ReLU) per width`` as the ``head``.

    Subclasses build the trunk for the (C, H, W) shape from :func:`image_shape` and pass it here.
    ``layer_input_shapes`` records the (C, H, W) entering each trunk layer and ``trunk_output_shape`` the
    shape leaving it; the autoencoder's transposed-conv decoder mirrors the trunk with them.
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        trunk: nn.Sequential,
        fc_sizes: Sequence[int],
        dropout: float = 0.0,
        fc_activation: str = "relu",
    ) -> None:
        name = type(self).__name__
        shape = observation_shape(observation_space)
        chw = image_shape(shape, name)
        min_h, min_w = minimum_input_size(trunk)
        if chw[1] < min_h or chw[2] < min_w:
            raise ValueError(
                f"{name} needs images of at least {min_h}x{min_w} pixels with these options; "
                f"got observation shape {shape}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = [int(w) for w in fc_sizes]
        if not widths or any(w <= 0 for w in widths):
            raise ValueError(f"{name} needs at least one positive fully connected width, got {widths}")
        super().__init__(shape, widths[-1])
        self.image_shape = chw
        self.trunk = trunk
        # Dummy forward (eval mode: batch norm on a single sample, deterministic pooling) for the flatten size.
        self.layer_input_shapes: list[tuple[int, ...]] = []
        was_training = trunk.training
        trunk.eval()
        with torch.no_grad():
            x = torch.zeros(1, *chw)
            for layer in trunk:
                self.layer_input_shapes.append(tuple(x.shape[1:]))
                x = layer(x)
        trunk.train(was_training)
        self.trunk_output_shape: tuple[int, ...] = tuple(x.shape[1:])
        in_dim = x.numel()
        head: list[nn.Module] = [nn.Flatten()]
        for width in widths:
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            head += [nn.Linear(in_dim, width), ACTIVATIONS[fc_activation]()]
            in_dim = width
        self.head = nn.Sequential(*head)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.input_shape) == 2:
            x = x.unsqueeze(-3)
        return self.head(self.trunk(x))


class NatureCNN(ConvNet):
    """The DQN network of Mnih et al. 2015 (Nature): 32 8x8/4, 64 4x4/2, 64 3x3/1 convs, FC 512, all ReLU.

    Needs at least 36x36 inputs with ``padding="valid"`` (the paper's setting, 84x84 Atari frames).
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        features_dim: int = 512,
        padding: str = "valid",
        batch_norm: bool = False,
        dropout: float = 0.0,
        dilation: int = 1,
    ) -> None:
        _check_choice(padding, "padding", PADDINGS)
        c = image_shape(observation_space, type(self).__name__)[0]
        d = dilation
        trunk = nn.Sequential(
            *conv_unit(c, 32, 8, 4, padding, batch_norm, dilation=d),
            *conv_unit(32, 64, 4, 2, padding, batch_norm, dilation=d),
            *conv_unit(64, 64, 3, 1, padding, batch_norm, dilation=d),
        )
        super().__init__(observation_space, trunk, [features_dim], dropout)


class LeNet5(ConvNet):
    """LeNet-5 (LeCun et al. 1998) for 28x28 / 32x32 digits: 6 5x5 convs, pool 2, 16 5x5 convs, pool 2, FC 120, FC 84.

    The paper's C5 (120 5x5 convs, 1x1 output on 32x32 input) is a fully connected layer here, which is the
    same thing at 32x32 and works for any input size. Its squashing units and subsampling are the defaults
    (``activation="tanh"``, ``pooling="avg"``).
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        features_dim: int = 84,
        activation: str = "tanh",
        pooling: str = "avg",
        padding: str = "valid",
        batch_norm: bool = False,
        dropout: float = 0.0,
        dilation: int = 1,
    ) -> None:
        _check_choice(padding, "padding", PADDINGS)
        _check_choice(activation, "activation", ACTIVATIONS)
        c = image_shape(observation_space, type(self).__name__)[0]
        trunk = nn.Sequential(
            *conv_unit(c, 6, 5, 1, padding, batch_norm, activation, dilation),
            pool_layer(pooling, 2, 2),
            *conv_unit(6, 16, 5, 1, padding, batch_norm, activation, dilation),
            pool_layer(pooling, 2, 2),
        )
        super().__init__(observation_space, trunk, [120, features_dim], dropout, fc_activation=activation)


class AlexNet(ConvNet):
    """AlexNet-style net (Krizhevsky et al. 2012) scaled down for 28-84 px inputs.

    Five ReLU convs (5x5, 5x5, 3x3, 3x3, 3x3; the paper's 11x11/4 stem is for 224 px) with overlapping 3x3/2
    pooling after the 1st, 2nd and 5th, then two FC layers (the paper used dropout 0.5 on them; here
    ``dropout`` defaults to 0, as dropout usually hurts value learning in RL). Batch norm stands in for the
    paper's local response normalisation when enabled.
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        channels: Sequence[int] = (32, 96, 192, 128, 128),
        features_dim: int = 512,
        pooling: str = "max",
        padding: str = "same",
        batch_norm: bool = False,
        dropout: float = 0.0,
        dilation: int = 1,
    ) -> None:
        _check_choice(padding, "padding", PADDINGS)
        if len(channels) != 5 or any(int(ch) <= 0 for ch in channels):
            raise ValueError(f"AlexNet needs 5 positive conv widths, got {list(channels)}")
        c = image_shape(observation_space, type(self).__name__)[0]
        c1, c2, c3, c4, c5 = (int(ch) for ch in channels)
        d = dilation
        trunk = nn.Sequential(
            *conv_unit(c, c1, 5, 1, padding, batch_norm, dilation=d),
            pool_layer(pooling, 3, 2),
            *conv_unit(c1, c2, 5, 1, padding, batch_norm, dilation=d),
            pool_layer(pooling, 3, 2),
            *conv_unit(c2, c3, 3, 1, padding, batch_norm, dilation=d),
            *conv_unit(c3, c4, 3, 1, padding, batch_norm, dilation=d),
            *conv_unit(c4, c5, 3, 1, padding, batch_norm, dilation=d),
            pool_layer(pooling, 3, 2),
        )
        super().__init__(observation_space, trunk, [features_dim, features_dim], dropout)


class VGG(ConvNet):
    """VGG-style net (Simonyan & Zisserman 2015): blocks of stacked 3x3 convs, each block ending in 2x2/2 pooling.

    Two stacked 3x3 convs see a 5x5 field with fewer parameters and one more non-linearity than one 5x5
    conv, which is the paper's point. ``channels`` gives one width per block; one FC layer follows.
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        channels: Sequence[int] = (32, 64, 128),
        convs_per_block: int = 2,
        features_dim: int = 512,
        pooling: str = "max",
        padding: str = "same",
        batch_norm: bool = False,
        dropout: float = 0.0,
        dilation: int = 1,
    ) -> None:
        _check_choice(padding, "padding", PADDINGS)
        if not channels or any(int(ch) <= 0 for ch in channels) or convs_per_block < 1:
            raise ValueError(
                f"VGG needs positive block widths and convs_per_block >= 1, got {list(channels)}, {convs_per_block}"
            )
        in_ch = image_shape(observation_space, type(self).__name__)[0]
        layers: list[nn.Module] = []
        for width in channels:
            for _ in range(convs_per_block):
                layers += conv_unit(in_ch, int(width), 3, 1, padding, batch_norm, dilation=dilation)
                in_ch = int(width)
            layers.append(pool_layer(pooling, 2, 2))
        super().__init__(observation_space, nn.Sequential(*layers), [features_dim], dropout)


def _check_choice(value: str, key: str, choices: Sequence[str] | Mapping[str, object]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {key} {value!r}; choose one of {list(choices)}")
