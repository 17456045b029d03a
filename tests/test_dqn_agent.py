import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dqn import DQNAgent, DQNConfig
from nets import MLPConfig
from rlcore.base.batches import Batch
from rlcore.base.errors import ConfigError
from rlcore.replay import ReplayBuffer

OBS = gym.spaces.Box(-1, 1, (4,), np.float32)
ACT = gym.spaces.Discrete(3)


def make(cfg: DQNConfig | None = None, seed: int = 0) -> DQNAgent:
    torch.manual_seed(seed)
    return DQNAgent(
        cfg or DQNConfig(),
        MLPConfig(hidden_sizes=[16]),
        OBS,
        ACT,
        total_steps=1000,
        device=torch.device("cpu"),
        seed=seed,
    )


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
        DQNAgent(
            DQNConfig(),
            MLPConfig(),
            OBS,
            gym.spaces.Box(-1, 1, (2,)),
            total_steps=10,
            device=torch.device("cpu"),
        )


def test_linear_learning_rate_decay():
    agent = make(DQNConfig(lr=1e-3, lr_final=0.0))  # total_steps=1000
    agent.advance(250)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(7.5e-4)
    agent.advance(1000)
    assert agent.optimizer.param_groups[0]["lr"] == 0.0
    with pytest.raises(ConfigError, match="agent.lr_final"):
        DQNConfig(lr=1e-3, lr_final=1e-2)


# -- the TD target on hand-computed numbers ---------------------------------------------------------------
# Four states, one-hot observations; the stubbed nets return these Q tables (rows: states, columns: actions).
Q_ONLINE = [[1.0, 2.0, 3.0], [4.0, 0.0, 1.0], [0.0, 5.0, 2.0], [2.0, 3.0, 0.5]]
Q_TARGET = [[10.0, 20.0, 30.0], [7.0, 3.0, 9.0], [6.0, 1.0, 4.0], [8.0, 5.0, 2.0]]


def table_agent(double: bool, loss: str = "huber") -> tuple[DQNAgent, torch.Tensor]:
    """An agent whose online and target nets are the fixed tables above (the online one a leaf that collects
    dL/dQ, so the optimizer step has a graph to differentiate)."""
    agent = make(DQNConfig(double=double, gamma=0.5, loss=loss, batch_size=3))
    q_online = torch.tensor(Q_ONLINE, requires_grad=True)
    q_target = torch.tensor(Q_TARGET)
    agent.fast.forward_online = lambda x: (x @ q_online, None)
    agent.fast.forward_target = lambda x: (x @ q_target, None)
    return agent, q_online


def one_hot(states: list[int]) -> torch.Tensor:
    return torch.eye(4)[states]


def table_batch(discounts: list[float] | None = None) -> Batch:
    # (s, a, r, s', terminated): (0, 2, 1, 1, no), (1, 0, -1, 2, no), (2, 1, 2, 3, yes)
    return Batch(
        obs=one_hot([0, 1, 2]),
        actions=torch.tensor([2, 0, 1]),
        rewards=torch.tensor([1.0, -1.0, 2.0]),
        next_obs=one_hot([1, 2, 3]),
        terminated=torch.tensor([0.0, 0.0, 1.0]),
        discounts=None if discounts is None else torch.tensor(discounts),
        indices=np.arange(3),
    )


