"""Environment factory: every env family builds a Gymnasium vector env from its config.

The training loop only sees ``gymnasium.vector.VectorEnv`` objects in same-step autoreset mode (the final
observation of an episode is in ``info["final_obs"]``), so classic control, Atari and dataset envs plug in
the same way. Env families may add ``info["life_loss"]`` (bool per env) to mark training-only terminals.
"""

from __future__ import annotations

import gymnasium as gym

from envs.atari import AtariConfig, make_atari
from envs.classic import ClassicControlConfig, make_classic, register_classic_envs
from envs.dataset_env import DatasetEnvConfig, DatasetVectorEnv, make_dataset_env, register_envs
from envs.idx import DatasetError

SCHEMAS: dict[str, type] = {
    "classic_schema": ClassicControlConfig,
    "atari_schema": AtariConfig,
    "dataset_schema": DatasetEnvConfig,
}


def register_gym_ids() -> None:
    """Register rlcore's Gymnasium ids (``rlcore/CartPoleNoVel-v0``, ``rlcore/MNIST-v0``, ``rlcore/Digits-v0``)
    in Gymnasium's global registry. Idempotent; :func:`make_env` calls it, so only code that calls
    ``gym.make`` on these ids itself needs to (importing ``envs`` registers nothing)."""
    register_envs()
    register_classic_envs()


def make_env(
    cfg: object, seed: int, *, evaluation: bool = False, n_envs: int | None = None
) -> gym.vector.VectorEnv:
    """Build the vector env ``cfg`` describes, seeded with ``seed``.

    ``evaluation=True`` gives the evaluation protocol of the family (e.g. full games for Atari, the whole
    test split in order for datasets); ``n_envs`` overrides the config's number of copies.
    """
    register_gym_ids()
    if isinstance(cfg, ClassicControlConfig):
        return make_classic(cfg, seed, evaluation=evaluation, n_envs=n_envs)
    if isinstance(cfg, AtariConfig):
        return make_atari(cfg, seed, evaluation=evaluation, n_envs=n_envs)
    if isinstance(cfg, DatasetEnvConfig):
        return make_dataset_env(cfg, seed, evaluation=evaluation, n_envs=n_envs)
    raise TypeError(f"no environment family for config {type(cfg).__name__}")


__all__ = [
    "SCHEMAS",
    "AtariConfig",
    "ClassicControlConfig",
    "DatasetEnvConfig",
    "DatasetError",
    "DatasetVectorEnv",
    "make_env",
    "register_gym_ids",
]
