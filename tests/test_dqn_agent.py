import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dqn import DQNAgent, DQNConfig
from nets import MLPConfig
from rlcore.base.errors import ConfigError
from rlcore.replay import ReplayBuffer

OBS = gym.spaces.Box(-1, 1, (4,), np.float32)
ACT = gym.spaces.Discrete(3)


def make(cfg: DQNConfig | None = None, seed: int = 0) -> DQNAgent:
    torch.manual_seed(seed)
    return DQNAgent(cfg or DQNConfig(), MLPConfig(hidden_sizes=[16]), OBS, ACT, total_steps=1000,
                    device=torch.device("cpu"), seed=seed)


def filled_buffer(n: int = 64) -> ReplayBuffer:
    buffer = ReplayBuffer(128, OBS, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(n):
        obs = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        buffer.add(obs, obs * 0.9, rng.integers(0, 3, 1), rng.normal(size=1), np.zeros(1), np.zeros(1))
    return buffer


def test_actions_shape_and_greedy_when_not_exploring():
    agent = make()
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 4)).astype(np.float32)
    greedy = agent.act(obs, explore=False)
    assert greedy.shape == (5,) and np.array_equal(greedy, agent.greedy_actions(obs))
    agent.epsilon = 1.0
    random_actions = np.concatenate([agent.act(obs, explore=True) for _ in range(200)])
    assert set(random_actions.tolist()) == {0, 1, 2}


def test_epsilon_schedule_follows_env_steps():
    agent = make(DQNConfig(exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.0))
    agent.advance(250)  # decay over 0.5 * 1000 steps
    assert agent.epsilon == pytest.approx(0.5)
    agent.advance(600)
    assert agent.epsilon == 0.0


def test_hard_target_sync_only_every_interval():
    agent = make(DQNConfig(target_update_interval=100, learning_starts=0, batch_size=8))
    buffer = filled_buffer()
    agent.update(buffer.sample(8))
    online, target = agent.online.head.weight, agent.target.head.weight
    assert not torch.equal(online, target)
    agent.advance(99)
    assert not torch.equal(online, target)
    agent.advance(100)
    assert torch.equal(online, target)


def test_polyak_target_update():
    agent = make(DQNConfig(target_update_interval=1, tau=0.25, batch_size=8))
    before = agent.target.head.weight.clone()
    agent.update(filled_buffer().sample(8))
    agent.advance(1)
    expected = before + 0.25 * (agent.online.head.weight - before)
    assert torch.allclose(agent.target.head.weight, expected)


def test_update_changes_weights_and_reports_metrics():
    agent = make(DQNConfig(batch_size=16, lr=1e-2))
    before = [p.clone() for p in agent.online.parameters()]
    metrics = agent.update(filled_buffer().sample(16))
    assert set(metrics) >= {"loss", "q", "grad_norm"} and torch.isfinite(metrics["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.online.parameters(), strict=True))


def test_double_dqn_update_runs():
    agent = make(DQNConfig(double=True, batch_size=16))
    assert torch.isfinite(agent.update(filled_buffer().sample(16))["loss"])


def test_save_load_gives_identical_greedy_actions_and_state():
    agent = make(DQNConfig(batch_size=16))
    buffer = filled_buffer()
    for _ in range(5):
        agent.update(buffer.sample(16))
    agent.advance(300)
    clone = make(seed=123)
    clone.load_state_dict(agent.state_dict())
    obs = np.random.default_rng(1).uniform(-1, 1, (64, 4)).astype(np.float32)
    assert np.array_equal(agent.act(obs, explore=False), clone.act(obs, explore=False))
    assert clone.epsilon == agent.epsilon and clone.env_steps == 300
    # the exploration generator continues identically too
    assert np.array_equal(agent.act(obs, explore=True), clone.act(obs, explore=True))


def test_continuous_actions_are_refused_clearly():
    with pytest.raises(ConfigError, match="Discrete action space"):
        DQNAgent(DQNConfig(), MLPConfig(), OBS, gym.spaces.Box(-1, 1, (2,)), total_steps=10, device=torch.device("cpu"))


def test_linear_learning_rate_decay():
    agent = make(DQNConfig(lr=1e-3, lr_final=0.0))  # total_steps=1000
    agent.advance(250)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(7.5e-4)
    agent.advance(1000)
    assert agent.optimizer.param_groups[0]["lr"] == 0.0
    with pytest.raises(ConfigError, match="agent.lr_final"):
        DQNConfig(lr=1e-3, lr_final=1e-2)
