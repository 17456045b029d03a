"""Convolution variants: net.dilation on the CNN extractors (output and minimum sizes, the autoencoder's
mirror), the conv1d temporal-conv extractor (output sizes over a frame stack and over image rows), and
env.frame_stack for classic-control envs."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import compose_many
from test_nets_configs import compose_net
from torch import nn

import envs
from envs import make_env
from nets import VGG, AlexNet, LeNet5, NatureCNN, build_extractor
from nets.autoencoder import build_decoder
from nets.cnn import conv_unit, minimum_input_size
from nets.configs import Conv1dConfig, LeNet5Config
from nets.temporal import Conv1dNet, minimum_length
from rlcore.base.errors import ConfigError
from rlcore.config import to_typed

torch.set_num_threads(1)
envs.register_gym_ids()


def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    """PyTorch's Conv2d output size: floor((n + 2p - d(k - 1) - 1) / s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_dilated_lenet5_trunk_sizes_by_hand(dilation: int) -> None:
    net = LeNet5((1, 44, 44), dilation=dilation)
    convs = [m for m in net.trunk if isinstance(m, nn.Conv2d)]
    assert all(c.dilation == (dilation, dilation) for c in convs)
    n = conv_out(44, 5, 1, 0, dilation)  # C1, valid
    n = n // 2  # S2
    n = conv_out(n, 5, 1, 0, dilation) // 2  # C3, S4
    assert net.trunk_output_shape == (16, n, n)
    assert net.head[1].in_features == 16 * n * n  # the flatten size follows the dilation
    assert net(torch.zeros(2, 1, 44, 44))[0].shape == (2, 84)
    # by hand: d=1 44 -> 40 -> 20 -> 16 -> 8; d=2 44 -> 36 -> 18 -> 10 -> 5; d=3 44 -> 32 -> 16 -> 4 -> 2
    assert n == {1: 8, 2: 5, 3: 2}[dilation]


def test_same_padding_keeps_sizes_when_dilated() -> None:
    unit = nn.Sequential(*conv_unit(1, 4, 3, 1, "same", False, dilation=4))
    assert unit(torch.zeros(1, 1, 20, 17)).shape == (1, 4, 20, 17)
    assert unit[0].padding == (4, 4)  # d * (k - 1) // 2
    # the dilated field of 9 pixels does not need a bigger input with 'same' padding
    assert minimum_input_size(unit) == (1, 1)
    assert minimum_input_size(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=4))) == (9, 9)


@pytest.mark.parametrize(
    ("cls", "kwargs", "sizes"),
    [
        (NatureCNN, {"features_dim": 8, "dilation": 2}, [71, 84]),
        (NatureCNN, {"features_dim": 8, "dilation": 2, "padding": "same"}, [28, 84]),
        (LeNet5, {"dilation": 2, "padding": "same", "pooling": "max"}, [28, 32]),
        (AlexNet, {"channels": [4, 4, 4, 4, 4], "features_dim": 8, "dilation": 2}, [28, 40]),
        (VGG, {"channels": [4, 8], "features_dim": 8, "dilation": 3}, [28, 33]),
    ],
)
def test_dilated_cnns_output_features_and_decode_to_the_input_shape(
    cls: type, kwargs: dict, sizes: list[int]
) -> None:
    for size in sizes:
        net = cls((2, size, size), **kwargs)
        assert net(torch.zeros(3, 2, size, size))[0].shape == (3, net.features_dim)
        decoder = build_decoder(net)
        assert decoder(torch.zeros(3, net.features_dim)).shape == (3, 2, size, size)


def test_dilated_minimum_input_is_named() -> None:
    NatureCNN((1, 71, 71), dilation=2)  # 8x8/4 dilated by 2 spans 15 pixels: 71 is the smallest input
    with pytest.raises(ValueError, match=r"at least 71x71.*\(1, 70, 70\)"):
        NatureCNN((1, 70, 70), dilation=2)


def test_dilation_option_composes_and_is_checked() -> None:
    cfg = compose_net("+net=lenet5", "net.dilation=2", "net.padding=same")
    assert isinstance(cfg, LeNet5Config) and cfg.dilation == 2
    net = build_extractor(cfg, (1, 28, 28))
    assert all(m.dilation == (2, 2) for m in net.trunk if isinstance(m, nn.Conv2d))
    for option in ("nature_cnn", "lenet5", "alexnet", "vgg"):
        with pytest.raises(ConfigError, match=r"config key 'net.dilation'"):
            compose_net(f"+net={option}", "net.dilation=0")


# -- conv1d ------------------------------------------------------------------------------------------------