# Q_online(s, a) of the batch: Q_online[0][2] = 3, Q_online[1][0] = 4, Q_online[2][1] = 5.
# DQN, y = r + γ (1 - done) max_a Q_target(s', a), γ = 0.5:
#   max Q_target(1) = 9, max Q_target(2) = 6  ->  y = [1 + 0.5*9, -1 + 0.5*6, 2 + 0] = [5.5, 2.0, 2.0]
#   y - Q = [2.5, -2.0, -3.0]; Huber (|d| > 1: |d| - 0.5) = [2.0, 1.5, 2.5], mean 6.0 / 3 = 2.0
#   MSE = [6.25, 4.0, 9.0], mean 19.25 / 3
# Double DQN, y = r + γ (1 - done) Q_target(s', argmax_a Q_online(s', a)):
#   argmax Q_online(1) = 0 -> Q_target[1][0] = 7; argmax Q_online(2) = 1 -> Q_target[2][1] = 1
#   (both differ from the target net's own argmax, 2 and 0)  ->  y = [1 + 0.5*7, -1 + 0.5*1, 2] = [4.5, -0.5, 2.0]
#   y - Q = [1.5, -4.5, -3.0]; Huber = [1.0, 4.0, 2.5], mean 7.5 / 3 = 2.5
# The terminal transition (s' = 3) never bootstraps: its target is its reward, 2, in both.
@pytest.mark.parametrize(
    ("double", "loss", "targets", "expected_loss"),
    [
        (False, "huber", [5.5, 2.0, 2.0], 2.0),
        (False, "mse", [5.5, 2.0, 2.0], 19.25 / 3),
        (True, "huber", [4.5, -0.5, 2.0], 2.5),
    ],
)
def test_td_target_and_loss_on_hand_computed_numbers(double, loss, targets, expected_loss):
    agent, q_online = table_agent(double, loss)
    metrics = agent.update(table_batch())
    q_taken = torch.tensor([3.0, 4.0, 5.0])
    torch.testing.assert_close(metrics["td_errors"], torch.tensor(targets) - q_taken, rtol=0, atol=1e-6)
    assert metrics["loss"].item() == pytest.approx(expected_loss, abs=1e-6)
    assert metrics["q"].item() == pytest.approx(4.0)
    # dL/dQ(s, a) reaches only the taken actions: Huber's clip(Q - y, -1, 1) / 3, MSE's 2 (Q - y) / 3
    error = q_taken - torch.tensor(targets)
    dq = (error.clamp(-1, 1) if loss == "huber" else 2 * error) / 3
    expected_grad = torch.zeros(4, 3)
    expected_grad[[0, 1, 2], [2, 0, 1]] = dq
    torch.testing.assert_close(q_online.grad, expected_grad, rtol=0, atol=1e-6)


# n-step returns: the replay gives the discounted reward sum and γ^n per sample; the agent uses that γ^n.
# Discounts [0.125 (n = 3), 0.25 (n = 2), 0.5] and the same rewards (already the n-step sums):
#   DQN:    y = [1 + 0.125*9, -1 + 0.25*6, 2] = [2.125, 0.5, 2.0]; y - Q = [-0.875, -3.5, -3.0]
#           Huber = [0.5 * 0.875**2 = 0.3828125, 3.0, 2.5], mean 5.8828125 / 3
#   Double: y = [1 + 0.125*7, -1 + 0.25*1, 2] = [1.875, -0.75, 2.0]; y - Q = [-1.125, -4.75, -3.0]
#           Huber = [0.625, 4.25, 2.5], mean 7.375 / 3
@pytest.mark.parametrize(
    ("double", "targets", "expected_loss"),
    [(False, [2.125, 0.5, 2.0], 5.8828125 / 3), (True, [1.875, -0.75, 2.0], 7.375 / 3)],
)
def test_n_step_td_target_uses_the_per_sample_discounts(double, targets, expected_loss):
    agent, _ = table_agent(double)
    metrics = agent.update(table_batch(discounts=[0.125, 0.25, 0.5]))
    torch.testing.assert_close(
        metrics["td_errors"], torch.tensor(targets) - torch.tensor([3.0, 4.0, 5.0]), rtol=0, atol=1e-6
    )
    assert metrics["loss"].item() == pytest.approx(expected_loss, abs=1e-6)


@pytest.mark.parametrize("double", [False, True])
def test_update_round_gives_the_same_targets(double):
    # a round computes Q_target(s') (and, plain DQN, the targets) of all its batches in one pass
    one_step = [4.5, -0.5, 2.0] if double else [5.5, 2.0, 2.0]
    n_step = [1.875, -0.75, 2.0] if double else [2.125, 0.5, 2.0]  # the discounts [0.125, 0.25, 0.5] above
    discounts = [0.125, 0.25, 0.5]
    for batches, expected in [
        ([table_batch(), table_batch()], one_step),
        ([table_batch(discounts), table_batch(discounts)], n_step),
    ]:
        agent, _ = table_agent(double)
        for metrics in agent.update_round(batches):
            torch.testing.assert_close(
                metrics["td_errors"],
                torch.tensor(expected) - torch.tensor([3.0, 4.0, 5.0]),
                rtol=0,
                atol=1e-6,
            )
