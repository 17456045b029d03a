"""DRQN with the DQN switches: n-step targets inside replayed windows, prioritized replay over training
starts (R2D2's η-mix priorities, importance weights, proportional sampling), and agent=rainbow_lite on a
recurrent net from the command line."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers rlcore/CartPoleNoVel-v0)
from agents.dqn import DQNConfig
from agents.drqn import DRQNAgent
from agents.q_learning import masked_q_loss, td_target
from agents.sequence_targets import PRIORITY_ETA, sequence_nstep_targets, sequence_priorities
from nets.configs import RecurrentConfig
from nets.recurrent import unflatten_state
from rlcore.base.checkpoint import atomic_torch_save
from rlcore.replay import ReplayBuffer
from rlcore.replay.sequences import SequenceReplay
from rlcore.replay.sum_tree import PrioritizedSampler
from rlcore.training.learner import Learner, UpdateMetrics

TAGGED = gym.spaces.Box(-1e6, 1e6, (3,), np.float32)  # obs = (env, episode, step)
OBS2 = gym.spaces.Box(-5, 5, (2,), np.float32)


def test_nstep_targets_by_hand():
    """n = 3, γ = 0.5 on four hand-built windows of 7 steps; next_values[t] = V(next obs of step t)."""
    r = torch.arange(1.0, 8.0).repeat(4, 1)  # rewards 1..7
    v = torch.arange(10.0, 80.0, 10.0).repeat(4, 1)  # V(s_{t+1}) = 10, 20, ..., 70
    valid = torch.tensor(
        [
            [1, 1, 1, 0, 0, 0, 0],  # terminated at step 2 (then another episode: right padding)
            [1, 1, 1, 1, 0, 0, 0],  # truncated at step 3: its next obs is the real final one, bootstrapped
            [1, 1, 1, 1, 1, 1, 1],  # no end: the window's right edge shortens the last returns
            [1, 1, 1, 1, 1, 1, 1],  # a life loss (terminated, the episode goes on) at step 1
        ],
        dtype=torch.float32,
    )
    term = torch.zeros(4, 7)
    term[0, 2] = term[3, 1] = 1.0
    y = sequence_nstep_targets(r, term, valid, v, n=3, gamma=0.5)
    # row 0: 1 + .5·2 + .25·3 (terminal: no bootstrap) | 2 + .5·3 | 3
    torch.testing.assert_close(y[0, :3], torch.tensor([2.75, 3.5, 3.0]))
    # row 1: 2.75 + .125·V(s3)=30 | 2 + 1.5 + .25·4 + .125·40 | 3 + .5·4 + .25·40 (2 steps) | 4 + .5·40
    torch.testing.assert_close(y[1, :4], torch.tensor([6.5, 9.5, 15.0, 24.0]))
    # row 2: full 3 steps up to step 4, then 2 and 1 steps at the edge bootstrapping from V=70
    torch.testing.assert_close(y[2, 4:], torch.tensor([5 + 3 + 1.75 + 8.75, 6 + 3.5 + 17.5, 7 + 35.0]))
    torch.testing.assert_close(y[2, 0], torch.tensor(1 + 1 + 0.75 + 0.125 * 30))
    # row 3: the life loss stops the return from steps 0 and 1; from step 2 the walk goes on
    torch.testing.assert_close(y[3, :3], torch.tensor([1 + 1.0, 2.0, 3 + 2 + 1.25 + 0.125 * 50]))
    assert torch.isfinite(y).all()  # padding columns too (masked out by the loss)


def test_one_step_targets_are_the_dqn_td_target():
    g = torch.Generator().manual_seed(0)
    r, v = torch.randn(5, 9, generator=g), torch.randn(5, 9, generator=g)
    term = (torch.rand(5, 9, generator=g) < 0.3).float()
    y = sequence_nstep_targets(r, term, torch.ones(5, 9), v, n=1, gamma=0.9)
    torch.testing.assert_close(y, td_target(r, v, term, 0.9))


def fill(replays: list, steps: int, n_envs: int, seed: int = 0) -> None:
    """The same random episodes (time-limit and terminal ends) into every replay; obs tagged (env, episode, step)."""
    rng = np.random.default_rng(seed)
    episode, t = np.zeros(n_envs), np.zeros(n_envs)
    for _ in range(steps):
        obs = np.stack([np.arange(n_envs), episode, t], axis=1).astype(np.float32)
        end = rng.random(n_envs) < 0.12
        term = end & (rng.random(n_envs) < 0.5)
        args = (obs, obs + [0, 0, 1], rng.integers(0, 2, n_envs), rng.normal(size=n_envs), term, end & ~term)
        for replay in replays:
            replay.add(*args)
        t, episode = np.where(end, 0, t + 1), episode + end


def value(obs: torch.Tensor) -> torch.Tensor:
    return obs @ torch.tensor([0.3, -0.2, 0.1])


@pytest.mark.parametrize(("n_envs", "capacity", "steps"), [(1, 400, 150), (3, 150, 333)])
def test_window_targets_match_the_flat_replays_nstep_walk(n_envs, capacity, steps):
    """Every trained step's n-step target from its window equals the flat replay's n-step transition at the
    same buffer position (episode ends, time limits, the write head, wrap-around), thanks to the lookahead."""
    n, gamma, burn_in, length = 4, 0.9, 2, 5
    flat = ReplayBuffer(capacity, TAGGED, n_envs=n_envs, n_step=n, gamma=gamma)
    seq = SequenceReplay(ReplayBuffer(capacity, TAGGED, n_envs=n_envs), burn_in, length, lookahead=n - 1)
    fill([flat, seq], steps, n_envs)
    rng = np.random.default_rng(1)
    start, env = rng.integers(0, seq.filled, 300), rng.integers(0, n_envs, 300)
    batch = seq.gather(start, env)
    assert (
        batch.obs.shape[1] == burn_in + length + n - 1 + 1 and (batch.valid[:, burn_in + length :] > 0).any()
    )
    assert not batch.mask[:, burn_in + length :].any()  # the lookahead is never trained
    y = sequence_nstep_targets(
        batch.rewards[:, burn_in:],
        batch.terminated[:, burn_in:],
        batch.valid[:, burn_in:],
        value(batch.obs[:, burn_in + 1 :]),
        n,
        gamma,
    )
    oldest = seq.pos if seq.filled == seq.rows else 0
    checked = 0
    for c in range(length):
        rows = np.flatnonzero(batch.mask[:, burn_in + c].numpy())
        positions = ((oldest + start[rows] + c) % seq.rows) * n_envs + env[rows]
        ref = flat.gather(positions)
        torch.testing.assert_close(
            y[rows, c], td_target(ref.rewards, value(ref.next_obs), ref.terminated, ref.discounts)
        )
        checked += len(rows)
    assert checked > 600


def test_sequence_priorities_and_weighted_loss_by_hand():
    errors = torch.tensor([[1.0, -3.0, 2.0, 100.0], [-0.5, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    p = sequence_priorities(errors, mask)  # the masked error (100) does not count
    torch.testing.assert_close(p, torch.tensor([0.9 * 3 + 0.1 * 2, 0.5]))
    assert PRIORITY_ETA == 0.9
    torch.testing.assert_close(sequence_priorities(errors, mask, eta=0.0), torch.tensor([2.0, 0.5]))
    q, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.5, 0.0], [3.0, 0.0]])
    m = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # huber per step: 0.125, 1.5 (sequence 0, weight 0.5) and 2.5 (sequence 1, weight 1); 3 trained steps
    loss = masked_q_loss(q, target, m, "huber", torch.tensor([0.5, 1.0]))
    assert loss.item() == pytest.approx((0.5 * (0.125 + 1.5) + 2.5) / 3)


def prioritized_replay(alpha: float = 1.0, total_steps: int = 1000, **kwargs) -> SequenceReplay:
    sampler = PrioritizedSampler(40, alpha=alpha, beta0=0.4, eps=1e-6, total_steps=total_steps, seed=5)
    return SequenceReplay(ReplayBuffer(40, TAGGED, n_envs=2), 2, 3, sampler=sampler, seed=4, **kwargs)


def test_training_starts_are_sampled_in_proportion_to_their_priority():
    replay = prioritized_replay()
    fill([replay], 20, 2)  # every position written once
    assert np.all(replay.sampler.tree.get(np.arange(40)) == 1.0)  # new starts: the max priority (1 at first)
    priorities = np.random.default_rng(0).uniform(0.1, 4.0, 40)
    replay.update_priorities(np.arange(40), priorities)
    counts = np.zeros(40)
    for _ in range(50):
        batch = replay.sample(400)
        np.add.at(counts, batch.indices, 1)
        tags = batch.obs[:, replay.burn_in].numpy()  # the training start is the sampled position's step
        np.testing.assert_array_equal(tags[:, 0], batch.indices % 2)
    expected = priorities / priorities.sum()
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.006)  # 20,000 draws: σ ≲ 0.0014
    beta = 0.4 + 0.6 * 40 / 1000
    weights = replay.gather_positions(np.arange(40)).weights.numpy()
    np.testing.assert_allclose(weights, (priorities / priorities.min()) ** -beta, rtol=1e-5)
    fill([replay], 1, 2, seed=3)  # overwrites row 0: those starts get the largest priority so far
    np.testing.assert_allclose(replay.sampler.tree.get(np.array([0, 1])), priorities.max() + 1e-6)


def naive_target(r, term, valid, v, t: int, n: int, gamma: float) -> float:
    """The n-step walk from step t, one step at a time (the reference)."""
    total = 0.0
    for k in range(n):
        j = t + k
        total += gamma**k * r[j]
        if term[j]:
            return total
        if k == n - 1 or j + 1 >= len(r) or not valid[j + 1]:
            return total + gamma ** (k + 1) * v[j]
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("cell", "double"), [("lstm", False), ("gru", True)])
def test_prioritized_nstep_update_matches_a_step_by_step_unroll_and_sets_priorities(cell, double):
    torch.manual_seed(0)
    net = RecurrentConfig(name=cell, encoder="mlp", encoder_kwargs={"hidden_sizes": [8]}, hidden_size=6)
    cfg = DQNConfig(
        batch_size=8,
        sequence_length=5,
        burn_in=3,
        n_step=3,
        prioritized=True,
        double=double,
        dueling=True,
        stored_state=True,
        gamma=0.9,
    )
    agent = DRQNAgent(cfg, net, OBS2, gym.spaces.Discrete(3), total_steps=1000, device=torch.device("cpu"))
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(0.1 * torch.randn_like(p))
    sampler = PrioritizedSampler(300, alpha=0.5, beta0=0.4, total_steps=1000, seed=1)
    replay = SequenceReplay(
        ReplayBuffer(300, OBS2, n_envs=2), 3, 5, state_size=agent.state_size, lookahead=2, sampler=sampler
    )
    rng = np.random.default_rng(0)
    for _ in range(100):
        o = rng.normal(size=(2, 2)).astype(np.float32)
        replay.add(
            o,
            o + 0.5,
            rng.integers(0, 3, 2),
            rng.normal(size=2),
            rng.random(2) < 0.1,
            rng.random(2) < 0.05,
            states=rng.normal(size=(2, agent.state_size)).astype(np.float32),
        )
    replay.update_priorities(np.arange(200), rng.uniform(0.1, 3.0, 200))  # unequal weights
    batch = replay.sample(8)
    assert batch.weights.min() < 1.0 and batch.valid[:, 8:].any()
    with torch.no_grad():  # reference: both nets one step at a time, targets by the naive walk
        weighted, count, priorities = 0.0, 0.0, []
        for i in range(8):
            state = unflatten_state(batch.initial_state[i : i + 1], 1, lstm=cell == "lstm")
            so, st, qs, qt = state, state, [], []
            for t in range(batch.obs.shape[1]):
                q, so = agent.online(batch.obs[i : i + 1, t], so, batch.starts[i : i + 1, t])
                q2, st = agent.target(batch.obs[i : i + 1, t], st, batch.starts[i : i + 1, t])
                qs.append(q[0])
                qt.append(q2[0])
            v = [(qt[t + 1][qs[t + 1].argmax()] if double else qt[t + 1].max()).item() for t in range(10)]
            errors = []
            for t in range(3, 8):
                if batch.mask[i, t] == 0:
                    continue
                y = naive_target(
                    batch.rewards[i].tolist(),
                    batch.terminated[i].tolist(),
                    batch.valid[i].tolist(),
                    v,
                    t,
                    3,
                    0.9,
                )
                qa = qs[t][batch.actions[i, t]]
                weighted += (
                    batch.weights[i].item() * torch.nn.functional.smooth_l1_loss(qa, torch.tensor(y)).item()
                )
                count += 1
                errors.append(abs(y - qa.item()))
            priorities.append(0.9 * max(errors) + 0.1 * np.mean(errors))
    metrics = agent.update(batch)
    assert metrics["loss"].item() == pytest.approx(weighted / count, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(metrics["td_errors"].numpy(), priorities, rtol=1e-4, atol=1e-6)
    # the Learner's path: sample -> update -> the sampled starts get (priority + ε)^α, one per sequence
    before = copy.deepcopy(agent)
    learner = Learner(agent, UpdateMetrics(), overlap=False, update_priorities=replay.update_priorities)
    sampled = []
    learner.submit(lambda: sampled.append(replay.sample(8)) or sampled[-1], 1)
    td = before.update(sampled[0])["td_errors"].numpy()  # what the learner's update computed
    last = {int(k): p for k, p in zip(sampled[0].indices, td, strict=True)}  # repeated starts: the last wins
    np.testing.assert_allclose(
        replay.sampler.tree.get(np.array(list(last))),
        (np.array(list(last.values())) + 1e-6) ** 0.5,
        rtol=1e-5,
    )


def test_replay_state_dict_carries_the_priorities(tmp_path):
    replay = prioritized_replay(lookahead=2)
    fill([replay], 30, 2)  # wrapped around
    replay.update_priorities(np.arange(40), np.arange(40) / 10)
    atomic_torch_save(replay.state_dict(), tmp_path / "r.pt")
    other = prioritized_replay(lookahead=2)
    other.load_state_dict(torch.load(tmp_path / "r.pt", weights_only=True))
    a, b = replay.sample(32), other.sample(32)
    np.testing.assert_array_equal(a.indices, b.indices)
    for x, y in zip(a[:-1], b[:-1], strict=True):
        assert (x is None and y is None) or torch.equal(x, y)
    uniform = SequenceReplay(ReplayBuffer(40, TAGGED, n_envs=2), 2, 3)
    fill([uniform], 5, 2)
    with pytest.raises(ValueError, match="no priorities"):
        prioritized_replay().load_state_dict(uniform.state_dict())


def test_cli_trains_rainbow_lite_on_a_recurrent_net(cli, tmp_path):
    """The issue's command, shortened (the GRU goes through the same code: the update test covers it)."""
    run = tmp_path / "run"
    done = cli(
        "train.py",
        "agent=rainbow_lite",
        "net=lstm",
        "env=CartPoleNoVel",
        "total_steps=400",
        "agent.learning_starts=100",
        "agent.train_freq=50",
        "agent.gradient_steps=4",
        "agent.batch_size=16",
        "eval_every=200",
        "eval_episodes=2",
        "final_eval_episodes=2",
        "logger=csv",
        "device=cpu",
        f"run_dir={run}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["net"] == "lstm" and summary["updates"] == 28  # 7 rounds (steps 100, 150, ..., 400) of 4
    config = (run / "config.yaml").read_text()
    assert "n_step: 3" in config and "prioritized: true" in config and "dueling: true" in config
    assert "train/loss" in (run / "metrics.csv").read_text().splitlines()[0]


def test_cli_trains_rainbow_lite_drqn_on_atari_with_one_frame(cli, tmp_path):
    """The frame replay under the sequence replay: windows with a lookahead and priorities per sequence, with
    Atari's overlap=true (batches sampled in the main thread, priorities written by the learner thread)."""
    run = tmp_path / "atari"
    done = cli(
        "train.py",
        "agent=rainbow_lite",
        "env=Breakout",
        "env.frame_stack=1",
        "net=lstm",
        "net.encoder=nature_cnn",
        "total_steps=300",
        "agent.buffer_size=1000",
        "agent.learning_starts=200",
        "agent.batch_size=4",
        "agent.sequence_length=6",
        "agent.burn_in=2",
        "agent.target_update_interval=100",
        "eval_every=0",
        "final_eval_episodes=1",
        "env.eval_max_episode_frames=400",
        "logger=none",
        "device=cpu",
        f"run_dir={run}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["updates"] > 0 and summary["net"] == "lstm" and summary["agent"] == "rainbow_lite"
