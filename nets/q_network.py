"""Q-networks: any feature extractor from ``nets`` with a linear Q head, optionally dueling.

Module names are ``extractor`` and ``head`` (as the supervised ``Classifier``), so an encoder moves
between a classifier and a Q-network with its state dict.
"""

from __future__ import annotations

import torch
from torch import nn

from nets.base import FeatureExtractor


def dueling_q(value: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Q = V + A − mean_a A: the mean-subtracted aggregation of Wang et al. 2016 (eq. 9), identifiable and stable."""
    return (
        value + advantages - advantages.mean(dim=-1, keepdim=True)
    )  # over actions (last axis; DRQN: B, T, A)


class QNetwork(nn.Module):
    """A feature extractor from ``nets`` followed by a linear head with one output per action.

    ``dueling``: two linear streams on the same features, a value (1 output) and advantages (one per
    action), combined by :func:`dueling_q`. The streams are single linear layers like the plain head, so
    any extractor works; Wang et al. put a 512-unit hidden layer in each stream on top of the Nature CNN.
    """

    def __init__(self, extractor: FeatureExtractor, n_actions: int, dueling: bool = False) -> None:
        super().__init__()
        self.extractor = extractor
        self.head = nn.Linear(extractor.features_dim, n_actions)
        self.value = nn.Linear(extractor.features_dim, 1) if dueling else None

    def forward(
        self, obs: torch.Tensor, state: object | None = None, starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, object | None]:
        """``starts`` (recurrent nets only): rows whose state resets before that step (nets/recurrent.py)."""
        features, state = self.extractor(obs, state) if starts is None else self.extractor(obs, state, starts)
        q = self.head(features)
        if self.value is not None:  # the plain head is the advantage stream
            q = dueling_q(self.value(features), q)
        return q, state
