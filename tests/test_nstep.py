"""n-step returns from both replays: a hand-built episode, and a naive reference on random episodes."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_frame_replay import StackedStreams, space

from rlcore.replay import ReplayBuffer
from rlcore.replay.frames import FrameReplayBuffer
from rlcore.replay.nstep import nstep_returns
from rlcore.replay.sum_tree import PrioritizedSampler

FLAT = gym.spaces.Box(-1e6, 1e6, (1,), np.float32)


def add_flat(
    buffer: ReplayBuffer, t: int, reward: float, terminated: bool = False, truncated: bool = False
) -> None:
    obs = np.array([[10.0 * t]], np.float32)
    buffer.add(obs, obs + 1, np.zeros(1), np.array([reward]), np.array([terminated]), np.array([truncated]))


def test_hand_built_episode_with_termination_truncation_and_the_write_head():
    buffer = ReplayBuffer(10, FLAT, n_step=3, gamma=0.5)
    for t, (reward, term, trunc) in enumerate(
        [
            (1, False, False),
            (2, False, False),
            (4, True, False),  # episode 1 terminates at t = 2
            (8, False, False),
            (16, False, True),  # episode 2 is cut by a time limit at t = 4
            (32, False, False),
            (64, False, False),
        ]  # episode 3 is still running: t = 6 is the newest
    ):
        add_flat(buffer, t, reward, term, trunc)
    batch = buffer.gather(np.arange(7))
    # t=0: 1 + .5*2 + .25*4, stops at the terminal; t=3: 8 + .5*16, bootstraps from t=4's next_obs with γ^2
    assert batch.rewards.tolist() == [3.0, 4.0, 4.0, 16.0, 16.0, 64.0, 64.0]
    assert batch.terminated.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert batch.discounts.tolist() == [0.125, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5]
    assert batch.next_obs[:, 0].tolist() == [21.0, 21.0, 21.0, 41.0, 41.0, 61.0, 61.0]  # s_{t+k}
    assert batch.obs[:, 0].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    add_flat(buffer, 7, 128)  # the walk from t=5 no longer stops at the write head
    batch = buffer.gather(np.array([5]))
    assert (batch.rewards.item(), batch.discounts.item(), batch.next_obs.item()) == (96.0, 0.125, 71.0)


def test_pure_function_stops_at_the_wrapped_write_head():
    # 4 rows, one env; the newest row is 1, so the walk from row 0 sees one later row and from row 1 none
    rewards = np.array([[1.0], [2.0], [4.0], [8.0]], np.float32)
    flags = np.zeros((4, 1), bool)
    out = nstep_returns(
        rewards,
        flags,
        flags,
        np.array([2, 0, 1]),
        np.zeros(3, np.int64),
        ahead=(1 - np.array([2, 0, 1])) % 4,
        n=3,
        gamma=0.5,
    )
    assert out.returns.tolist() == [4 + 0.5 * 8 + 0.25 * 1, 1 + 0.5 * 2, 2.0]
    assert out.last_row.tolist() == [0, 1, 1] and out.discounts.tolist() == [0.125, 0.25, 0.5]


def reference_nstep(episode: list[tuple], j: int, n: int, gamma: float) -> tuple:
    """Walk env's transition list from j: (return, next_obs, terminated, γ^k), stopping at the list's end."""
    ret, disc = 0.0, 1.0
    for k in range(n):
        _, next_obs, reward, term, trunc = episode[j + k]
        ret += disc * reward
        disc *= gamma
        if term or trunc or j + k == len(episode) - 1:
            break
    return ret, next_obs, float(term), disc


def stored_transition(position: int, rows: int, n_envs: int, adds: int) -> tuple[int, int]:
    """(env, add number) of the transition at a buffer position after ``adds`` adds."""
    row, env = divmod(position, n_envs)
    t = row if adds <= rows else adds - 1 - ((adds - 1 - row) % rows)
    return env, t


def check_against_reference(buffer, streams: list[list[tuple]], adds: int, n: int, gamma: float) -> None:
    everything = np.arange(len(buffer))
    batch = buffer.gather(everything)
    for p in everything:
        env, t = stored_transition(int(p), buffer.capacity // buffer.n_envs, buffer.n_envs, adds)
        ret, next_obs, term, disc = reference_nstep(streams[env], t, n, gamma)
        np.testing.assert_array_equal(batch.obs[p].numpy(), streams[env][t][0], err_msg=f"obs at {p}")
        np.testing.assert_array_equal(batch.next_obs[p].numpy(), next_obs, err_msg=f"next_obs at {p}")
        assert batch.rewards[p].item() == pytest.approx(ret, rel=1e-5), p
        assert batch.terminated[p].item() == term, p
        if not term:
            assert batch.discounts[p].item() == pytest.approx(disc, rel=1e-6), p


@pytest.mark.parametrize(
    ("capacity", "n_envs", "adds", "n"), [(40, 1, 30, 3), (40, 1, 130, 3), (30, 3, 57, 4), (12, 2, 45, 5)]
)
def test_flat_replay_matches_a_naive_reference_on_random_episodes(capacity, n_envs, adds, n):
    rng = np.random.default_rng(capacity + adds)
    gamma = 0.9
    buffer = ReplayBuffer(capacity, FLAT, n_envs=n_envs, n_step=n, gamma=gamma)
    streams: list[list[tuple]] = [[] for _ in range(n_envs)]
    for t in range(adds):
        obs = (np.arange(n_envs) * 1e4 + t).astype(np.float32)[:, None]
        next_obs = obs + 0.5
        rewards = rng.normal(size=n_envs).astype(np.float32)
        terminated = rng.random(n_envs) < 0.12
        truncated = ~terminated & (rng.random(n_envs) < 0.08)
        buffer.add(obs, next_obs, np.zeros(n_envs), rewards, terminated, truncated)
        for e in range(n_envs):
            streams[e].append(
                (obs[e], next_obs[e], float(rewards[e]), bool(terminated[e]), bool(truncated[e]))
            )
    check_against_reference(buffer, streams, adds, n, gamma)


@pytest.mark.parametrize(
    ("capacity", "n_envs", "adds", "max_len", "n"),
    [(60, 1, 45, 12, 3), (60, 1, 300, 12, 3), (64, 2, 230, 9, 3), (30, 3, 100, 4, 5), (50, 1, 200, 400, 3)],
)
@pytest.mark.parametrize("storage", ["numpy", "torch"])
def test_frame_replay_rebuilds_the_exact_stack_at_t_plus_k(capacity, n_envs, adds, max_len, n, storage):
    gamma = 0.9
    stream_source = StackedStreams(n_envs, 4, seed=capacity + adds, max_len=max_len)
    buffer = FrameReplayBuffer(capacity, space(4), n_envs=n_envs, n_step=n, gamma=gamma, storage=storage)
    streams: list[list[tuple]] = [[] for _ in range(n_envs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # start-pool growth for short episodes
        for _ in range(adds):
            obs, next_obs, actions, rewards, terminated, truncated = stream_source.step()
            buffer.add(obs, next_obs, actions, rewards, terminated, truncated)
            for e in range(n_envs):  # life losses are `terminated` without a reset: the walk stops there too
                streams[e].append(
                    (obs[e], next_obs[e], float(rewards[e]), bool(terminated[e]), bool(truncated[e]))
                )
    check_against_reference(buffer, streams, adds, n, gamma)


def test_prioritized_nstep_frame_replay_samples_with_weights():
    stream_source = StackedStreams(2, 4, seed=0, max_len=10)
    buffer = FrameReplayBuffer(
        40, space(4), n_envs=2, n_step=3, gamma=0.99, sampler=PrioritizedSampler(40, seed=0, total_steps=100)
    )
    for _ in range(30):
        buffer.add(*stream_source.step())
    batch = buffer.sample(16)
    assert (
        batch.indices.max() < 40 and batch.weights.dtype == torch.float32 and batch.discounts.shape == (16,)
    )
    buffer.update_priorities(batch.indices, np.zeros(16))
    assert np.all(buffer.sampler.tree.get(batch.indices) < 1e-3)