def test_conv1d_over_a_frame_stack_sizes() -> None:
    net = Conv1dNet((4, 2), channels=[8, 6], kernel_size=3, dilations=[1, 2], features_dim=5)
    convs = [m for m in net.trunk if isinstance(m, nn.Conv1d)]
    assert [c.in_channels for c in convs] == [2, 8] and [c.dilation for c in convs] == [(1,), (2,)]
    assert net.sequence_shape == (2, 4) and net.trunk_output_shape == (6, 4)  # 'same' keeps 4 steps
    features, state = net(torch.randn(3, 4, 2))
    assert features.shape == (3, 5) and state is None and not net.is_recurrent
    valid = Conv1dNet((7, 2), channels=[8, 6], kernel_size=3, dilations=[1, 2], padding="valid")
    assert valid.trunk_output_shape == (6, 7 - 2 - 4)  # each valid conv eats d * (k - 1) steps
    assert minimum_length(3, [1, 2], "valid") == 7


def test_conv1d_convolves_over_time_not_over_features() -> None:
    """Each kernel tap sees all features of one time step: a kernel of 1 acts on every step alike."""
    net = Conv1dNet((5, 3), channels=[4], kernel_size=1, dilations=[1], features_dim=2)
    x = torch.randn(1, 5, 3)
    per_step = net.trunk(x.transpose(1, 2))  # (1, 4, 5)
    for t in range(5):
        torch.testing.assert_close(per_step[0, :, t], net.trunk(x[:, t].unsqueeze(-1))[0, :, 0])


def test_conv1d_over_image_rows() -> None:
    net = Conv1dNet((1, 28, 28), channels=[16], kernel_size=5, dilations=[1], features_dim=10)
    assert net.sequence_shape == (28, 28)  # 28 rows of 28 pixels: rows are time, a row's pixels channels
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    out, _ = net(images)
    assert out.shape == (2, 10)
    rows = images.float().div(255)[:, 0]  # (B, 28 rows, 28 pixels) as a (time, features) sequence
    torch.testing.assert_close(out, Conv1dNet.extract(net, rows.unsqueeze(1)))
    colour = Conv1dNet((3, 10, 6), channels=[4], dilations=[1])
    assert colour.sequence_shape == (18, 10)


def test_conv1d_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match=r"env.frame_stack=k"):
        Conv1dNet((2,))
    with pytest.raises(ValueError, match=r"at least 7 steps.*\(6, 2\)"):
        Conv1dNet((6, 2), dilations=[1, 2], padding="valid")
    for overrides, key in [
        (["net.dilations=[1]"], "net.dilations"),
        (["net.channels=[]", "net.dilations=[]"], "net.channels"),
        (["net.kernel_size=0"], "net.kernel_size"),
        (["net.padding=full"], "net.padding"),
        (["net.activation=swish"], "net.activation"),
    ]:
        with pytest.raises(ConfigError, match=rf"config key '{key}'"):
            compose_net("+net=conv1d", *overrides)
    assert isinstance(compose_net("+net=conv1d"), Conv1dConfig)


# -- env.frame_stack ---------------------------------------------------------------------------------------


def test_frame_stack_holds_the_last_k_observations() -> None:
    typed = to_typed(compose_many([["env=CartPoleNoVel", "net=conv1d", "env.rescale_obs=null"]])[0])
    assert typed.env.frame_stack == 4  # configs/tuned_net/CartPoleNoVel_conv1d.yaml
    vec = make_env(typed.env, seed=3)
    assert vec.single_observation_space.shape == (4, 2)
    raw = gym.make("rlcore/CartPoleNoVel-v0")
    first, _ = raw.reset(seed=3)
    obs, _ = vec.reset(seed=3)
    np.testing.assert_allclose(obs[0], np.stack([first] * 4))  # padded with the episode's first observation
    seen = [first]
    for _ in range(3):
        obs, *_ = vec.step(np.array([1]))
        seen.append(raw.step(1)[0])
    np.testing.assert_allclose(obs[0], np.stack(seen[-4:]), rtol=1e-6)  # oldest first


def test_bad_frame_stack_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'env.frame_stack': must be > 0"):
        to_typed(compose_many([["env=CartPole", "env.frame_stack=0"]])[0])


def test_cli_trains_dqn_with_conv1d_over_stacked_observations(cli, tmp_path) -> None:
    run = tmp_path / "run"
    done = cli(
        "train.py",
        "env=CartPoleNoVel",
        "net=conv1d",
        "total_steps=300",
        "agent.learning_starts=100",
        "agent.train_freq=50",
        "agent.gradient_steps=2",
        "eval_every=300",
        "eval_episodes=1",
        "final_eval_episodes=1",
        "logger=none",
        f"run_dir={run}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["net"] == "conv1d" and summary["updates"] > 0
    evaluated = cli("evaluate.py", f"run={run}", "episodes=1")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
