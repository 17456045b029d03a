"""A 1-D convolutional (temporal-conv) feature extractor: convolutions over time, a feed-forward net.

What a recurrent net integrates step by step, a temporal convolution sees at once in a fixed window: the last
k observations stacked by ``env.frame_stack=k`` (CartPole without velocities: the velocities are differences
of consecutive positions, which a kernel over time computes), or an image's rows read top to bottom as a
sequence (as ``net=lstm net.rows=true`` does). Time-delay neural networks (Waibel et al. 1989) are the
classic form; dilations that double per layer (WaveNet, van den Oord et al. 2016; TCN, Bai et al. 2018)
widen the window without more layers.

Inputs: a ``(time, features)`` observation (channels = features, length = time), or a ``(C, H, W)`` image
(length = H rows, channels = C * W). A flat ``(features,)`` observation has no time axis: stack frames first.
Stateless (``is_recurrent = False``), so any agent uses it as it uses an MLP.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from nets.base import FeatureExtractor, observation_shape
from nets.configs import PADDINGS
from nets.mlp import ACTIVATIONS


def sequence_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, length) that a conv over time sees for an observation shape."""
    if len(shape) == 2:  # (time, features)
        return shape[1], shape[0]
    if len(shape) == 3:  # (C, H, W): H rows of C * W values
        return shape[0] * shape[2], shape[1]
    raise ValueError(
        f"Conv1dNet needs (time, features) or (C, H, W) observations, got observation shape {shape}; "
        "for a flat vector observation stack the last k with env.frame_stack=k"
    )


def minimum_length(kernel_size: int, dilations: Sequence[int], padding: str) -> int:
    """Shortest sequence that leaves at least one output step: a 'valid' conv of span d * (k - 1) + 1 eats
    d * (k - 1) steps; 'same' convs keep the length."""
    if padding == "same":
        return 1
    return 1 + sum(d * (kernel_size - 1) for d in dilations)


class Conv1dNet(FeatureExtractor):
    """``Conv1d -> activation`` per ``channels`` entry (kernel ``kernel_size``, dilation ``dilations[i]``),
    then ``Flatten -> [Dropout] -> Linear(features_dim) -> activation``; the flatten size comes from a dummy
    forward pass, as in :class:`nets.cnn.ConvNet`.

    ``padding="same"`` pads each side by d * (k - 1) // 2 (odd kernels keep the length; the output at a
    step then sees steps on both sides of it, which is fine for a window that is all in the past).
    """

    def __init__(
        self,
        observation_space: gym.Space | Sequence[int],
        channels: Sequence[int] = (64, 64),
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 1),
        padding: str = "same",
        activation: str = "relu",
        features_dim: int = 128,
        dropout: float = 0.0,
    ) -> None:
        shape = observation_shape(observation_space)
        in_channels, length = sequence_shape(shape)
        widths, dils = [int(c) for c in channels], [int(d) for d in dilations]
        if not widths or min(widths) < 1 or len(dils) != len(widths) or min(dils) < 1 or kernel_size < 1:
            raise ValueError(
                f"Conv1dNet needs positive widths, one positive dilation per width and kernel_size >= 1, got "
                f"channels={widths}, dilations={dils}, kernel_size={kernel_size}"
            )
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; choose one of {list(PADDINGS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if not 0.0 <= dropout < 1.0 or features_dim < 1:
            raise ValueError(f"need dropout in [0, 1) and features_dim >= 1, got {dropout}, {features_dim}")
        need = minimum_length(kernel_size, dils, padding)
        if length < need:
            raise ValueError(
                f"Conv1dNet needs sequences of at least {need} steps with these options; got observation "
                f"shape {shape} ({length} steps)"
            )
        super().__init__(shape, features_dim)
        self.sequence_shape = (in_channels, length)
        layers: list[nn.Module] = []
        for width, d in zip(widths, dils, strict=True):
            pad = d * (kernel_size - 1) // 2 if padding == "same" else 0
            layers += [
                nn.Conv1d(in_channels, width, kernel_size, padding=pad, dilation=d),
                ACTIVATIONS[activation](),
            ]
            in_channels = width
        self.trunk = nn.Sequential(*layers)
        with torch.no_grad():
            out = self.trunk(torch.zeros(1, *self.sequence_shape))
        self.trunk_output_shape: tuple[int, ...] = tuple(out.shape[1:])
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(out.numel(), features_dim), ACTIVATIONS[activation]()]
        self.head = nn.Sequential(*head)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.input_shape) == 2:  # (B, T, F) -> (B, F, T): features are the channels
            x = x.transpose(1, 2)
        else:  # (B, C, H, W) -> (B, C * W, H): each row's values are the channels, rows are time
            x = x.permute(0, 1, 3, 2).reshape(x.shape[0], -1, x.shape[2])
        return self.head(self.trunk(x))
