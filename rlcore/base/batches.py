"""The mini-batch types that replays produce and agents consume: the contract between the two layers."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A sampled mini-batch, as tensors on the learner's device."""

    obs: torch.Tensor
    actions: torch.Tensor  # int64
    rewards: torch.Tensor  # float32
    next_obs: torch.Tensor
    terminated: torch.Tensor  # float32, 1.0 where the transition ended the episode for the learner
    discounts: torch.Tensor | None = None  # per-sample gamma**n for n-step returns (None: one step)
    weights: torch.Tensor | None = None  # importance weights (prioritized replay)
    indices: np.ndarray | None = None  # buffer positions (prioritized replay)


class SequenceBatch(NamedTuple):
    """``B`` windows of ``T = burn_in + sequence_length + lookahead`` steps, as tensors on the learner's device."""

    obs: torch.Tensor  # (B, T + 1, *obs_shape): obs[:, t + 1] is the next observation of step t
    actions: torch.Tensor  # (B, T) int64
    rewards: torch.Tensor  # (B, T) float32
    terminated: torch.Tensor  # (B, T) float32: 1 where the step ended the episode for the learner
    mask: torch.Tensor  # (B, T) float32: 1 on the valid steps after the burn-in (the steps the loss uses)
    starts: (
        torch.Tensor
    )  # (B, T + 1) bool: reset the state before this step (the first step after left padding)
    initial_state: torch.Tensor | None = None  # (B, state_size) stored hidden state before step 0, or None
    valid: torch.Tensor | None = None  # (B, T) float32: 1 on every step of the episode (lookahead included)
    weights: torch.Tensor | None = None  # (B,) importance weights (prioritized replay)
    indices: np.ndarray | None = None  # (B,) buffer positions of the training starts (prioritized replay)
