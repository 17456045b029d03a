"""Seeding and device selection: the two things every run does first."""

from __future__ import annotations

import random

import numpy as np
import torch

from rlcore.base.errors import ConfigError

EVAL_SEED_OFFSET = 10_000  # evaluation envs get their own seed so they never replay training episodes


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; envs, action spaces and buffers are seeded where they are built."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for ``cuda`` without one is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "config key 'device': 'cuda' was asked for but no CUDA device is visible; use device=cpu or auto"
        )
    return torch.device(name)


def configure_threads(threads: int) -> None:
    """0 keeps torch's default (one thread per core)."""
    if threads > 0:
        torch.set_num_threads(threads)
