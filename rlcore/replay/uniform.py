"""Uniform experience replay for flat (non-pixel) observations.

Preallocated, circular numpy arrays with their own seeded generator. ``terminated`` and ``truncated`` are
stored separately: only ``terminated`` stops bootstrapping, so time-limit ends still bootstrap from the
real final observation (Pardo et al. 2018, "Time Limits in Reinforcement Learning").

Options (both buffers): ``n_step > 1`` returns n-step transitions built at sample time from the stored
one-step ones (:mod:`rlcore.replay.nstep`); a :class:`rlcore.replay.sum_tree.PrioritizedSampler` samples by priority
and adds importance weights and positions to each batch.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcore.base.batches import Batch
from rlcore.replay.nstep import nstep_returns
from rlcore.replay.sum_tree import PrioritizedSampler


def to_learner_device(array: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A sampled host array as a tensor on the learner's device: zero-copy on CPU, from pinned memory and
    non-blocking on CUDA (the copy overlaps the learner's work). Tensors (GPU-resident replays) pass through."""
    if isinstance(array, torch.Tensor):
        return array
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def split_batch(batch: Batch, batch_size: int) -> list[Batch]:
    """Consecutive batches of ``batch_size`` from one large batch (views, no copies)."""
    fields: list[Any] = [
        None
        if value is None
        else value.split(batch_size)
        if isinstance(value, torch.Tensor)
        else np.split(value, range(batch_size, len(value), batch_size))
        for value in batch
    ]
    count = len(next(f for f in fields if f is not None))
    return [Batch._make(None if f is None else f[i] for f in fields) for i in range(count)]


class ReplayBuffer:
    """Circular buffer of ``capacity`` transitions, fed ``n_envs`` transitions at a time.

    ``capacity`` is rounded down to a multiple of ``n_envs`` so that transition ``i`` of env ``e`` always
    sits at position ``row * n_envs + e`` (rows of a ring, one column per env, as in the frame replay):
    n-step returns follow an env's stream down its column.
    """

    def __init__(
        self,
        capacity: int,
        observation_space: gym.spaces.Box,
        n_envs: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        n_step: int = 1,
        gamma: float = 0.99,
        sampler: PrioritizedSampler | None = None,
    ) -> None:
        if capacity < n_envs:
            raise ValueError(f"replay capacity {capacity} is smaller than the number of envs {n_envs}")
        self.n_envs = int(n_envs)
        self.rows = int(capacity) // self.n_envs
        self.capacity = self.rows * self.n_envs
        self.n_step, self.gamma, self.sampler = int(n_step), float(gamma), sampler
        self.device = torch.device(device)
        shape = tuple(observation_space.shape)
        self.obs = np.zeros((self.capacity, *shape), dtype=observation_space.dtype)
        self.next_obs = np.zeros((self.capacity, *shape), dtype=observation_space.dtype)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.truncated = np.zeros(self.capacity, dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one transition per env (arrays with a leading ``n_envs`` axis)."""
        n = len(actions)
        idx = (
            (self.pos + np.arange(n)) % self.capacity
            if self.pos + n > self.capacity
            else slice(self.pos, self.pos + n)
        )
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.terminated[idx] = terminated
        self.truncated[idx] = truncated
        if self.sampler is not None:
            self.sampler.on_add((self.pos + np.arange(n)) % self.capacity)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, batch_size: int) -> np.ndarray:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        if self.sampler is not None:
            return self.sampler.sample_indices(batch_size, self.size)
        return self.rng.integers(0, self.size, size=batch_size)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | torch.Tensor) -> None:
        """New priorities of sampled positions from their TD errors (prioritized replay only)."""
        if self.sampler is not None:
            self.sampler.update_priorities(indices, td_errors)

    def sample(self, batch_size: int) -> Batch:
        return self.gather(self.sample_indices(batch_size))

    def sample_round(self, batch_size: int, count: int) -> list[Batch]:
        """``count`` uniform batches drawn and gathered at once: one index draw and one gather per array
        instead of ``count`` (~15 µs per batch saved on CartPole's rounds of 128). Prioritized replay samples
        each batch after the previous update's priorities, so it never comes here."""
        if self.sampler is not None:
            raise RuntimeError("prioritized replay samples one batch at a time (sample), not in rounds")
        return split_batch(self.gather(self.sample_indices(batch_size * count)), batch_size)

    def gather(self, idx: np.ndarray) -> Batch:
        """The transitions at buffer positions ``idx`` as a Batch on the device."""
        to = self._to_device
        idx = np.asarray(idx, dtype=np.int64)
        weights = None if self.sampler is None else to(self.sampler.weights(idx, self.size))
        indices = None if self.sampler is None else idx
        if self.n_step == 1:
            return Batch(
                obs=to(self.obs[idx]),
                actions=to(self.actions[idx]),
                rewards=to(self.rewards[idx]),
                next_obs=to(self.next_obs[idx]),
                terminated=to(self.terminated[idx]),
                weights=weights,
                indices=indices,
            )
        row, env = idx // self.n_envs, idx % self.n_envs
        shape = (self.rows, self.n_envs)
        newest = (self.pos // self.n_envs - 1) % self.rows
        ns = nstep_returns(
            self.rewards.reshape(shape),
            self.terminated.reshape(shape),
            self.truncated.reshape(shape),
            row,
            env,
            (newest - row) % self.rows,
            self.n_step,
            self.gamma,
        )
        return Batch(
            obs=to(self.obs[idx]),
            actions=to(self.actions[idx]),
            rewards=to(ns.returns),
            next_obs=to(self.next_obs[ns.last_row * self.n_envs + env]),
            terminated=to(ns.terminated),
            discounts=to(ns.discounts),
            weights=weights,
            indices=indices,
        )

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return to_learner_device(array, self.device)

    def state_dict(self) -> dict:
        """Contents, position and generator state, as tensors and plain Python values (weights_only-safe)."""
        n = self.size
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": n,
            "obs": torch.from_numpy(self.obs[:n].copy()),
            "next_obs": torch.from_numpy(self.next_obs[:n].copy()),
            "actions": torch.from_numpy(self.actions[:n].copy()),
            "rewards": torch.from_numpy(self.rewards[:n].copy()),
            "terminated": torch.from_numpy(self.terminated[:n].copy()),
            "truncated": torch.from_numpy(self.truncated[:n].copy()),
            "rng": self.rng.bit_generator.state,
            **({"sampler": self.sampler.state_dict()} if self.sampler is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"replay capacity differs: saved {state['capacity']}, configured {self.capacity}"
            )
        n = state["size"]
        for name in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"):
            getattr(self, name)[:n] = state[name].numpy()
        self.pos, self.size = state["pos"], n
        self.rng.bit_generator.state = state["rng"]
        load_sampler_state(self.sampler, state)


def load_sampler_state(sampler: PrioritizedSampler | None, state: dict) -> None:
    """Restore the priorities saved with a buffer; a buffer saved without them cannot become prioritized."""
    if sampler is None:
        return
    if "sampler" not in state:
        raise ValueError(
            "the saved replay has no priorities (it was not prioritized); set agent.prioritized=false"
        )
    sampler.load_state_dict(state["sampler"])
