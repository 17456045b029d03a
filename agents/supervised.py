"""Supervised classifier: the same feature extractors as DQN, trained with cross-entropy on the labels.

It is the baseline that a reward-only learner (DQN on a dataset env) is compared with, and a way to train
encoders for reuse. Read top to bottom: the config schema, the pure math (loss, accuracy, learning-rate
schedules, early stopping), the network (module names ``extractor`` and ``head``, as DQN's ``QNetwork``,
so encoders move between the two), and the agent. The epoch loop is :mod:`rlcore.training.supervised`.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nets
from agents.augment import random_shift, require_image_shift
from agents.configs import LR_SCHEDULES, SupervisedConfig
from rlcore.base.errors import ConfigError


def lr_factor(
    schedule: str,
    epoch: float,
    total_epochs: float,
    step_epochs: int = 1,
    gamma: float = 0.1,
    min_fraction: float = 0.0,
) -> float:
    """Multiplier of the base learning rate after ``epoch`` (fractional) epochs of ``total_epochs``.

    step: gamma ** floor(epoch / step_epochs); exponential: gamma ** epoch (smooth per step); cosine:
    annealed from 1 to ``min_fraction`` over ``total_epochs`` (Loshchilov & Hutter 2017, no restarts).
    """
    if schedule == "none":
        return 1.0
    if schedule == "step":
        return gamma ** math.floor(epoch / step_epochs)
    if schedule == "exponential":
        return gamma**epoch
    if schedule == "cosine":
        progress = min(max(epoch / total_epochs, 0.0), 1.0)
        return min_fraction + (1.0 - min_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {list(LR_SCHEDULES)}")


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Batch-mean cross-entropy of integer labels under softmax(logits)."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def correct_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of rows whose argmax is the label (a tensor, so summing it needs no device sync)."""
    return (logits.argmax(dim=1) == labels).sum()


class EarlyStopping:
    """Tracks the best validation score; ``stop`` once ``patience`` epochs in a row did not beat it."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    def update(self, score: float, epoch: int) -> bool:
        """Record one epoch's score; True when it is a new best (the caller keeps those weights)."""
        if score > self.best:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience


# ------------------------------------------------------------------------------------------- the network


class Classifier(nn.Module):
    """A feature extractor from ``nets`` and a linear layer with one logit per class (cf. ``QNetwork``)."""

    def __init__(self, extractor: nets.FeatureExtractor, n_classes: int) -> None:
        super().__init__()
        if extractor.is_recurrent:
            raise ConfigError(
                "a classifier sees one image per sample, not a time sequence; for an LSTM over the rows "
                "of an image use net=lstm net.rows=true"
            )
        self.extractor = extractor
        self.head = nn.Linear(extractor.features_dim, n_classes)

    def forward(self, obs: torch.Tensor, state: object | None = None) -> tuple[torch.Tensor, object | None]:
        features, state = self.extractor(obs, state)
        return self.head(features), state


# ------------------------------------------------------------------------------------------- the agent


class SupervisedAgent:
    """Cross-entropy updates on (images, labels) batches; ``act`` answers the argmax class."""

    def __init__(
        self,
        cfg: SupervisedConfig,
        net_cfg: object,
        observation_space: gym.Space,
        action_space: gym.Space | None,
        *,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(f"a classifier needs a Discrete action space (the classes), got {action_space}")
        self.cfg = cfg
        self.device = device
        self.n_classes = int(action_space.n)
        self.model = Classifier(nets.build_extractor(net_cfg, observation_space), self.n_classes).to(device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                self.params,
                lr=cfg.lr,
                momentum=cfg.momentum,
                nesterov=cfg.nesterov,
                weight_decay=cfg.weight_decay,
            )
        else:
            self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.augment_shift:
            require_image_shift(observation_space.shape or (), cfg.augment_shift, "agent.augment_shift")
        self.rng = np.random.default_rng(seed)
        # its own stream, so that augmentation leaves the batch order and initialisation of a seed unchanged
        self.augment_generator = torch.Generator().manual_seed(seed)
        self.lr = cfg.lr
        self.updates = 0

    @property
    def online(self) -> Classifier:
        """The network, under DQN's attribute name, so tools written for ``agent.online`` work on both."""
        return self.model

    # -- acting ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Class scores in eval mode (dropout off, batch-norm running statistics)."""
        self.model.eval()
        if isinstance(obs, np.ndarray) and not obs.flags.writeable:
            obs = obs.copy()  # dataset arrays are read-only; torch warns on wrapping them
        out, _ = self.model(torch.as_tensor(obs, device=self.device))
        return out

    # stateless: the per-env state hooks of the Actor protocol (rlcore.base.protocols) do nothing
    recurrent = False

    def reset_state(self, starts: np.ndarray) -> None:
        """Nothing to reset: each answer depends on its observation alone."""

    def swap_state(self, state: object = None) -> object:
        return None

    def act(
        self,
        obs: np.ndarray,
        explore: bool = False,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """The predicted class of each image; with ``epsilon`` > 0 a uniformly random class that often
        (drawn from ``rng`` when given, else the agent's generator)."""
        predictions = self.logits(obs).argmax(dim=1).cpu().numpy()
        if epsilon:
            rng = self.rng if rng is None else rng
            random_mask = rng.random(len(predictions)) < epsilon
            predictions = np.where(
                random_mask, rng.integers(0, self.n_classes, len(predictions)), predictions
            )
        return predictions

    # -- schedules ---------------------------------------------------------------------------------------
    def advance(self, epoch: float) -> None:
        """Set the learning rate for training progress ``epoch`` (fractional epochs done)."""
        cfg = self.cfg
        self.lr = cfg.lr * lr_factor(
            cfg.lr_schedule, epoch, cfg.epochs, cfg.lr_step_epochs, cfg.lr_gamma, cfg.lr_min_fraction
        )
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    # -- learning ----------------------------------------------------------------------------------------
    def update(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on ``(images, labels)``; metrics are detached tensors (no device sync)."""
        images, labels = batch
        if (
            self.cfg.augment_shift
        ):  # training batches only: act/logits and the scored sets see the images as they are
            images = random_shift(images, self.cfg.augment_shift, self.augment_generator)
        self.model.train()
        logits, _ = self.model(images)
        loss = classification_loss(logits, labels, self.cfg.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        metrics = {"loss": loss.detach(), "correct": correct_count(logits.detach(), labels)}
        if self.cfg.max_grad_norm > 0:
            metrics["grad_norm"] = nn.utils.clip_grad_norm_(
                self.params, self.cfg.max_grad_norm, foreach=True
            ).detach()
        self.optimizer.step()
        self.updates += 1
        return metrics

    # -- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr": self.lr,
            "updates": self.updates,
            "rng": self.rng.bit_generator.state,
            "augment_rng": self.augment_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr = float(state["lr"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]
        if "augment_rng" in state:  # absent from checkpoints written before augmentation existed
            self.augment_generator.set_state(state["augment_rng"])
