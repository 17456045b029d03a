"""Jordan's network (net=jordan): hand-computed steps, the context is the previous output (not the hidden
layer), resets on episode starts, single steps equal one sequence, stored-state round trip, rows, config."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_nets_configs import compose_net

from agents.dqn import DQNConfig
from agents.drqn import DRQNAgent
from nets import MLP, build_extractor
from nets.configs import JordanConfig, is_recurrent_config
from nets.jordan import JordanNet
from nets.recurrent import RowSequenceNet, flatten_state
from rlcore.base.errors import ConfigError

torch.set_num_threads(1)


def make(hidden: int = 5, output: int = 3, decay: float = 0.0) -> JordanNet:
    torch.manual_seed(0)
    return JordanNet(MLP((2,), hidden_sizes=[4]), hidden_size=hidden, output_size=output, context_decay=decay)


def scalar_net(a: float, c: float, w: float, decay: float = 0.0) -> JordanNet:
    """One input, one hidden unit, one output; identity encoder, zero biases."""
    net = JordanNet(MLP((1,), hidden_sizes=[]), hidden_size=1, output_size=1, context_decay=decay)
    with torch.no_grad():
        net.input_to_hidden.weight.fill_(a)
        net.input_to_hidden.bias.zero_()
        net.context_to_hidden.weight.fill_(c)
        net.hidden_to_output.weight.fill_(w)
        net.hidden_to_output.bias.zero_()
    return net


def test_steps_by_hand() -> None:
    net = scalar_net(a=0.5, c=2.0, w=1.5)
    out, state = net(torch.tensor([[[1.0], [-2.0], [0.5]]]))
    y1 = math.tanh(1.5 * math.tanh(0.5 * 1.0))  # no previous output at the first step
    y2 = math.tanh(1.5 * math.tanh(0.5 * -2.0 + 2.0 * y1))  # the hidden layer sees y1 through W_c = 2
    y3 = math.tanh(1.5 * math.tanh(0.5 * 0.5 + 2.0 * y2))
    torch.testing.assert_close(out.flatten(), torch.tensor([y1, y2, y3]))
    assert state.shape == (1, 1, 1) and state.item() == pytest.approx(y3)


def test_context_decay_keeps_a_decaying_sum_of_outputs() -> None:
    """Jordan 1986's self-connected state units: c_{t+1} = μ c_t + y_t."""
    net = scalar_net(a=0.5, c=2.0, w=1.5, decay=0.5)
    out, state = net(torch.tensor([[[1.0], [-2.0]]]))
    y1 = math.tanh(1.5 * math.tanh(0.5))
    c2 = y1  # 0.5 * 0 + y1
    y2 = math.tanh(1.5 * math.tanh(-1.0 + 2.0 * c2))
    torch.testing.assert_close(out.flatten(), torch.tensor([y1, y2]))
    assert state.item() == pytest.approx(0.5 * c2 + y2)


def test_the_context_is_the_previous_output_not_the_hidden_layer() -> None:
    net = make(hidden=5, output=3)
    assert net.is_recurrent and net.features_dim == 3 and net.state_size == 3
    obs = torch.randn(4, 6, 2)
    out, state = net(obs)
    assert out.shape == (4, 6, 3) and state.shape == (1, 4, 3)  # output-sized, not hidden-sized (5)
    torch.testing.assert_close(state[0], out[:, -1])
    # Step t with the context set to output t-1 gives output t; any other context gives something else.
    for t in range(1, 6):
        step, after = net(obs[:, t], out[:, t - 1].unsqueeze(0))
        torch.testing.assert_close(step, out[:, t])
        torch.testing.assert_close(after[0], step)
    other, _ = net(obs[:, 3], torch.zeros(1, 4, 3))
    assert not torch.allclose(other, out[:, 3])


def test_single_steps_equal_one_sequence() -> None:
    net = make(decay=0.3)
    obs = torch.randn(3, 7, 2)
    starts = torch.zeros(3, 7, dtype=torch.bool)
    starts[0, 2] = starts[2, 5] = starts[1, 0] = True
    seq, seq_state = net(obs, None, starts)
    state, steps = None, []
    for t in range(7):
        out, state = net(obs[:, t], state, starts[:, t])
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), seq)
    torch.testing.assert_close(state, seq_state)


