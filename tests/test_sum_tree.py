"""Sum-tree invariants, proportional sampling and prioritized replay's weights and priorities."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats

from rlcore.replay import ReplayBuffer
from rlcore.replay.sum_tree import PrioritizedSampler, SumTree


def check_invariants(tree: SumTree) -> None:
    inner = np.arange(1, tree.leaves)
    np.testing.assert_allclose(tree.sums[inner], tree.sums[2 * inner] + tree.sums[2 * inner + 1], rtol=1e-12)
    np.testing.assert_array_equal(
        tree.mins[inner], np.minimum(tree.mins[2 * inner], tree.mins[2 * inner + 1])
    )


@pytest.mark.parametrize("capacity", [1, 2, 7, 64, 1000])
def test_sums_and_minimums_hold_after_random_batched_updates(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    reference = np.zeros(capacity)
    written = np.zeros(capacity, bool)
    for step in range(50):  # single-leaf updates (one env's add) take their own path: the first 10
        idx = rng.integers(0, capacity, size=1 if step < 10 else rng.integers(2, 40))
        values = rng.uniform(0.01, 5.0, size=len(idx))
        tree.update(idx, values)
        for i, v in zip(idx, values, strict=True):  # repeated indices: the last one wins, as numpy assigns
            reference[i] = v
        written[idx] = True
        check_invariants(tree)
        assert tree.total == pytest.approx(reference.sum(), rel=1e-12)
        assert tree.min == reference[written].min()
        np.testing.assert_array_equal(tree.get(np.arange(capacity)), reference)


def test_find_matches_a_prefix_sum_search():
    rng = np.random.default_rng(0)
    tree = SumTree(37)
    priorities = rng.uniform(0, 3, size=37)
    priorities[[3, 10, 11]] = 0.0  # zero-priority leaves are never found
    tree.update(np.arange(37), priorities)
    values = rng.uniform(0, tree.total, size=5000)
    expected = np.searchsorted(np.cumsum(priorities), values, side="right")
    np.testing.assert_array_equal(tree.find(values), expected)
    assert not np.isin(tree.find(values), [3, 10, 11]).any()


def test_rejects_negative_or_nan_priorities_and_leaves_out_of_range():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update(np.array([0]), np.array([np.nan]))
    with pytest.raises(IndexError, match="out of range"):
        SumTree(5).update(np.array([5]), np.array([1.0]))  # a padding leaf of the 8-leaf tree


def test_stratified_sampling_is_proportional_to_priority_chi_square():
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 9.5, 0.0, 5.0])  # leaf 6: written with priority 0
    sampler = PrioritizedSampler(10, alpha=1.0, seed=0)  # 10 leaves, only the first 8 written
    sampler.on_add(np.arange(8))
    sampler.tree.update(np.arange(8), priorities)
    draws = np.concatenate([sampler.sample_indices(32, size=8) for _ in range(2000)])
    counts = np.bincount(draws, minlength=10)
    assert counts[6] == 0 and counts[8:].sum() == 0
    live = priorities > 0
    expected = len(draws) * priorities[live] / priorities.sum()
    _, p_value = stats.chisquare(counts[:8][live], expected)
    assert p_value > 1e-3, (counts, expected)
    # and the test has teeth: uniform sampling would be rejected
    uniform = np.bincount(np.random.default_rng(1).integers(0, live.sum(), len(draws)), minlength=live.sum())
    assert stats.chisquare(uniform, expected)[1] < 1e-6


def test_new_transitions_get_the_largest_priority_and_td_errors_set_priorities():
    sampler = PrioritizedSampler(8, alpha=0.5, eps=0.01)
    sampler.on_add(np.arange(4))
    np.testing.assert_array_equal(sampler.tree.get(np.arange(4)), 1.0)  # the initial max priority
    sampler.update_priorities(np.array([0, 1]), torch.tensor([-3.99, 0.0]))
    np.testing.assert_allclose(sampler.tree.get(np.array([0, 1])), [2.0, 0.1])  # (|δ| + ε)^α
    sampler.on_add(np.array([4]))
    assert sampler.tree.get(np.array([4]))[0] == pytest.approx(2.0)  # max seen so far


def test_importance_weights_on_hand_values_and_beta_annealing():
    sampler = PrioritizedSampler(4, alpha=1.0, beta0=0.5, total_steps=8)
    sampler.on_add(np.arange(4))  # 4 of 8 steps: β = 0.5 + 0.5 * 4/8 = 0.75
    sampler.tree.update(np.arange(4), np.array([1.0, 2.0, 4.0, 1.0]))
    assert sampler.beta == pytest.approx(0.75)
    # P = p / 8, N = 4: w = (4 P)^-β / max w = (p / p_min)^-β
    expected = np.array([1.0, 2.0**-0.75, 4.0**-0.75, 1.0])
    np.testing.assert_allclose(sampler.weights(np.arange(4), size=4), expected, rtol=1e-6)
    sampler.on_add(np.arange(4, 16) % 4)  # past total_steps: β stays at 1
    assert sampler.beta == 1.0


def test_state_dict_round_trip_with_weights_only():
    a = PrioritizedSampler(100, alpha=0.6, seed=3, total_steps=1000)
    a.on_add(np.arange(70))
    a.update_priorities(np.arange(0, 70, 3), np.linspace(-2, 2, 24))
    data = io.BytesIO()
    torch.save(a.state_dict(), data)
    data.seek(0)
    b = PrioritizedSampler(100, alpha=0.6, seed=99, total_steps=1000)
    b.load_state_dict(torch.load(data, weights_only=True))
    np.testing.assert_array_equal(a.tree.sums, b.tree.sums)
    assert (a.tree.min, a.max_priority, a.beta) == (b.tree.min, b.max_priority, b.beta)
    np.testing.assert_array_equal(a.sample_indices(32, 70), b.sample_indices(32, 70))


def test_replay_buffer_with_sampler_samples_written_positions_and_carries_weights():
    space = gym.spaces.Box(-1, 1, (2,), np.float32)
    buffer = ReplayBuffer(50, space, n_envs=2, sampler=PrioritizedSampler(50, seed=0))
    for t in range(10):  # 20 of 50 positions written
        obs = np.full((2, 2), t, np.float32)
        buffer.add(obs, obs + 1, np.zeros(2), np.ones(2), np.zeros(2), np.zeros(2))
    buffer.update_priorities(np.array([0, 1]), np.array([100.0, 100.0]))
    batch = buffer.sample(64)
    assert batch.indices.max() < 20 and batch.weights.shape == (64,)
    assert np.mean(np.isin(batch.indices, [0, 1])) > 0.5  # two high-priority positions dominate
    low = ~np.isin(batch.indices, [0, 1])
    assert torch.all(batch.weights[torch.from_numpy(low)] == 1.0) and torch.all(batch.weights <= 1.0)
    state = buffer.state_dict()
    restored = ReplayBuffer(50, space, n_envs=2, sampler=PrioritizedSampler(50, seed=5))
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.sample(16).indices, buffer.sample(16).indices)
    with pytest.raises(ValueError, match="not prioritized"):
        ReplayBuffer(50, space, n_envs=2, sampler=PrioritizedSampler(50)).load_state_dict(
            ReplayBuffer(50, space, n_envs=2).state_dict()
        )
