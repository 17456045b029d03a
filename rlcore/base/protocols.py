"""What the loops ask of agents, as typed protocols: a loop calls only these methods, never probes for others.

The registry (:mod:`agents.registry`) says which loop trains an agent and what it supports; these protocols
say what that loop calls. An agent satisfies them structurally (no base class to inherit).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import nn


class Actor(Protocol):
    """Plays in an env: what evaluation, videos and ``evaluate.py`` call."""

    recurrent: bool  # carries a hidden state per env between ``act`` calls

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Actions for a batch of observations. ``rng``: where random actions come from instead of the agent's
        own generator, so an evaluation (which passes its own) never changes the training trajectory."""

    def reset_state(self, starts: np.ndarray) -> None:
        """The envs where ``starts`` is true begin a new episode at the next ``act`` (stateless: nothing)."""

    def swap_state(self, state: object = None) -> object:
        """Put ``state`` (None: fresh) in place of the carried per-env state and return the old one."""


class Checkpointable(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OffPolicyAgent(Actor, Checkpointable, Protocol):
    """What :mod:`rlcore.training.offpolicy` and :mod:`rlcore.training.learner` call (DQN, DRQN)."""

    online: nn.Module

    @property
    def state_size(self) -> int:
        """Floats per env of the hidden state a sequence replay stores (0: none)."""

    @property
    def epsilon(self) -> float: ...

    def replay_state(self, n_envs: int) -> np.ndarray | None: ...

    def advance(self, env_steps: int, round_in_flight: bool = False) -> None:
        """The env step count moved on: schedules and due target syncs (deferred while a round is in flight)."""

    def begin_round(self) -> None:
        """A background round ended: apply what waited for it (learning rate, a due target sync)."""

    def refresh_actor(self) -> None:
        """Publish the learner's weights to the acting copy (overlap)."""

    def update(self, batch: Any) -> dict[str, torch.Tensor]: ...

    def update_round(self, batches: list[Any]) -> list[dict[str, torch.Tensor]]: ...


class AdversarialAgent(Checkpointable, Protocol):
    """What :mod:`rlcore.training.gan` calls (the GAN): alternating updates, sampling, the reusable features."""

    @property
    def n_classes(self) -> int:
        """> 0: class-conditional (``update`` and ``sample`` take labels)."""

    @property
    def generator(self) -> nn.Module: ...

    @property
    def discriminator(self) -> nn.Module: ...

    @property
    def encoder(self) -> nn.Module:
        """The discriminator's feature extractor, saved as encoder.pt for ``net.pretrained=``."""

    def update(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]: ...

    def sample(
        self, n: int, labels: torch.Tensor | None = None, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...
