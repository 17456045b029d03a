"""Use rlcore feature extractors inside Stable-Baselines3 policies.

::

    policy_kwargs = dict(features_extractor_class=SB3Extractor,
                         features_extractor_kwargs=dict(net="nature_cnn", features_dim=256))
    # or one of our classes directly:  dict(net=NatureCNN, features_dim=256)
    # or let sb3_policy_kwargs keep the image-scaling settings consistent:
    policy_kwargs = sb3_policy_kwargs("nature_cnn", features_dim=256)

Pixel scaling. Our nets divide uint8 pixels by 255 themselves (``nets.base.scale_observation``), while SB3
casts every Box observation to float before the extractor sees it, dividing by 255 only when the policy's
``normalize_images`` is true and the space is an SB3 "image space" (uint8, 3 dims, bounds 0..255). So the
adapter must know the policy's ``normalize_images`` (pass the same value to both; ``sb3_policy_kwargs``
does): when SB3 has already normalised, the [0, 1] floats go through unchanged; when it has not, the float
copies of the uint8 pixels are turned back into uint8 (exact, they are whole numbers) so our net scales
them once. Either way pixels are scaled exactly once. ``normalize_images=False`` is the recommended setting:
SB3 then does no scaling of its own and the replay buffer-to-net path matches rlcore's agents.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from nets.base import FeatureExtractor
from nets.build import build_extractor
from nets.configs import NET_CONFIGS


class SB3Extractor(BaseFeaturesExtractor):
    """An SB3 ``BaseFeaturesExtractor`` wrapping one of our (stateless) extractors.

    ``net`` is an option name (``"mlp"``, ``"nature_cnn"``, ...; the other keyword arguments are that
    config's keys and are range-checked by it), a net config instance, or a FeatureExtractor subclass
    (the other keyword arguments go to its constructor). ``normalize_images`` must equal the policy's.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        net: str | object | type[FeatureExtractor] = "mlp",
        normalize_images: bool = True,
        **net_kwargs: Any,
    ) -> None:
        if isinstance(net, str):
            if net not in NET_CONFIGS:
                raise ValueError(f"unknown net {net!r}; choose one of {sorted(NET_CONFIGS)}")
            extractor = build_extractor(NET_CONFIGS[net](name=net, **net_kwargs), observation_space)
        elif isinstance(net, type) and issubclass(net, FeatureExtractor):
            extractor = net(observation_space, **net_kwargs)  # type: ignore[arg-type]  # subclasses take the space
        else:
            if net_kwargs:
                raise TypeError(
                    "keyword arguments are only used with a net name or class, not a config instance"
                )
            extractor = build_extractor(net, observation_space)
        if extractor.is_recurrent:
            raise ValueError(
                "SB3 feature extractors are stateless; use a recurrent net with rlcore's agents "
                "(or sb3-contrib's RecurrentPPO with a stateless encoder)"
            )
        super().__init__(observation_space, extractor.features_dim)
        self.net = extractor
        uint8_space = isinstance(observation_space, gym.spaces.Box) and observation_space.dtype == np.uint8
        sb3_scales = normalize_images and is_image_space(observation_space)
        # uint8 pixels SB3 cast to float without dividing: restore uint8 so our net scales them once.
        self.restore_uint8 = uint8_space and not sb3_scales

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.restore_uint8 and observations.is_floating_point():
            observations = observations.to(torch.uint8)
        features, _ = self.net(observations)
        return features


def sb3_policy_kwargs(
    net: str | object | type[FeatureExtractor] = "mlp", normalize_images: bool = False, **net_kwargs: Any
) -> dict[str, Any]:
    """``policy_kwargs`` for an SB3 algorithm using our ``net``, with ``normalize_images`` set consistently."""
    return {
        "features_extractor_class": SB3Extractor,
        "features_extractor_kwargs": {"net": net, "normalize_images": normalize_images, **net_kwargs},
        "normalize_images": normalize_images,
    }
