"""Feature extractors usable by every agent, by Stable-Baselines3 and by plain PyTorch code.

``build_extractor(net_cfg, observation_space)`` is how agents get one from a config; each net class can also
be built directly (``from nets import MLP, NatureCNN``). The SB3 adapter lives in :mod:`nets.sb3` and the
autoencoder pieces in :mod:`nets.autoencoder` (imported on demand, so ``import nets`` stays light).
"""

from __future__ import annotations

from nets.base import FeatureExtractor, observation_shape, scale_observation
from nets.build import build_extractor
from nets.cnn import VGG, AlexNet, ConvNet, LeNet5, NatureCNN
from nets.configs import (
    NET_CONFIGS,
    SCHEMAS,
    AlexNetConfig,
    GRUConfig,
    LeNet5Config,
    LSTMConfig,
    MLPConfig,
    NatureCNNConfig,
    RecurrentConfig,
    RNNConfig,
    VGGConfig,
    is_recurrent_config,
)
from nets.mlp import ACTIVATIONS, MLP
from nets.pooling import StochasticPool2d, stochastic_pool2d
from nets.pretrained import freeze_module, load_pretrained, save_encoder
from nets.recurrent import RecurrentNet
from nets.summary import count_parameters, summarize

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NET_CONFIGS",
    "SCHEMAS",
    "VGG",
    "AlexNet",
    "AlexNetConfig",
    "ConvNet",
    "FeatureExtractor",
    "GRUConfig",
    "LSTMConfig",
    "LeNet5",
    "LeNet5Config",
    "MLPConfig",
    "NatureCNN",
    "NatureCNNConfig",
    "RNNConfig",
    "RecurrentConfig",
    "RecurrentNet",
    "StochasticPool2d",
    "VGGConfig",
    "build_extractor",
    "count_parameters",
    "is_recurrent_config",
    "freeze_module",
    "load_pretrained",
    "observation_shape",
    "save_encoder",
    "scale_observation",
    "stochastic_pool2d",
    "summarize",
]
