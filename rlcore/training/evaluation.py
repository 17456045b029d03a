"""Evaluation: play whole episodes with a fixed ε and report raw returns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from envs.dataset_env import DatasetVectorEnv
from rlcore.base.protocols import Actor


@contextmanager
def fresh_episodes(agent: Actor) -> Iterator[None]:
    """A recurrent agent (DRQN) evaluates from a fresh hidden state and gets its training state back after,
    so an evaluation in the middle of training does not disturb the episodes in progress."""
    saved = agent.swap_state(None)
    try:
        yield
    finally:
        agent.swap_state(saved)


def reset_finished(agent: Actor, done: np.ndarray) -> None:
    """Tell the agent which envs start a new episode at the next act (a no-op for stateless agents)."""
    agent.reset_state(done)


def evaluate(
    agent: Actor,
    env: gym.vector.VectorEnv,
    episodes: int,
    epsilon: float = 0.0,
    progress: str | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Play ``episodes`` complete episodes; returns (returns, lengths). ``progress``: a bar with this label
    counts the finished episodes on the console (long evaluations, e.g. whole Atari games, say where they are).

    Random actions (ε > 0) come from ``rng`` (None: a fresh generator seeded 0), never from the agent's own
    generator: an evaluation in the middle of training must not change what training draws next (issue 15),
    so the evaluation schedule leaves a seed's training trajectory alone.

    A dataset env (MNIST, Digits) is instead evaluated on every test image exactly once, whatever
    ``episodes`` says, so the mean return is the test accuracy (with the default 1/0 rewards).

    The env is reset first, so an evaluation never resumes a half-played episode. With several envs the
    episodes are split evenly between them and extra episodes are discarded (as SB3's evaluate_policy
    does), so short episodes are not over-represented.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    if isinstance(env, DatasetVectorEnv):
        return evaluate_dataset(agent, env, epsilon, rng)
    n = env.num_envs
    targets = np.array([(episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    current_return = np.zeros(n)
    current_length = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = env.reset()
    bar = tqdm(
        total=int(targets.sum()),
        desc=progress,
        unit="episode",
        disable=progress is None,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    with fresh_episodes(agent), bar:
        while (counts < targets).any():
            actions = agent.act(obs, explore=False, epsilon=epsilon, rng=rng)
            obs, rewards, terminated, truncated, _ = env.step(actions)
            reset_finished(agent, terminated | truncated)
            current_return += rewards
            current_length += 1
            for i in np.flatnonzero(terminated | truncated):
                if counts[i] < targets[i]:
                    returns.append(float(current_return[i]))
                    lengths.append(int(current_length[i]))
                    counts[i] += 1
                    bar.update(1)
                current_return[i] = 0.0
                current_length[i] = 0
    return np.asarray(returns), np.asarray(lengths)


def evaluate_dataset(
    agent: Actor, env: gym.vector.VectorEnv, epsilon: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One-step episodes over the env's whole (test) set, each image answered exactly once, in order."""
    assert isinstance(env, DatasetVectorEnv)
    total = len(env.labels)
    rewards = np.empty(total, dtype=np.float64)
    seen = np.zeros(total, dtype=bool)
    obs, _ = env.reset()
    while not seen.all():
        actions = agent.act(obs, explore=False, epsilon=epsilon, rng=rng)
        obs, reward, _, _, info = env.step(actions)
        first = info["first_pass"]
        rewards[info["index"][first]] = reward[first]
        seen[info["index"][first]] = True
    return rewards, np.ones(total, dtype=np.int64)
