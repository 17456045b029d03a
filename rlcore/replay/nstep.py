"""n-step returns computed at sample time from stored one-step transitions (Sutton 1988; Hessel et al. 2018).

Both replay buffers lay transitions out as a ring of rows with one column per env, so env ``e``'s stream
is its column and the transition after row ``r`` is row ``r + 1`` of the same column. From a sampled
transition the return walks forward up to ``n`` rows and stops early

- at a ``terminated`` transition: the episode ended for the learner (life losses included), no bootstrap;
- at a ``truncated`` transition: the episode was cut by a time limit, bootstrap from its real ``next_obs``
  (Pardo et al. 2018);
- at the newest stored row (the write head): rows past it are not written yet or belong to the oldest,
  partly overwritten data, so they are never used.

Nothing beyond the one-step transitions is stored: no extra observations and no per-n bookkeeping, so ``n``
can change without refilling the buffer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStep(NamedTuple):
    """Per sample: the discounted reward sum, the row whose next_obs bootstraps, and how to bootstrap."""

    returns: np.ndarray  # float32, sum_{i<k} γ^i r_{t+i}
    last_row: np.ndarray  # int64, row of transition t+k-1, whose next_obs is s_{t+k}
    terminated: np.ndarray  # float32, 1.0 where the walk stopped at a terminal (no bootstrap)
    discounts: np.ndarray  # float32, γ^k


def nstep_returns(
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    row: np.ndarray,
    env: np.ndarray,
    ahead: np.ndarray,
    n: int,
    gamma: float,
) -> NStep:
    """n-step targets' ingredients for the transitions at ``(row, env)`` of ``(rows, n_envs)`` arrays.

    ``ahead[i]`` is how many rows after ``row[i]`` are stored (0 for the newest row): the walk never
    goes further. Vectorised over batch and steps: a (batch, n) window of each sample's column.
    """
    rows = rewards.shape[0]
    row = np.asarray(row, dtype=np.int64)
    env = np.asarray(env, dtype=np.int64)[:, None]
    steps = np.arange(n)
    walk = (row[:, None] + steps) % rows  # (batch, n): rows t .. t+n-1 of each sample's column
    ended = terminated[walk, env].astype(bool)
    stop = ended | truncated[walk, env].astype(bool) | (steps >= np.asarray(ahead)[:, None])
    stop[:, -1] = True
    last = stop.argmax(axis=1)  # the first step that ends the walk: k = last + 1 transitions are summed
    used = steps <= last[:, None]
    returns = (np.where(used, rewards[walk, env], 0.0) * gamma**steps).sum(axis=1)
    rows_out = walk[np.arange(len(row)), last]
    return NStep(
        returns.astype(np.float32),
        rows_out,
        ended[np.arange(len(row)), last].astype(np.float32),
        (gamma ** (last + 1.0)).astype(np.float32),
    )
