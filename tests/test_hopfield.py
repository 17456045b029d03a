"""nets.hopfield: Hebb's and Storkey's rules on hand-computed cases, energy that never rises under asynchronous
updates, stored patterns as fixed points below capacity, and modern (softmax) retrieval."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from nets.hopfield import (
    energy,
    hebbian_weights,
    modern_retrieve,
    storkey_weights,
    update_async,
    update_sync,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from classic_hopfield import break_point, flip  # noqa: E402

torch.set_num_threads(1)


def patterns(p: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2, (p, n), generator=torch.Generator().manual_seed(seed)).double() * 2 - 1


def test_hebbian_rule_on_a_hand_computed_case() -> None:
    xi = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    # (1/3) (xi1 xi1^T + xi2 xi2^T): off-diagonal w01 = (-1 + 1)/3, w02 = (1 - 1)/3, w12 = (-1 - 1)/3
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -2 / 3], [0.0, -2 / 3, 0.0]], dtype=torch.float64)
    assert torch.allclose(hebbian_weights(xi), expected)


def test_storkey_rule_on_a_hand_computed_case() -> None:
    """N = 3, xi1 = (1, -1, 1) then xi2 = (1, 1, -1).

    After xi1 (W = 0, so every h = 0): w01 = -1/3, w02 = 1/3, w12 = -1/3. For xi2, h_ij = w_ik xi2_k (k the third
    unit): h01 = w02 xi2_2 = -1/3, h10 = w12 xi2_2 = 1/3, so w01 += (1/3)(1 - 1/3 + 1/3) -> 0; h02 = w01 xi2_1 = -1/3,
    h20 = w21 xi2_1 = -1/3, so w02 += (1/3)(-1 + 1/3 - 1/3) -> 0; h12 = w10 xi2_0 = -1/3, h21 = w20 xi2_0 = 1/3,
    so w12 += (1/3)(-1 - 1/3 - 1/3) = -5/9 -> -8/9.
    """
    xi = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    after_one = storkey_weights(xi[:1])
    assert torch.allclose(after_one, hebbian_weights(xi[:1]))  # from W = 0 Storkey's first step is Hebb's
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -8 / 9], [0.0, -8 / 9, 0.0]], dtype=torch.float64)
    assert torch.allclose(storkey_weights(xi), expected)


def test_energy_never_rises_under_asynchronous_updates() -> None:
    """Any symmetric zero-diagonal W (random here, not a stored memory) and random starts: E after every single
    unit's update is <= E before it (Hopfield 1982), and the end is a fixed point."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, 40, generator=gen, dtype=torch.float64)
    w = (a + a.T) / 2
    w.fill_diagonal_(0.0)
    starts = patterns(16, 40, seed=1)
    trace: list[torch.Tensor] = [energy(w, starts)]
    final, sweeps = update_async(w, starts, max_sweeps=50, generator=gen, trace=trace)
    energies = torch.stack(trace)  # (updates + 1, batch)
    assert bool((energies[1:] <= energies[:-1] + 1e-12).all())
    assert bool((energies[-1] < energies[0]).all())
    assert sweeps < 50 and torch.equal(update_async(w, final, generator=gen)[0], final)


def test_synchronous_updates_can_oscillate_where_asynchronous_ones_settle() -> None:
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    s = torch.tensor([[1.0, -1.0]])
    once = update_sync(w, s)
    assert torch.equal(once, torch.tensor([[-1.0, 1.0]], dtype=torch.float64))
    assert torch.equal(update_sync(w, once), s.double())  # a 2-cycle at constant energy
    settled, _ = update_async(w, s, generator=torch.Generator().manual_seed(0))
    assert settled[0, 0] == settled[0, 1]  # a fixed point: both units agree


@pytest.mark.parametrize("rule", [hebbian_weights, storkey_weights])
def test_stored_patterns_are_fixed_points_below_capacity(rule) -> None:  # noqa: ANN001
    xi = patterns(5, 200)  # alpha = 0.025, far below 0.138 (and below N / (2 ln N) = 19 for Hebb)
    w = rule(xi)
    assert torch.equal(update_sync(w, xi), xi)
    noisy = flip(xi, 0.1, torch.Generator().manual_seed(2))  # 20 of 200 bits wrong
    recalled, _ = update_async(w, noisy, generator=torch.Generator().manual_seed(3))
    assert torch.equal(recalled, xi)


def test_storkey_stores_more_than_hebb() -> None:
    xi = patterns(40, 100, seed=4)  # alpha = 0.4: past Hebb's capacity
    hebb_stable = (update_sync(hebbian_weights(xi), xi) == xi).all(dim=1).double().mean()
    storkey_stable = (update_sync(storkey_weights(xi), xi) == xi).all(dim=1).double().mean()
    assert storkey_stable > hebb_stable


def test_modern_hopfield_retrieves_in_one_step() -> None:
    xi = patterns(300, 64, seed=5)  # alpha = 4.7: hopeless for the classical net
    queries = flip(xi, 0.2, torch.Generator().manual_seed(6))
    recalled = torch.sign(modern_retrieve(xi, queries, beta=1.0))
    assert torch.equal(recalled, xi)
    # beta -> 0 averages every pattern (the global mean), retrieving nothing
    assert torch.allclose(
        modern_retrieve(xi, queries[:1], beta=1e-9), xi.mean(dim=0, keepdim=True), atol=1e-6
    )
    with pytest.raises(ValueError, match="beta"):
        modern_retrieve(xi, queries, beta=0.0)


def test_patterns_must_be_plus_minus_one() -> None:
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        hebbian_weights(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="\\(P, N\\)"):
        storkey_weights(torch.ones(3))


def test_break_point_interpolates_the_first_crossing() -> None:
    assert break_point([0.1, 0.2, 0.3], [0.99, 0.95, 0.85]) == pytest.approx(0.25)
    assert break_point([0.1, 0.2], [0.99, 0.95]) is None
