"""Every configs/net option composes with its schema, passes its checks and builds an extractor."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import nets
from nets import build_extractor
from nets.configs import ENCODER_CONFIGS, LSTMConfig, MLPConfig, NatureCNNConfig
from rlcore.base.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
NET_OPTIONS = sorted(p.stem for p in (CONFIG_DIR / "net").glob("*.yaml"))
IMAGE = gym.spaces.Box(0, 255, (1, 40, 40), np.uint8)
VECTOR = gym.spaces.Box(-1, 1, (4,), np.float32)


def compose_net(*overrides: str) -> object:
    store = ConfigStore.instance()
    for name, schema in nets.SCHEMAS.items():
        store.store(group="schema/net", name=name, node=schema)  # as rlcore.config.register_configs does
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(overrides=list(overrides))
    return OmegaConf.to_object(cfg.net)


def test_every_schema_has_an_option_file() -> None:
    assert sorted(name.removesuffix("_schema") for name in nets.SCHEMAS) == NET_OPTIONS
    assert "mlp" in NET_OPTIONS and nets.SCHEMAS["mlp_schema"] is MLPConfig


@pytest.mark.parametrize("option", NET_OPTIONS)
def test_option_composes_and_builds(option: str) -> None:
    text = (CONFIG_DIR / "net" / f"{option}.yaml").read_text()
    assert f"- /schema/net/{option}_schema@_here_" in text and f"name: {option}" in text
    cfg = compose_net(f"+net={option}")
    assert type(cfg) is nets.SCHEMAS[f"{option}_schema"]
    assert cfg.name == option and cfg.pretrained is None and cfg.freeze is False
    space = VECTOR if option in ("mlp", "rnn", "lstm", "gru") else IMAGE
    net = build_extractor(cfg, space)
    obs = torch.as_tensor(np.stack([space.sample(), space.sample()]))
    if net.is_recurrent:
        obs = obs.unsqueeze(1)
    features, _ = net(obs)
    assert features.shape[-1] == net.features_dim


def test_lstm_with_nature_cnn_encoder_composes() -> None:
    cfg = compose_net(
        "+net=lstm", "net.encoder=nature_cnn", "+net.encoder_kwargs.features_dim=32", "net.hidden_size=16"
    )
    assert isinstance(cfg, LSTMConfig)
    assert cfg.encoder_config() == NatureCNNConfig(features_dim=32)
    net = build_extractor(cfg, gym.spaces.Box(0, 255, (4, 84, 84), np.uint8))
    assert isinstance(net.encoder, nets.NatureCNN) and net.encoder.features_dim == 32
    out, state = net(torch.zeros(2, 3, 4, 84, 84, dtype=torch.uint8))
    assert out.shape == (2, 3, 16) and state[0].shape == (1, 2, 16)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["+net=mlp", "net.dropout=1.5"], "net.dropout"),
        (["+net=mlp", "net.activation=swish"], "net.activation"),
        (["+net=mlp", "net.norm=group"], "net.norm"),
        (["+net=mlp", "net.init=lecun"], "net.init"),
        (["+net=mlp", "net.hidden_sizes=[0]"], "net.hidden_sizes"),
        (["+net=nature_cnn", "net.padding=full"], "net.padding"),
        (["+net=lenet5", "net.pooling=median"], "net.pooling"),
        (["+net=alexnet", "net.channels=[8,8]"], "net.channels"),
        (["+net=vgg", "net.convs_per_block=0"], "net.convs_per_block"),
        (["+net=gru", "net.hidden_size=0"], "net.hidden_size"),
        (["+net=gru", "net.encoder=resnet"], "net.encoder"),
        (["+net=gru", "net.encoder=vgg", "+net.encoder_kwargs.dropout=2.0"], "net.encoder_kwargs.dropout"),
        (["+net=gru", "+net.encoder_kwargs.depth=3"], "net.encoder_kwargs"),
    ],
)
def test_range_and_choice_checks_name_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"config key '{key}'"):
        compose_net(*overrides)


def test_recurrent_encoders_cover_every_stateless_net() -> None:
    assert set(ENCODER_CONFIGS) == {"mlp", "nature_cnn", "lenet5", "alexnet", "vgg"}


def test_build_extractor_rejects_unknown_config() -> None:
    with pytest.raises(TypeError, match="no extractor"):
        build_extractor(object(), VECTOR)