def test_start_resets_to_fresh_state() -> None:
    net = make()
    obs = torch.randn(2, 6, 2)
    starts = torch.zeros(2, 6, dtype=torch.bool)
    starts[0, 3] = True
    _, carried = net(torch.randn(2, 4, 2))  # a non-zero context to start from
    out, _ = net(obs, carried, starts)
    fresh, _ = net(obs[:1, 3:])  # row 0 from its episode start, no previous output
    torch.testing.assert_close(out[:1, 3:], fresh)
    whole, _ = net(obs[1:], carried[:, 1:])  # row 1 carried on unaffected
    torch.testing.assert_close(out[1:], whole)
    assert not torch.allclose(out[:1, 3:], net(obs[:1, 3:], carried[:, :1])[0])


def test_flat_state_round_trip_and_bad_shapes() -> None:
    net = make()
    _, state = net(torch.randn(4, 3, 2))
    flat = flatten_state(state)
    assert flat.shape == (4, net.state_size)
    assert torch.equal(net.unflatten_state(flat), state)
    assert not net.initial_state(2).any()
    with pytest.raises(ValueError, match="expected observations"):
        net(torch.randn(2, 3, 4, 2))
    with pytest.raises(ValueError, match="starts must have shape"):
        net(torch.randn(2, 4, 2), None, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="stateless"):
        JordanNet(net)
    with pytest.raises(ValueError, match="context_decay"):
        JordanNet(MLP((2,), hidden_sizes=[4]), context_decay=1.0)


def test_rows_read_an_image_as_a_sequence() -> None:
    cfg = JordanConfig(rows=True, encoder_kwargs={"hidden_sizes": []}, hidden_size=8, output_size=5)
    assert not is_recurrent_config(cfg)  # each image is a whole sequence: a feed-forward extractor to agents
    net = build_extractor(cfg, (1, 28, 28))
    assert isinstance(net, RowSequenceNet) and isinstance(net.rows, JordanNet) and not net.is_recurrent
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    out, state = net(images)
    assert out.shape == (3, 5) and state is None
    rows_out, _ = net.rows(images[:, 0].float() / 255)  # (B, 28 rows, 28 pixels)
    torch.testing.assert_close(out, rows_out[:, -1])


def test_config_composes_and_bad_options_name_the_key() -> None:
    cfg = compose_net("+net=jordan", "net.output_size=7", "net.context_decay=0.5")
    assert isinstance(cfg, JordanConfig) and is_recurrent_config(cfg)
    net = build_extractor(cfg, (2,))
    assert isinstance(net, JordanNet) and net.features_dim == 7 and net.context_decay == 0.5
    for overrides, key in [
        (["net.num_layers=2"], "net.num_layers"),
        (["net.output_size=0"], "net.output_size"),
        (["net.context_decay=1.0"], "net.context_decay"),
        (["net.name=lstm"], "net.name"),
        (["net.encoder=resnet"], "net.encoder"),
    ]:
        with pytest.raises(ConfigError, match=rf"config key '{key}'"):
            compose_net("+net=jordan", *overrides)


def test_drqn_carries_and_resets_the_jordan_context() -> None:
    torch.manual_seed(0)
    cfg = DQNConfig(batch_size=8, sequence_length=5, burn_in=3, stored_state=True)
    net_cfg = JordanConfig(encoder_kwargs={"hidden_sizes": [8]}, hidden_size=6, output_size=4)
    space = gym.spaces.Box(-5, 5, (2,), np.float32)
    agent = DRQNAgent(
        cfg, net_cfg, space, gym.spaces.Discrete(3), total_steps=100, device=torch.device("cpu")
    )
    assert agent.state_size == 4
    obs = np.array([[0.3, -0.2], [1.0, 0.5]], np.float32)
    agent.act(obs, explore=False)
    q, _ = agent.online(torch.as_tensor(obs))  # the first step's Q from a fresh context
    features, _ = agent.online.extractor(torch.as_tensor(obs))
    torch.testing.assert_close(agent.hidden[0], features)  # the carried state is the output just produced
    agent.reset_state(np.array([True, False]))
    stored = agent.replay_state(2)
    assert stored.shape == (2, 4) and not stored[0].any() and stored[1].any()
    assert q.shape == (2, 3)


def test_cli_trains_drqn_with_a_jordan_net(cli, tmp_path) -> None:
    run = tmp_path / "run"
    done = cli(
        "train.py",
        "env=CartPoleNoVel",
        "net=jordan",
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
    assert summary["net"] == "jordan" and summary["updates"] > 0
