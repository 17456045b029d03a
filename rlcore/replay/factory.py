"""Which replay a run gets: chosen from what the env declares, never from the env family's config class.

An env whose observations are stacks of consecutive frames declares it (``envs.metadata["stacked_frames"]``,
set by :func:`envs.atari.make_atari`): its replay stores each frame once
(:class:`rlcore.replay.frames.FrameReplayBuffer`). Every other env gets flat arrays
(:class:`rlcore.replay.uniform.ReplayBuffer`). A recurrent learner gets either wrapped for sequences.
"""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import torch

from rlcore.base.errors import ConfigError
from rlcore.replay.frames import FrameReplayBuffer
from rlcore.replay.sequences import SequenceReplay
from rlcore.replay.sum_tree import PrioritizedSampler
from rlcore.replay.uniform import ReplayBuffer


class ReplayOptions(Protocol):
    """The learner settings a replay reads (DQNConfig has them): n-step returns and prioritized sampling."""

    n_step: int
    gamma: float
    prioritized: bool
    per_alpha: float
    per_beta0: float
    per_eps: float


def stores_frames(envs: gym.vector.VectorEnv) -> bool:
    """Whether the env declares observations that are stacks of consecutive frames (each stored once)."""
    return bool(envs.metadata.get("stacked_frames", False))


def prioritized_sampler(
    options: ReplayOptions, capacity: int, total_steps: int, seed: int
) -> PrioritizedSampler:
    """The sum-tree sampler of prioritized replay (``per_alpha``, ``per_beta0``, ``per_eps``; β reaches 1 at
    ``total_steps``) over ``capacity`` positions, on its own seed stream."""
    return PrioritizedSampler(
        capacity, options.per_alpha, options.per_beta0, options.per_eps, total_steps=total_steps, seed=seed
    )


def make_replay(
    capacity: int,
    envs: gym.vector.VectorEnv,
    seed: int,
    device: torch.device,
    replay_device: str = "auto",
    options: ReplayOptions | None = None,
    total_steps: int = 1,
) -> ReplayBuffer | FrameReplayBuffer:
    """The replay that fits the env: one frame per transition for stacked frames, flat arrays otherwise.

    ``replay_device`` is ``replay.device`` (see :class:`rlcore.schema.ReplayConfig`): ``auto`` and
    ``cpu`` keep the buffer in host memory, ``cuda`` keeps the frame replay in GPU memory and samples there.
    ``options`` (a DQNConfig) switch on n-step returns (``n_step``, ``gamma``) and prioritized replay
    (``prioritized``, ``per_alpha``, ``per_beta0``, ``per_eps``; β reaches 1 at ``total_steps``).
    """
    space, n_envs = envs.single_observation_space, envs.num_envs
    frames = stores_frames(envs)
    on_gpu = replay_device == "cuda"
    if on_gpu:
        if not torch.cuda.is_available():
            raise ConfigError(
                "config key 'replay.device': 'cuda' was asked for but no CUDA device is visible; "
                "use replay.device=cpu or auto"
            )
        if device.type != "cuda":
            raise ConfigError(
                f"config key 'replay.device': a replay on cuda needs the learner there too "
                f"(device=cuda), but the learner is on {device}"
            )
        if not frames:
            raise ConfigError(
                "config key 'replay.device': replay.device=cuda is for the Atari frame replay; "
                "flat-observation buffers stay in host memory (use replay.device=cpu or auto)"
            )
    kwargs: dict = {}
    if options is not None:
        kwargs = {"n_step": options.n_step, "gamma": options.gamma}
        if options.prioritized:
            # its own seed stream: the uniform sampler's generator stays as it was
            kwargs["sampler"] = prioritized_sampler(
                options, capacity // n_envs * n_envs, total_steps, seed + 1
            )
    if frames:
        assert isinstance(space, gym.spaces.Box)
        return FrameReplayBuffer(
            capacity,
            space,
            n_envs=n_envs,
            seed=seed,
            device=device,
            storage="torch" if on_gpu else "numpy",
            **kwargs,
        )
    assert isinstance(space, gym.spaces.Box)
    return ReplayBuffer(capacity, space, n_envs=n_envs, seed=seed, device=device, **kwargs)


def make_sequence_replay(
    capacity: int,
    envs: gym.vector.VectorEnv,
    *,
    burn_in: int,
    sequence_length: int,
    state_size: int,
    seed: int,
    device: torch.device,
    replay_device: str = "auto",
    options: ReplayOptions | None = None,
    total_steps: int = 1,
) -> SequenceReplay:
    """The env's usual transition buffer (capacity rounded down to a multiple of n_envs), wrapped for sequences.

    ``options`` (a DQNConfig): ``n_step`` sets the lookahead (n - 1); ``prioritized`` adds a
    PrioritizedSampler over training starts (``per_alpha``, ``per_beta0``, ``per_eps``; β reaches 1 at
    ``total_steps``). The wrapped buffer itself stays one-step and uniform: the windows are built here.
    """
    n_envs = envs.num_envs
    capacity = max(capacity // n_envs, 1) * n_envs
    inner = make_replay(capacity, envs, seed=seed, device=device, replay_device=replay_device)
    lookahead, sampler = 0, None
    if options is not None:
        lookahead = options.n_step - 1
        if options.prioritized:  # its own seed stream: the uniform generators stay as they were
            sampler = prioritized_sampler(options, inner.capacity, total_steps, seed + 2)
    return SequenceReplay(
        inner,
        burn_in,
        sequence_length,
        state_size=state_size,
        seed=seed + 1,
        lookahead=lookahead,
        sampler=sampler,
    )
