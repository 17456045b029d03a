"""The TD target and loss against numbers worked out by hand."""

import pytest
import torch

from agents.q_learning import greedy_next_values, q_loss, td_target
from agents.schedules import linear_schedule


def test_td_target_by_hand():
    rewards = torch.tensor([1.0, 0.0, -1.0])
    next_values = torch.tensor([2.0, 10.0, 4.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    # 1 + 0.9*2 = 2.8 ; terminal -> 0 ; -1 + 0.9*4 = 2.6
    assert torch.allclose(td_target(rewards, next_values, terminated, 0.9), torch.tensor([2.8, 0.0, 2.6]))


def test_truncation_bootstraps_because_only_terminated_is_passed():
    # a time-limit end is stored as truncated, never terminated: the target keeps gamma * V(s')
    assert td_target(
        torch.tensor([1.0]), torch.tensor([5.0]), torch.tensor([0.0]), 0.5
    ).item() == pytest.approx(3.5)


def test_per_sample_discounts_for_n_step():
    out = td_target(
        torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0]), torch.zeros(2), torch.tensor([0.5, 0.25])
    )
    assert torch.allclose(out, torch.tensor([1.5, 1.25]))


def test_greedy_next_values_max_and_double():
    target_q = torch.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 0.0]])
    online_q = torch.tensor([[0.0, 0.0, 9.0], [0.0, 7.0, 1.0]])
    assert greedy_next_values(target_q).tolist() == [5.0, 4.0]
    # Double DQN: the online net picks (2, 1), the target net values them (3, 2)
    assert greedy_next_values(target_q, online_q).tolist() == [3.0, 2.0]


def test_huber_loss_by_hand():
    q = torch.tensor([0.0, 0.0, 0.0])
    target = torch.tensor([0.5, 2.0, -3.0])
    # |d|<=1: 0.5 d^2 = 0.125 ; |d|>1: |d| - 0.5 = 1.5 and 2.5 ; mean = 4.125 / 3
    assert q_loss(q, target, "huber").item() == pytest.approx(4.125 / 3)
    assert q_loss(q, target, "mse").item() == pytest.approx((0.25 + 4 + 9) / 3)
    weights = torch.tensor([2.0, 0.0, 0.0])
    assert q_loss(q, target, "huber", weights).item() == pytest.approx(0.25 / 3)


def test_linear_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 100, 10_000) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 0, 0) == pytest.approx(0.1)
