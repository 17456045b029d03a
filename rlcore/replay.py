"""Uniform experience replay for flat (non-pixel) observations.

Preallocated, circular numpy arrays with their own seeded generator. ``terminated`` and ``truncated`` are
stored separately: only ``terminated`` stops bootstrapping, so time-limit ends still bootstrap from the
real final observation (Pardo et al. 2018, "Time Limits in Reinforcement Learning").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlcore.errors import ConfigError

if TYPE_CHECKING:
    from rlcore.frame_replay import FrameReplayBuffer


class Batch(NamedTuple):
    """A sampled mini-batch, as tensors on the learner's device."""

    obs: torch.Tensor
    actions: torch.Tensor  # int64
    rewards: torch.Tensor  # float32
    next_obs: torch.Tensor
    terminated: torch.Tensor  # float32, 1.0 where the transition ended the episode for the learner
    discounts: torch.Tensor | None = None  # per-sample gamma**n for n-step returns (None: one step)
    weights: torch.Tensor | None = None  # importance weights (prioritized replay)
    indices: np.ndarray | None = None  # buffer positions (prioritized replay)


class ReplayBuffer:
    """Circular buffer of ``capacity`` transitions, fed ``n_envs`` transitions at a time."""

    def __init__(
        self,
        capacity: int,
        observation_space: gym.spaces.Box,
        n_envs: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if capacity < n_envs:
            raise ValueError(f"replay capacity {capacity} is smaller than the number of envs {n_envs}")
        self.capacity = int(capacity)
        self.n_envs = int(n_envs)
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
        idx = (self.pos + np.arange(n)) % self.capacity if self.pos + n > self.capacity else slice(self.pos, self.pos + n)
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.terminated[idx] = terminated
        self.truncated[idx] = truncated
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, batch_size: int) -> np.ndarray:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        return self.rng.integers(0, self.size, size=batch_size)

    def sample(self, batch_size: int) -> Batch:
        return self.gather(self.sample_indices(batch_size))

    def gather(self, idx: np.ndarray) -> Batch:
        """The transitions at buffer positions ``idx`` as a Batch on the device."""
        to = self._to_device
        return Batch(
            obs=to(self.obs[idx]),
            actions=to(self.actions[idx]),
            rewards=to(self.rewards[idx]),
            next_obs=to(self.next_obs[idx]),
            terminated=to(self.terminated[idx]),
        )

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

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
        }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay capacity differs: saved {state['capacity']}, configured {self.capacity}")
        n = state["size"]
        for name in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated"):
            getattr(self, name)[:n] = state[name].numpy()
        self.pos, self.size = state["pos"], n
        self.rng.bit_generator.state = state["rng"]


def make_replay(
    capacity: int,
    env_cfg: object,
    envs: gym.vector.VectorEnv,
    seed: int,
    device: torch.device,
    replay_device: str = "auto",
) -> ReplayBuffer | FrameReplayBuffer:
    """The replay that fits the env: one frame per transition for Atari, flat arrays otherwise.

    ``replay_device`` is ``replay.device`` (see :class:`rlcore.config.ReplayConfig`): ``auto`` and ``cpu``
    keep the buffer in host memory, ``cuda`` keeps the Atari frame replay in GPU memory and samples there.
    """
    from envs.atari import AtariConfig
    from rlcore.frame_replay import FrameReplayBuffer

    space, n_envs = envs.single_observation_space, envs.num_envs
    on_gpu = replay_device == "cuda"
    if on_gpu:
        if not torch.cuda.is_available():
            raise ConfigError("config key 'replay.device': 'cuda' was asked for but no CUDA device is visible; "
                              "use replay.device=cpu or auto")
        if device.type != "cuda":
            raise ConfigError(f"config key 'replay.device': a replay on cuda needs the learner there too "
                              f"(device=cuda), but the learner is on {device}")
        if not isinstance(env_cfg, AtariConfig):
            raise ConfigError("config key 'replay.device': replay.device=cuda is for the Atari frame replay; "
                              "flat-observation buffers stay in host memory (use replay.device=cpu or auto)")
    if isinstance(env_cfg, AtariConfig):
        return FrameReplayBuffer(capacity, space, n_envs=n_envs, seed=seed, device=device,
                                 storage="torch" if on_gpu else "numpy")
    return ReplayBuffer(capacity, space, n_envs=n_envs, seed=seed, device=device)
