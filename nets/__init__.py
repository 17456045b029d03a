"""Feature extractors usable by every agent, by Stable-Baselines3 and by plain PyTorch code.

``build_extractor(net_cfg, observation_space)`` is how agents get one from a config; each net class can also
be built directly (``from nets import MLP``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym

from nets.base import FeatureExtractor, observation_shape, scale_observation
from nets.mlp import ACTIVATIONS, MLP
from rlcore.config import require, require_choice


@dataclass
class MLPConfig:
    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "relu"

    def __post_init__(self) -> None:
        require(all(w > 0 for w in self.hidden_sizes), "net.hidden_sizes", f"widths must be > 0 (got {self.hidden_sizes})")
        require_choice(self.activation, "net.activation", ACTIVATIONS)


SCHEMAS: dict[str, type] = {"mlp_schema": MLPConfig}


def build_extractor(cfg: object, observation_space: gym.Space) -> FeatureExtractor:
    """Build the feature extractor that ``cfg`` (one of the net schemas) describes."""
    if isinstance(cfg, MLPConfig):
        return MLP(observation_space, hidden_sizes=cfg.hidden_sizes, activation=cfg.activation)
    raise TypeError(f"no extractor for net config {type(cfg).__name__}")


__all__ = [
    "FeatureExtractor",
    "MLP",
    "MLPConfig",
    "SCHEMAS",
    "build_extractor",
    "observation_shape",
    "scale_observation",
]
