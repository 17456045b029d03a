"""n-step TD targets and sequence priorities for DRQN's replayed windows (R2D2, Kapturowski et al. 2019).

Pure functions on tensors, used by the DQN agent's sequence loss (``agents/dqn.py``) and unit-tested on
hand-computed numbers (tests/test_sequence_family.py).

n-step returns inside a window. The sequence replay (:mod:`rlcore.replay.sequences`) gives every window the
flags the walk needs: ``valid`` (the position holds a step of the training start's episode, stored and
before the write head) and ``terminated``. From step ``t`` the return sums up to ``n`` rewards and stops
early

* at a ``terminated`` step: no bootstrap (an Atari life loss is ``terminated`` for the learner too);
* at the episode's last step, i.e. where the next position is not valid: a time-limit end (``truncated``)
  or the write head. It bootstraps from that step's next observation, which the replay stores as the real
  final observation at a time-limit end (Pardo et al. 2018), with γ^k for the k steps taken;
* at the window's right edge: the same, from the last available step's next observation. The replay
  carries ``n - 1`` steps after the trained ones (``lookahead``), so only those extra steps, which the
  loss does not train, get shortened returns.

This is the same walk as the flat replays' :func:`rlcore.replay.nstep.nstep_returns`, on a window instead of a
column of the ring buffer.
"""

from __future__ import annotations

import torch

# R2D2's priority mix: p = η · max_t |δ_t| + (1 − η) · mean_t |δ_t| (Kapturowski et al. 2019, sec. 2.3).
# A pure mean washes out the few large errors of a long sequence; a pure max is noisy.
PRIORITY_ETA = 0.9


def _ahead(x: torch.Tensor, k: int, fill: float | bool) -> torch.Tensor:
    """``x[:, t + k]`` at column ``t``, ``fill`` where ``t + k`` is past the window's end."""
    return x if k == 0 else torch.cat([x[:, k:], torch.full_like(x[:, :k], fill)], dim=1)


def sequence_nstep_targets(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    valid: torch.Tensor,
    next_values: torch.Tensor,
    n: int,
    gamma: float,
) -> torch.Tensor:
    """y_t = Σ_{k<m} γ^k r_{t+k} + γ^m (1 − term) V(s_{t+m}), m ≤ n, for every column of (B, S) windows.

    ``next_values[:, t]`` is V of step ``t``'s next observation (max_a Q_target, or Double DQN's
    Q_target at the online argmax), so V(s_{t+m}) is ``next_values[:, t + m - 1]``. ``valid`` and
    ``terminated`` are 0/1 per step. Columns that are not valid get an arbitrary finite value (the loss
    masks them). With ``n = 1`` this is ``r + γ (1 − terminated) V(s')``.
    """
    valid = valid.bool()
    terminated = terminated.float()
    targets = torch.zeros_like(rewards, dtype=torch.float32)
    walking = valid  # the walk from column t has reached step t + k (and not stopped before)
    for k in range(n):
        term_k = _ahead(terminated, k, 1.0)
        next_valid = _ahead(valid, k + 1, False)
        discount = gamma**k
        targets = targets + walking.float() * discount * _ahead(rewards.float(), k, 0.0)
        stop = walking & ((term_k > 0) | ~next_valid) if k < n - 1 else walking
        bootstrap = (1.0 - term_k) * (discount * gamma) * _ahead(next_values.float(), k, 0.0)
        targets = targets + stop.float() * bootstrap
        walking = walking & ~stop
    return targets


def sequence_priorities(
    td_errors: torch.Tensor, mask: torch.Tensor, eta: float = PRIORITY_ETA
) -> torch.Tensor:
    """One priority per sequence: η · max |δ| + (1 − η) · mean |δ| over its trained steps (``mask`` = 1).

    A sequence with no trained step (cannot happen for a sampled window: its training start is valid)
    gets 0. The sampler then stores (p + ε)^α, as for single transitions.
    """
    mask = mask.float()
    errors = td_errors.abs() * mask
    count = mask.sum(dim=1)
    mean = errors.sum(dim=1) / count.clamp(min=1.0)
    return eta * errors.max(dim=1).values + (1.0 - eta) * mean
