"""The math of Q-learning as pure functions on tensors: TD targets and the TD losses.

Used by DQN and DRQN (``agents/dqn.py``) and by the sequence n-step targets (``agents.sequence_targets``);
each is unit-tested on hand-computed numbers (tests/test_dqn_math.py, tests/test_drqn.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def td_target(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    discounts: torch.Tensor | float,
) -> torch.Tensor:
    """y = r + γ · (1 − terminated) · V(s'). Truncated transitions are not terminal: they bootstrap."""
    return rewards + discounts * (1.0 - terminated) * next_values


def greedy_next_values(
    next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None
) -> torch.Tensor:
    """max_a Q_target(s', a), or Q_target(s', argmax_a Q_online(s', a)) for Double DQN."""
    if next_q_online is None:
        return next_q_target.max(dim=1).values
    best = next_q_online.argmax(dim=1, keepdim=True)
    return next_q_target.gather(1, best).squeeze(1)


def q_loss(
    q_taken: torch.Tensor, target: torch.Tensor, kind: str = "huber", weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Huber (smooth L1 with δ = 1, the error clipping of Mnih et al. 2015) or squared TD error, batch mean.

    ``weights``: prioritized replay's importance weights, one per sample, multiplying each sample's loss.
    """
    if kind == "huber":
        per_sample = F.smooth_l1_loss(q_taken, target, reduction="none")
    else:
        per_sample = F.mse_loss(q_taken, target, reduction="none")
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean()


def masked_q_loss(
    q_taken: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    kind: str = "huber",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """``q_loss`` over the steps of a batch of sequences where ``mask`` is 1 (padding and burn-in are 0):
    the mean over the valid steps, so short sequences do not dilute the loss. ``weights``: prioritized
    replay's importance weights, one per sequence, multiplying each of its steps' losses (R2D2)."""
    per_step = (
        F.smooth_l1_loss(q_taken, target, reduction="none")
        if kind == "huber"
        else F.mse_loss(q_taken, target, reduction="none")
    )
    if weights is not None:
        per_step = per_step * weights.unsqueeze(1)
    return (per_step * mask).sum() / mask.sum().clamp(min=1.0)
