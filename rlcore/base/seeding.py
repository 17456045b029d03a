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


def native_bf16_on_cpu() -> bool:
    """Whether oneDNN runs bf16 convolutions and matmuls on this CPU (AVX-512 cores, native with AVX512-BF16 or
    AMX). Without it, torch falls back to its reference convolution (``aten::_slow_conv2d_*``)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else True  # unknown torch: no claim either way


def slow_bf16_reason() -> str | None:
    """Why bf16 autocast is slower than fp32 on this CPU (None where oneDNN runs it natively): the one wording
    behind a run's warning and a benchmark's refusal."""
    if native_bf16_on_cpu():
        return None
    return (
        "this CPU has no oneDNN bf16 support (it needs AVX-512; torch reports "
        f"{torch.backends.cpu.get_cpu_capability()}): bf16 convolutions fall back to torch's reference kernels, "
        "several times slower than fp32 (docs/atari.md)"
    )


def slow_bf16_warning(amp: bool, device: torch.device) -> str | None:
    """One line for a run that asks for bf16 autocast on a CPU where it is slower than fp32, not faster."""
    reason = slow_bf16_reason() if amp and device.type == "cpu" else None
    return (
        None if reason is None else f"[rlcore] warning: amp=true, but {reason}; amp=false trains faster here"
    )


def configure_threads(threads: int) -> None:
    """0 keeps torch's default (one thread per core)."""
    if threads > 0:
        torch.set_num_threads(threads)
