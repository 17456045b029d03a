"""Proportional prioritized experience replay (Schaul et al. 2016, "Prioritized Experience Replay").

:class:`SumTree` keeps one priority per buffer position in a binary tree whose inner nodes hold the sum
(and, in a second tree, the minimum) of their children, so sampling proportionally to priority and
changing a priority both cost O(log N). Both are vectorised over a batch: one numpy step per tree level
(20 levels for 1M leaves), not one Python step per sample.

:class:`PrioritizedSampler` is what a replay buffer holds to sample by priority instead of uniformly
(composition: :class:`rlcore.replay.ReplayBuffer` and :class:`rlcore.replay.frames.FrameReplayBuffer` call
it from ``add``/``sample_indices``/``gather``). It implements the paper's Algorithm 1: new transitions get
the largest priority seen so far, priorities are ``(|δ| + ε)^α``, sampling is stratified (one draw per
equal slice of the total), and importance weights ``(N · P(i))^-β`` are normalised by their maximum, with
β annealed linearly from ``beta0`` to 1 over ``total_steps`` env steps (counted as transitions added).
"""

from __future__ import annotations

import threading

import numpy as np
import torch


class SumTree:
    """Priorities of ``capacity`` leaves with O(log N) batched update, prefix-sum search, total and minimum."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"sum-tree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())  # a power of two: every leaf at one depth
        self.depth = self.leaves.bit_length() - 1
        # Heap layout: node 1 is the root, node i has children 2i and 2i+1, leaf j is node leaves + j.
        self.sums = np.zeros(2 * self.leaves, dtype=np.float64)
        self.mins = np.full(2 * self.leaves, np.inf, dtype=np.float64)  # empty leaves never set the minimum

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def min(self) -> float:
        """The smallest priority of a set leaf (inf when none is set)."""
        return float(self.mins[1])

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.sums[self.leaves + np.asarray(indices, dtype=np.int64)]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of leaves ``indices`` (the last one wins for repeated indices)."""
        indices = np.asarray(indices, dtype=np.int64)
        priorities = np.asarray(priorities, dtype=np.float64)
        if indices.size == 0:
            return
        if np.any(priorities < 0) or not np.all(np.isfinite(priorities)):
            raise ValueError("priorities must be finite and >= 0")
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"sum-tree leaf index out of range [0, {self.capacity})")
        nodes = self.leaves + indices
        self.sums[nodes] = priorities
        self.mins[nodes] = priorities
        if len(nodes) == 1:  # one env's add: plain Python over the 20 levels is ~10x cheaper than numpy calls
            node, sums, mins = int(nodes[0]) // 2, self.sums, self.mins
            while node >= 1:
                sums[node] = sums[2 * node] + sums[2 * node + 1]
                mins[node] = min(mins[2 * node], mins[2 * node + 1])
                node //= 2
            return
        nodes = np.unique(nodes)  # sorted once; halving keeps it sorted, so duplicates are neighbours
        for _ in range(self.depth):  # one level per pass, each parent recomputed from both its children
            nodes = nodes // 2
            if len(nodes) > 1:
                nodes = nodes[np.concatenate(([True], nodes[1:] != nodes[:-1]))]
            left, right = 2 * nodes, 2 * nodes + 1
            self.sums[nodes] = self.sums[left] + self.sums[right]
            self.mins[nodes] = np.minimum(self.mins[left], self.mins[right])

    def find(self, values: np.ndarray) -> np.ndarray:
        """For each value in [0, total), the leaf whose prefix-sum interval contains it."""
        values = np.array(values, dtype=np.float64)
        nodes = np.ones(len(values), dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.sums[left]
            go_right = values >= left_sum
            values = np.where(go_right, values - left_sum, values)
            nodes = left + go_right
        return nodes - self.leaves


class PrioritizedSampler:
    """Proportional prioritization for a replay buffer of ``capacity`` positions (see the module docstring).

    Thread-safe: with the loop's ``overlap=true`` the learner thread updates priorities while the main
    thread adds transitions and samples, so every tree operation holds one lock.
    """

    def __init__(
        self,
        capacity: int,
        alpha: float = 0.6,
        beta0: float = 0.4,
        eps: float = 1e-6,
        total_steps: int = 1,
        seed: int = 0,
    ) -> None:
        self.tree = SumTree(capacity)
        self.alpha, self.beta0, self.eps = float(alpha), float(beta0), float(eps)
        self.total_steps = max(int(total_steps), 1)
        self.max_priority = 1.0  # stored (already ^α) priority given to new transitions
        self.steps = 0  # transitions added = env steps across all envs: the clock of the β schedule
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()

    @property
    def beta(self) -> float:
        """β annealed linearly from beta0 to 1 over total_steps env steps (Schaul et al. 2016, sec. 3.4)."""
        return self.beta0 + (1.0 - self.beta0) * min(1.0, self.steps / self.total_steps)

    def on_add(self, indices: np.ndarray) -> None:
        """New (or overwritten) positions: give them the largest priority so each is replayed soon."""
        indices = np.asarray(indices, dtype=np.int64)
        with self.lock:
            self.tree.update(indices, np.full(len(indices), self.max_priority))
            self.steps += len(indices)

    def sample_indices(self, batch_size: int, size: int) -> np.ndarray:
        """``batch_size`` positions in [0, size), one from each of ``batch_size`` equal slices of the total."""
        with self.lock:
            total = self.tree.total
            if total <= 0:
                raise RuntimeError("cannot sample from an empty prioritized replay")
            bounds = np.arange(batch_size + 1) * (total / batch_size)
            values = self.rng.uniform(bounds[:-1], bounds[1:])
            indices = self.tree.find(np.minimum(values, np.nextafter(total, 0)))
        # Rounding in the tree's subtractions can step one leaf past the last written one: stay in range.
        return np.minimum(indices, size - 1)

    def weights(self, indices: np.ndarray, size: int) -> np.ndarray:
        """Importance weights (N · P(i))^-β / max_j (N · P(j))^-β as float32; the max uses the min priority."""
        with self.lock:
            total, p_min = self.tree.total, self.tree.min
            p = self.tree.get(indices)
        beta = self.beta
        # (N p_i / total)^-β / (N p_min / total)^-β = (p_i / p_min)^-β
        return (
            np.power(p / p_min, -beta).astype(np.float32) if total > 0 else np.ones(len(indices), np.float32)
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | torch.Tensor) -> None:
        """Priorities (|δ| + ε)^α from the TD errors of the sampled transitions."""
        if isinstance(td_errors, torch.Tensor):
            td_errors = td_errors.detach().float().cpu().numpy()
        priorities = np.power(np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps, self.alpha)
        with self.lock:
            self.tree.update(indices, priorities)
            self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))

    # ------------------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Leaf priorities, max priority, β clock and generator state (weights_only-safe)."""
        with self.lock:
            return {
                "capacity": self.tree.capacity,
                "priorities": torch.from_numpy(
                    self.tree.sums[self.tree.leaves : self.tree.leaves + self.tree.capacity].copy()
                ),
                "set": torch.from_numpy(
                    np.isfinite(self.tree.mins[self.tree.leaves : self.tree.leaves + self.tree.capacity])
                ),
                "max_priority": self.max_priority,
                "steps": self.steps,
                "rng": self.rng.bit_generator.state,
            }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.tree.capacity:
            raise ValueError(
                f"prioritized replay capacity differs: saved {state['capacity']}, configured {self.tree.capacity}"
            )
        tree = SumTree(self.tree.capacity)
        written = np.flatnonzero(state["set"].numpy())
        tree.update(written, state["priorities"].numpy()[written])
        with self.lock:
            self.tree = tree
            self.max_priority = float(state["max_priority"])
            self.steps = int(state["steps"])
            self.rng.bit_generator.state = state["rng"]
