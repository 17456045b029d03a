"""Evaluation: play whole episodes with a fixed ε and report raw returns."""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np


class Actor(Protocol):
    def act(self, obs: np.ndarray, explore: bool = True, epsilon: float | None = None) -> np.ndarray: ...


def evaluate(agent: Actor, env: gym.vector.VectorEnv, episodes: int, epsilon: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Play ``episodes`` complete episodes; returns (returns, lengths).

    The env is reset first, so an evaluation never resumes a half-played episode. With several envs the
    episodes are split evenly between them and extra episodes are discarded (as SB3's evaluate_policy
    does), so short episodes are not over-represented.
    """
    n = env.num_envs
    targets = np.array([(episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    current_return = np.zeros(n)
    current_length = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = env.reset()
    while (counts < targets).any():
        actions = agent.act(obs, explore=False, epsilon=epsilon)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        current_return += rewards
        current_length += 1
        for i in np.flatnonzero(terminated | truncated):
            if counts[i] < targets[i]:
                returns.append(float(current_return[i]))
                lengths.append(int(current_length[i]))
                counts[i] += 1
            current_return[i] = 0.0
            current_length[i] = 0
    return np.asarray(returns), np.asarray(lengths)
