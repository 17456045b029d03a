"""The contract every feature extractor follows.

An extractor is an ``nn.Module`` built from an observation space (or a shape), exposes ``features_dim`` and is
called as ``features, state = net(obs, state=None)``. Stateless nets return ``state`` unchanged (``None``);
recurrent nets return their new hidden state, so agents and the training loop treat both the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn


def observation_shape(space_or_shape: gym.Space | Sequence[int]) -> tuple[int, ...]:
    """Shape of one observation, from a Gymnasium Box space or a plain shape."""
    if isinstance(space_or_shape, gym.spaces.Box):
        return tuple(int(d) for d in space_or_shape.shape)
    if isinstance(space_or_shape, gym.Space):
        raise TypeError(f"feature extractors need a Box observation space, got {space_or_shape}")
    return tuple(int(d) for d in space_or_shape)


def scale_observation(obs: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The one place where observations become float: uint8 pixels are divided by 255, everything else cast.

    Replay buffers and environments keep pixels as uint8 (4x less memory and host-to-device traffic);
    every extractor calls this first. ``dtype`` is the float type wanted (FeatureExtractor passes its
    parameters' dtype, so float64 observations meet a float32 net as float32 and a float64 net, e.g. in a
    gradient check, gets float64); default: torch's default float dtype.
    """
    dtype = dtype or torch.get_default_dtype()
    if obs.dtype == torch.uint8:
        return obs.to(dtype).div_(255.0)
    return obs.to(dtype)


class FeatureExtractor(nn.Module):
    """Base class: holds ``input_shape`` and ``features_dim`` and the forward contract.

    Subclasses implement ``extract(x)`` on already-scaled float input (stateless nets) or override
    ``forward`` (recurrent nets).
    """

    is_recurrent: bool = False

    def __init__(self, input_shape: Sequence[int], features_dim: int) -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.features_dim = int(features_dim)

    def extract(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, obs: torch.Tensor, state: object | None = None) -> tuple[torch.Tensor, object | None]:
        return self.extract(scale_observation(obs, self.param_dtype())), state

    def param_dtype(self) -> torch.dtype | None:
        """Float dtype of the parameters (None for a parameter-free net): what observations are cast to.

        Cached: walking ``parameters()`` on every forward cost ~5 µs, a tenth of acting on CartPole's MLP.
        ``_apply`` (``.to()``, ``.double()``, ``.half()``, ...) clears the cache.
        """
        cached = self.__dict__.get("_param_dtype", False)
        if cached is False:
            param = next(self.parameters(), None)
            cached = param.dtype if param is not None and param.is_floating_point() else None
            self.__dict__["_param_dtype"] = cached
        return cached

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module's signature
        self.__dict__.pop("_param_dtype", None)
        return super()._apply(fn, recurse)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> object | None:
        """Hidden state at an episode start (``None`` for stateless nets)."""
        return None


def flat_size(shape: Sequence[int]) -> int:
    return int(np.prod(shape)) if len(shape) else 1
