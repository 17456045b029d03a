"""Feature extractors usable by every agent, by Stable-Baselines3 and by plain PyTorch code.

``build_extractor(net_cfg, observation_space)`` is how agents get one from a config; each net class can also
be built directly (``from nets import MLP, NatureCNN``). The SB3 adapter lives in :mod:`nets.sb3` and the
autoencoder pieces in :mod:`nets.autoencoder`.

The names below load their module on first use (PEP 562), so ``import nets.configs`` (the config schemas,
what validating a config needs) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlcore.base.lazy import lazy_exports

if TYPE_CHECKING:
    from nets.base import FeatureExtractor, observation_shape, scale_observation
    from nets.build import build_extractor
    from nets.cnn import VGG, AlexNet, ConvNet, LeNet5, NatureCNN
    from nets.configs import (
        NET_CONFIGS,
        SCHEMAS,
        AlexNetConfig,
        GRUConfig,
        LeNet5Config,
        LISTAConfig,
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
    from nets.rbm import DBN, RBM
    from nets.recurrent import RecurrentNet
    from nets.sparse_coding import LISTA
    from nets.summary import count_parameters, summarize

_MODULES = {
    "nets.base": ("FeatureExtractor", "observation_shape", "scale_observation"),
    "nets.build": ("build_extractor",),
    "nets.cnn": ("VGG", "AlexNet", "ConvNet", "LeNet5", "NatureCNN"),
    "nets.configs": (
        "NET_CONFIGS",
        "SCHEMAS",
        "AlexNetConfig",
        "GRUConfig",
        "LeNet5Config",
        "LISTAConfig",
        "LSTMConfig",
        "MLPConfig",
        "NatureCNNConfig",
        "RBM",
        "RecurrentConfig",
        "RNNConfig",
        "VGGConfig",
        "is_recurrent_config",
    ),
    "nets.mlp": ("ACTIVATIONS", "MLP"),
    "nets.pooling": ("StochasticPool2d", "stochastic_pool2d"),
    "nets.pretrained": ("freeze_module", "load_pretrained", "save_encoder"),
    "nets.rbm": ("DBN", "RBM"),
    "nets.recurrent": ("RecurrentNet",),
    "nets.sparse_coding": ("LISTA",),
    "nets.summary": ("count_parameters", "summarize"),
}
__all__ = [
    "ACTIVATIONS",
    "AlexNet",
    "AlexNetConfig",
    "ConvNet",
    "DBN",
    "FeatureExtractor",
    "GRUConfig",
    "LSTMConfig",
    "LeNet5",
    "LeNet5Config",
    "LISTA",
    "LISTAConfig",
    "MLP",
    "MLPConfig",
    "NET_CONFIGS",
    "NatureCNN",
    "NatureCNNConfig",
    "RBM",
    "RNNConfig",
    "RecurrentConfig",
    "RecurrentNet",
    "SCHEMAS",
    "StochasticPool2d",
    "VGG",
    "VGGConfig",
    "build_extractor",
    "count_parameters",
    "freeze_module",
    "is_recurrent_config",
    "load_pretrained",
    "observation_shape",
    "save_encoder",
    "scale_observation",
    "stochastic_pool2d",
    "summarize",
]


__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
