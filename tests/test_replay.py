import gymnasium as gym
import numpy as np
import torch

from rlcore.replay import ReplayBuffer

SPACE = gym.spaces.Box(-1, 1, (3,), np.float32)


def fill(buffer: ReplayBuffer, start: int, count: int, n_envs: int = 1) -> None:
    for t in range(start, start + count):
        obs = np.full((n_envs, 3), t, np.float32) + np.arange(n_envs)[:, None] * 1000
        buffer.add(
            obs,
            obs + 0.5,
            np.full(n_envs, t % 4),
            np.full(n_envs, float(t)),
            np.full(n_envs, t % 5 == 0, np.float32),
            np.full(n_envs, t % 7 == 0, np.float32),
        )


def test_wraps_around_and_keeps_the_newest():
    buffer = ReplayBuffer(5, SPACE, seed=0)
    fill(buffer, 0, 8)
    assert len(buffer) == 5 and buffer.pos == 3
    assert sorted(buffer.rewards.tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]
    # position 0 holds transition 5 (the 6th add), position 3 holds transition 3
    assert buffer.obs[0, 0] == 5 and buffer.obs[3, 0] == 3


def test_capacity_rounds_down_to_whole_rows_so_each_env_keeps_its_column():
    buffer = ReplayBuffer(5, SPACE, n_envs=2, seed=0)  # 2 rows of 2 envs: n-step walks follow a column
    fill(buffer, 0, 3, n_envs=2)  # 6 transitions into 4 slots
    assert buffer.capacity == 4 and len(buffer) == 4 and buffer.pos == 2
    assert buffer.obs[:, 0].tolist() == [2, 1002, 1, 1001]  # position row * n_envs + env


def test_dtypes_and_terminated_vs_truncated_kept_apart():
    buffer = ReplayBuffer(16, SPACE, seed=0)
    fill(buffer, 0, 10)
    batch = buffer.gather(np.arange(10))
    assert batch.obs.dtype == torch.float32 and batch.actions.dtype == torch.int64
    assert batch.rewards.dtype == torch.float32 and batch.terminated.dtype == torch.float32
    assert batch.terminated.tolist() == [float(t % 5 == 0) for t in range(10)]
    assert buffer.truncated[:10].tolist() == [float(t % 7 == 0) for t in range(10)]
    assert torch.equal(batch.next_obs, batch.obs + 0.5)


def test_uint8_observations_stay_uint8():
    space = gym.spaces.Box(0, 255, (1, 4, 4), np.uint8)
    buffer = ReplayBuffer(4, space)
    frame = np.full((1, 1, 4, 4), 200, np.uint8)
    buffer.add(frame, frame, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1))
    assert buffer.obs.dtype == np.uint8 and buffer.sample(2).obs.dtype == torch.uint8


def test_sampling_is_seeded_and_within_the_filled_part():
    a, b = ReplayBuffer(100, SPACE, seed=3), ReplayBuffer(100, SPACE, seed=3)
    fill(a, 0, 20)
    fill(b, 0, 20)
    ia, ib = a.sample_indices(256), b.sample_indices(256)
    assert np.array_equal(ia, ib) and ia.max() < 20


def test_state_dict_round_trip_continues_identically():
    a = ReplayBuffer(8, SPACE, seed=1)
    fill(a, 0, 11)
    b = ReplayBuffer(8, SPACE, seed=99)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.sample_indices(64), b.sample_indices(64))
    fill(a, 11, 3)
    fill(b, 11, 3)
    assert np.array_equal(a.obs, b.obs) and a.pos == b.pos
