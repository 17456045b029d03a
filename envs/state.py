"""Snapshots of a vector env's state mid-episode, so a resumed run steps on exactly where it stopped.

Gymnasium envs cannot be pickled into a ``weights_only`` checkpoint, and most have no state API. What
makes a classic-control env (CartPole, Acrobot, MountainCar, ...) continue exactly is small and plain:
the physics state of the unwrapped env (``state``, ``steps_beyond_terminated``), its ``np_random`` bit
generator, and the wrappers' counters (TimeLimit's ``_elapsed_steps``). :func:`env_state` records every
plain attribute (numbers, None, numpy arrays, tuples/lists of numbers) of every layer of each copy, plus the generators, as
tensors and Python values; :func:`load_env_state` writes them back into freshly built envs of the same
config. Dataset envs save their example stream (order, position, generator).

Atari (ale-py's C++ vector env) is not snapshotted: :func:`env_state` returns None and a resumed run
starts fresh games (see docs/resume.md).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import SyncVectorEnv

from envs.dataset_env import DatasetVectorEnv
from rlcore.base.errors import CheckpointError

PLAIN = (bool, int, float, type(None))


def _plain(value: Any) -> Any:
    """A weights_only-safe copy of ``value``, or ``...`` (Ellipsis) when it is not plain data."""
    if isinstance(value, np.generic):  # numpy scalars (MountainCar keeps its state as a tuple of them)
        return value.item()
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(value.copy())
    if isinstance(value, tuple | list):
        items = [_plain(item) for item in value]
        if all(isinstance(item, PLAIN) for item in items):
            return type(value)(items)
    return ...


def _plain_attributes(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        plain = _plain(value)
        if plain is not ...:
            out[name] = plain
    return out


def _load_plain_attributes(obj: object, saved: dict[str, Any]) -> None:
    for name, value in saved.items():
        setattr(obj, name, value.numpy().copy() if isinstance(value, torch.Tensor) else value)


def _layers(env: gym.Env) -> list[Any]:
    """The wrappers from the outside in, then the unwrapped env."""
    layers: list[Any] = []  # gym.Wrapper layers, then the unwrapped gym.Env
    while isinstance(env, gym.Wrapper):
        layers.append(env)
        env = env.env
    layers.append(env)
    return layers


def env_state(envs: gym.vector.VectorEnv) -> dict[str, Any] | None:
    """The state ``envs`` needs to continue exactly, or None for env families that cannot be snapshotted."""
    if isinstance(envs, SyncVectorEnv):
        copies = []
        for env in envs.envs:
            layers = _layers(env)
            copies.append(
                {
                    "layers": [_plain_attributes(layer) for layer in layers],
                    "np_random": layers[-1].np_random.bit_generator.state,
                }
            )
        return {"kind": "sync", "vector": _plain_attributes(envs), "copies": copies}
    if isinstance(envs, DatasetVectorEnv):
        stream = envs._stream
        if stream is None or envs._indices is None:
            return None
        return {
            "kind": "dataset",
            "np_random": envs.np_random.bit_generator.state,
            "order": torch.from_numpy(stream.order.copy()),
            "pos": stream.pos,
            "served": stream.served,
            "indices": torch.from_numpy(envs._indices.copy()),
            "first_pass": torch.from_numpy(envs._first_pass.copy()),
        }
    return None


def load_env_state(envs: gym.vector.VectorEnv, state: dict[str, Any]) -> None:
    """Write a snapshot from :func:`env_state` into ``envs`` (built from the same config)."""
    if state["kind"] == "sync":
        if not isinstance(envs, SyncVectorEnv) or len(envs.envs) != len(state["copies"]):
            raise CheckpointError(
                "the saved env state is for another kind or number of envs than this config builds"
            )
        _load_plain_attributes(envs, state["vector"])
        for env, saved in zip(envs.envs, state["copies"], strict=True):
            layers = _layers(env)
            if len(layers) != len(saved["layers"]):
                raise CheckpointError(
                    "the saved env state has another stack of wrappers than this config builds"
                )
            for layer, attributes in zip(layers, saved["layers"], strict=True):
                _load_plain_attributes(layer, attributes)
            layers[-1].np_random.bit_generator.state = saved["np_random"]
        return
    if state["kind"] == "dataset":
        if not isinstance(envs, DatasetVectorEnv):
            raise CheckpointError("the saved env state is for a dataset env, this config builds another")
        if envs._stream is None:  # never reset yet: build the stream, then overwrite it
            envs.reset()
        envs.np_random.bit_generator.state = state["np_random"]
        stream = envs._stream
        assert stream is not None  # reset() above built it
        stream.order = state["order"].numpy().copy()
        stream.pos, stream.served = int(state["pos"]), int(state["served"])
        envs._indices = state["indices"].numpy().copy()
        envs._first_pass = state["first_pass"].numpy().copy()
        envs._obs = envs.dataset.images[envs._indices]
        return
    raise CheckpointError(f"unknown env state kind {state['kind']!r} in the checkpoint")
