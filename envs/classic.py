"""Classic-control (and any registered Gymnasium id with a flat Box observation) as a vector env.

Also ``rlcore/CartPoleNoVel-v0``: CartPole-v1 with the two velocities removed from the observation, a
partially observable task where one observation cannot tell which way the pole moves (the "flickering"
motivation of DRQN, Hausknecht & Stone 2015; the no-velocity variant is a common POMDP benchmark, e.g. in
Meng et al. 2021 "Memory-based Deep Reinforcement Learning for POMDPs").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import FrameStackObservation, RescaleObservation

from rlcore.base.errors import ConfigError
from rlcore.base.validation import require


@dataclass
class ClassicControlConfig:
    name: str = "CartPole"  # short name used in run directories
    id: str = "CartPole-v1"  # Gymnasium id
    n_envs: int = 1
    max_episode_steps: int | None = None  # None keeps the id's registered time limit
    clip_rewards: bool = False  # store sign(reward) in the replay; logged returns stay raw
    # r > 0: map each observation feature linearly from the observation space's bounds to [-r, r] (null:
    # raw observations). A fixed scaling, not running statistics (which would make replayed observations
    # drift), for features of very different sizes (CartPoleNoVel's x in ±4.8, θ in ±0.42 rad) and for
    # recurrent nets that must infer velocities from small differences of consecutive observations
    # (docs/drqn.md). Needs finite bounds.
    rescale_obs: float | None = None
    # k > 1: each observation is the last k observations stacked, shape (k, *obs_shape), oldest first; an
    # episode's first observation fills the slots before it (no step of another episode leaks in). How a
    # feed-forward net (net=conv1d over time, or an MLP on the flattened stack) sees the recent past, e.g.
    # CartPoleNoVel's velocities as differences of consecutive positions. Recurrent nets keep 1.
    frame_stack: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(self.n_envs > 0, "env.n_envs", f"must be > 0 (got {self.n_envs})")
        require(
            self.max_episode_steps is None or self.max_episode_steps > 0,
            "env.max_episode_steps",
            f"must be > 0 or null (got {self.max_episode_steps})",
        )
        register_classic_envs()  # rlcore's own ids are valid choices too
        if self.id not in gym.registry:
            classic = sorted(k for k in gym.registry if not k.startswith(("ALE/", "rlcore/")) and "-v" in k)
            raise ConfigError(
                f"config key 'env.id': unknown Gymnasium environment {self.id!r}; "
                f"registered ids include: {', '.join(classic[:30])}"
            )
        require(
            self.rescale_obs is None or self.rescale_obs > 0,
            "env.rescale_obs",
            f"must be > 0 or null (got {self.rescale_obs})",
        )
        require(self.frame_stack > 0, "env.frame_stack", f"must be > 0 (got {self.frame_stack})")
        if self.rescale_obs is not None:  # fail at start-up, not when the first env is made
            make_classic_env(self).close()


def rescale_from_bounds(env: gym.Env, half_range: float) -> gym.Env:
    """``env`` with every observation feature mapped linearly from its Box bounds to
    [-half_range, half_range] (``env.rescale_obs``)."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or not (
        np.isfinite(space.low).all() and np.isfinite(space.high).all()
    ):
        raise ConfigError(
            f"config key 'env.rescale_obs': needs an observation space with finite bounds; {env.spec.id if env.spec else env} "
            f"has {space}: leave out env.rescale_obs"
        )
    return RescaleObservation(env, np.float32(-half_range), np.float32(half_range))


def make_classic_env(cfg: ClassicControlConfig, **make_kwargs: Any) -> gym.Env:
    """One env of ``cfg`` (``make_kwargs`` go to ``gym.make``, e.g. a render mode), rescaled if ``cfg.rescale_obs``
    is set, then with the last ``cfg.frame_stack`` observations stacked."""
    env = gym.make(cfg.id, max_episode_steps=cfg.max_episode_steps, **cfg.kwargs, **make_kwargs)
    if cfg.rescale_obs is not None:
        env = rescale_from_bounds(env, cfg.rescale_obs)
    if cfg.frame_stack > 1:  # "reset" padding: copies of the episode's first observation, so zero velocity
        env = FrameStackObservation(env, cfg.frame_stack, padding_type="reset")
    return env


def make_classic(
    cfg: ClassicControlConfig, seed: int, *, evaluation: bool = False, n_envs: int | None = None
) -> gym.vector.VectorEnv:
    count = n_envs if n_envs is not None else (1 if evaluation else cfg.n_envs)

    def make_one() -> gym.Env:
        return make_classic_env(cfg)

    envs = SyncVectorEnv([make_one for _ in range(count)], autoreset_mode=AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)  # seeds every copy (seed, seed+1, ...); later resets continue those generators
    envs.action_space.seed(seed)
    return envs


CARTPOLE_NOVEL_ID = "rlcore/CartPoleNoVel-v0"


class NoVelocity(gym.ObservationWrapper):
    """Keep only the cart position x and the pole angle θ of CartPole's (x, ẋ, θ, θ̇) observation."""

    KEEP = np.array([0, 2])

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box)
        self.observation_space = gym.spaces.Box(
            space.low[self.KEEP], space.high[self.KEEP], dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.KEEP]


def cartpole_no_velocity(**kwargs: Any) -> gym.Env:
    """CartPole without velocities (the time limit and reward threshold come from the registration)."""
    return NoVelocity(CartPoleEnv(**kwargs))


def register_classic_envs() -> None:
    """Register ``rlcore/CartPoleNoVel-v0`` with CartPole-v1's 500-step limit (idempotent; through ``envs.register_gym_ids``)."""
    if CARTPOLE_NOVEL_ID not in gym.registry:
        gym.register(
            CARTPOLE_NOVEL_ID,
            entry_point=f"{__name__}:cartpole_no_velocity",
            max_episode_steps=500,
            reward_threshold=475.0,
        )
