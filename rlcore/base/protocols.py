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


class LayerwisePretrainer(Checkpointable, Protocol):
    """What :mod:`rlcore.training.layerwise` calls: unsupervised models trained in stages of epochs, each stage
    on its own inputs (agent=rbm, agent=dbn: one RBM per stage; agent=sparse_coding: dictionary, then LISTA)."""

    stages: list[tuple[str, int]]  # (name, epochs) in training order

    def prepare(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observations -> the flat float vectors the model sees."""

    def stage_inputs(self, stage: int, data: torch.Tensor) -> torch.Tensor:
        """What stage ``stage`` learns from (for a DBN: the up-pass through the layers below)."""

    def begin_stage(self, stage: int, data: torch.Tensor, batches_per_epoch: int) -> None: ...

    def update(self, stage: int, batch: torch.Tensor) -> dict[str, float]: ...

    def end_epoch(self, stage: int) -> None: ...

    def evaluate(self, stage: int, data: torch.Tensor) -> dict[str, float]: ...

    def encoder(self) -> nn.Module:
        """The feature extractor other agents load with ``net.pretrained=<run_dir>``."""

    def encoder_net(self) -> dict[str, Any]:
        """The net options that build :meth:`encoder` (written into encoder.pt)."""

    def filters(self) -> torch.Tensor:
        """First-layer filters (or dictionary atoms), one per row, in the observation's shape."""

    def samples(self, n: int) -> torch.Tensor | None:
        """``n`` samples from the model in the observation's shape (None: not a generative sampler)."""

    def reconstruct(self, data: torch.Tensor) -> torch.Tensor:
        """Reconstructions of prepared inputs, in the observation's shape."""

    def final_figures(self, splits: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Figures for summary.json computed once at the end (e.g. AIS log-likelihoods)."""
