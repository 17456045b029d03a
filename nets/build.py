"""``build_extractor``: from a net config (one of :mod:`nets.configs`) and an observation space to a module."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

from nets.base import FeatureExtractor
from nets.cnn import VGG, AlexNet, LeNet5, NatureCNN, image_shape
from nets.configs import (
    AlexNetConfig,
    Conv1dConfig,
    JordanConfig,
    LeNet5Config,
    LISTAConfig,
    MLPConfig,
    NatureCNNConfig,
    RecurrentConfig,
    VGGConfig,
)
from nets.jordan import JordanNet
from nets.mlp import MLP
from nets.pretrained import freeze_module, load_pretrained
from nets.recurrent import RecurrentNet, RowSequenceNet
from nets.sparse_coding import LISTA
from nets.temporal import Conv1dNet


def _build(cfg: object, space: gym.Space | Sequence[int]) -> FeatureExtractor:
    if isinstance(cfg, MLPConfig):
        return MLP(
            space,
            hidden_sizes=cfg.hidden_sizes,
            activation=cfg.activation,
            dropout=cfg.dropout,
            norm=cfg.norm,
            init=cfg.init,
        )
    if isinstance(cfg, NatureCNNConfig):
        return NatureCNN(
            space,
            features_dim=cfg.features_dim,
            padding=cfg.padding,
            batch_norm=cfg.batch_norm,
            dropout=cfg.dropout,
            dilation=cfg.dilation,
        )
    if isinstance(cfg, LeNet5Config):
        return LeNet5(
            space,
            features_dim=cfg.features_dim,
            activation=cfg.activation,
            pooling=cfg.pooling,
            padding=cfg.padding,
            batch_norm=cfg.batch_norm,
            dropout=cfg.dropout,
            dilation=cfg.dilation,
        )
    if isinstance(cfg, AlexNetConfig):
        return AlexNet(
            space,
            channels=cfg.channels,
            features_dim=cfg.features_dim,
            pooling=cfg.pooling,
            padding=cfg.padding,
            batch_norm=cfg.batch_norm,
            dropout=cfg.dropout,
            dilation=cfg.dilation,
        )
    if isinstance(cfg, VGGConfig):
        return VGG(
            space,
            channels=cfg.channels,
            convs_per_block=cfg.convs_per_block,
            features_dim=cfg.features_dim,
            pooling=cfg.pooling,
            padding=cfg.padding,
            batch_norm=cfg.batch_norm,
            dropout=cfg.dropout,
            dilation=cfg.dilation,
        )
    if isinstance(cfg, Conv1dConfig):
        return Conv1dNet(
            space,
            channels=cfg.channels,
            kernel_size=cfg.kernel_size,
            dilations=cfg.dilations,
            padding=cfg.padding,
            activation=cfg.activation,
            features_dim=cfg.features_dim,
            dropout=cfg.dropout,
        )
    if isinstance(cfg, LISTAConfig):
        return LISTA(space, atoms=cfg.atoms, iterations=cfg.iterations)
    if isinstance(cfg, RecurrentConfig) and cfg.rows:
        shape = image_shape(space, "net.rows=true")
        return RowSequenceNet(shape, _recurrent(cfg, (shape[0] * shape[2],)))
    if isinstance(cfg, RecurrentConfig):
        return _recurrent(cfg, space)
    raise TypeError(f"no extractor for net config {type(cfg).__name__}")


def _recurrent(cfg: RecurrentConfig, space: gym.Space | Sequence[int]) -> FeatureExtractor:
    """The per-frame encoder for ``space``, then Jordan's network or an Elman RNN / LSTM / GRU."""
    encoder = build_extractor(cfg.encoder_config(), space)
    if isinstance(cfg, JordanConfig):
        return JordanNet(encoder, cfg.hidden_size, cfg.output_size, cfg.context_decay)
    return RecurrentNet(encoder, cell=cfg.name, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers)


def build_extractor(cfg: object, observation_space: gym.Space | Sequence[int]) -> FeatureExtractor:
    """Build the feature extractor that ``cfg`` describes, then apply its ``pretrained`` and ``freeze``.

    ``freeze`` without ``pretrained`` freezes the random initial weights (fixed random features).
    """
    net = _build(cfg, observation_space)
    pretrained = getattr(cfg, "pretrained", None)
    if pretrained:
        load_pretrained(net, pretrained, freeze=bool(getattr(cfg, "freeze", False)))
    elif getattr(cfg, "freeze", False):
        freeze_module(net)
    return net
