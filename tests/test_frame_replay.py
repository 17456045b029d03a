"""FrameReplayBuffer must return exactly what a buffer of whole stacked observations returns."""

from __future__ import annotations

import io
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.base.errors import RLCoreError
from rlcore.replay import ReplayBuffer
from rlcore.replay import frames as frame_replay
from rlcore.replay.frames import FrameReplayBuffer, estimate_bytes

H, W = 6, 5  # small frames keep the tests fast; the buffer does not care about the size


class StackedStreams:
    """n_envs fake frame-stacking envs in same-step autoreset mode.

    Episodes have random lengths (1 included); fresh stacks are zero-padded like ale-py's, or padded by
    repeating the first frame (``pad="repeat"``, as Gymnasium's FrameStackObservation can); some steps are
    training terminals that do not reset (a life loss), some episodes end by truncation, and some frames
    are all zeros.
    """

    def __init__(self, n_envs: int, stack: int, seed: int, max_len: int, pad: str = "zeros") -> None:
        self.n, self.k, self.max_len, self.pad = n_envs, stack, max_len, pad
        self.rng = np.random.default_rng(seed)
        self.obs = np.stack([self._fresh() for _ in range(n_envs)])
        self.left = self.rng.integers(1, max_len + 1, size=n_envs)

    def _frame(self) -> np.ndarray:
        if self.rng.random() < 0.05:
            return np.zeros((H, W), np.uint8)
        return self.rng.integers(0, 256, size=(H, W), dtype=np.uint8)

    def _fresh(self) -> np.ndarray:
        first = self._frame()
        stack = np.zeros((self.k, H, W), np.uint8)
        stack[-1] = first
        if self.pad == "repeat":
            stack[:] = first
        return stack

    def step(self) -> tuple[np.ndarray, ...]:
        obs = self.obs.copy()
        next_obs = np.concatenate(
            [obs[:, 1:], np.stack([self._frame() for _ in range(self.n)])[:, None]], axis=1
        )
        self.left -= 1
        done = self.left <= 0
        truncated = done & (self.rng.random(self.n) < 0.3)
        terminated = (done & ~truncated) | (self.rng.random(self.n) < 0.05)  # life losses too
        actions = self.rng.integers(0, 18, size=self.n)
        rewards = self.rng.normal(size=self.n).astype(np.float32)
        self.obs = next_obs.copy()
        for e in np.flatnonzero(done):
            self.obs[e] = self._fresh()
            self.left[e] = self.rng.integers(1, self.max_len + 1)
        return obs, next_obs, actions, rewards, terminated, truncated


def space(stack: int) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255, (stack, H, W), np.uint8)


def assert_same(a, b) -> None:
    for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(a, name).numpy(), getattr(b, name).numpy(), err_msg=name)


def fill_both(capacity, n_envs, stack, steps, max_len, seed=0, pad="zeros", storage="numpy"):
    streams = StackedStreams(n_envs, stack, seed, max_len, pad)
    ref = ReplayBuffer(capacity, space(stack), n_envs=n_envs, seed=seed)
    buf = FrameReplayBuffer(capacity, space(stack), n_envs=n_envs, seed=seed, storage=storage)
    for t in range(steps):
        transition = streams.step()
        ref.add(*transition)
        buf.add(*transition)
        if t % 7 == 0 or t == steps - 1:
            assert len(buf) == len(ref)
            everything = np.arange(len(ref))
            assert_same(buf.gather(everything), ref.gather(everything))
    return ref, buf


@pytest.mark.parametrize(
    ("capacity", "n_envs", "stack", "steps", "max_len"),
    [
        (60, 1, 4, 50, 12),  # not yet full
        (60, 1, 4, 400, 12),  # wrapped many times
        (64, 2, 4, 300, 9),  # two interleaved envs
        (90, 3, 4, 200, 1),  # every episode one step long: the start pool has to grow
        (50, 1, 4, 200, 400),  # episodes longer than the buffer: the oldest row's obs lives in head_obs
        (40, 2, 1, 100, 5),  # no stacking (recurrent nets)
        (24, 2, 2, 100, 6),
        (2, 2, 4, 30, 3),  # one row per env
        (6, 2, 4, 40, 3),  # fewer rows than the stack
    ],
)
@pytest.mark.parametrize("storage", ["numpy", "torch"])  # torch: the replay.device=cuda code path, on CPU
def test_matches_reference_buffer(capacity, n_envs, stack, steps, max_len, storage):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pool growth, tested below
        seed = capacity + n_envs + stack
        ref, buf = fill_both(capacity, n_envs, stack, steps, max_len, seed=seed, storage=storage)
    assert_same(buf.sample(64), ref.sample(64))  # same seed, same indices


def test_repeat_first_frame_padding_is_exact_too():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 4 frames per start: the small pool grows
        fill_both(48, 2, 4, 150, 8, pad="repeat")


def test_pool_growth_warns_once_and_stays_exact():
    with pytest.warns(RuntimeWarning, match="start pool"):
        fill_both(120, 1, 4, 300, 1)


@pytest.mark.parametrize(("saved", "loaded"), [("numpy", "numpy"), ("torch", "numpy"), ("numpy", "torch")])
def test_state_dict_round_trip_with_weights_only(saved, loaded):
    ref, buf = fill_both(60, 2, 4, 170, 10, storage=saved)
    data = io.BytesIO()
    torch.save(buf.state_dict(), data)
    data.seek(0)
    state = torch.load(data, weights_only=True)
    restored = FrameReplayBuffer(60, space(4), n_envs=2, seed=99, storage=loaded)
    restored.load_state_dict(state)
    everything = np.arange(len(ref))
    assert_same(restored.gather(everything), ref.gather(everything))
    assert_same(restored.sample(32), buf.sample(32))
    # Adding after a restore continues the same streams.
    streams = StackedStreams(2, 4, 5, 10)
    for _ in range(40):
        transition = streams.step()
        ref.add(*transition)
        restored.add(*transition)
    assert_same(restored.gather(everything), ref.gather(everything))


def test_rejects_observations_that_are_not_frame_stacks():
    buf = FrameReplayBuffer(10, space(4), n_envs=1)
    obs = np.random.default_rng(0).integers(0, 256, size=(1, 4, H, W), dtype=np.uint8)
    with pytest.raises(ValueError, match="shifted by one frame"):
        buf.add(obs, obs[:, ::-1].copy(), np.zeros(1), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))


def test_memory_estimate_for_one_million_atari_transitions():
    estimate = estimate_bytes(1_000_000, (4, 84, 84), n_envs=1)
    assert 1_000_000 * 84 * 84 <= estimate <= 7.3e9


def test_refuses_a_buffer_larger_than_available_memory(monkeypatch):
    monkeypatch.setattr(frame_replay, "available_memory_bytes", lambda: 2_000_000_000)
    with pytest.raises(RLCoreError) as info:
        FrameReplayBuffer(1_000_000, gym.spaces.Box(0, 255, (4, 84, 84), np.uint8))
    message = str(info.value)
    assert "7.22 GB" in message and "2.00 GB" in message and "agent.buffer_size" in message
