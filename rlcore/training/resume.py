"""Resuming a run, the loop's side: the training checkpoint (weights + loop state + replay), RNG states and stop
signals. Which settings a resume may change is :mod:`rlcore.resume_config`. Users asked for this after SB3 reset ε and lost the replay on reload
(SB3 #1629, RL Zoo #490) and CleanRL could not resume at all (CleanRL #310). See docs/resume.md.

Files. ``last.pt`` holds weights, optimizer, counters, RNG states, env snapshots and the length of
metrics.csv at that moment; the replay goes to its own file ``replay-<step>.pt`` (kept out of ``best.pt``
and ``last.pt``, which evaluate.py loads whole). The replay is written first, then ``last.pt`` naming it,
and only then are older replay files deleted, so a ``kill -9`` between any two writes leaves a
``last.pt`` whose replay file exists and has its step.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.base.checkpoint import atomic_torch_save, save_checkpoint
from rlcore.base.errors import CheckpointError, TrainingInterrupted

REPLAY_PREFIX = "replay-"


# ---------------------------------------------------------------------------------------- RNG states


def rng_states() -> dict[str, Any]:
    """Python's, NumPy's global and torch's (CPU and CUDA) generators, as weights_only-safe values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def load_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---------------------------------------------------------------------------------- checkpoint files


def write_last(checkpoints: Path, payload: dict[str, Any], replay: Any | None, step: int) -> dict[str, Any]:
    """Write ``last.pt`` (and, with ``replay``, ``replay-<step>.pt`` before it); see the module docstring.
    Returns the payload as written (naming its replay file), for a later rewrite of ``last.pt`` alone."""
    checkpoints = Path(checkpoints)
    payload = dict(payload)
    train = dict(payload["train"])
    train["replay_file"] = None
    if replay is not None:
        name = f"{REPLAY_PREFIX}{step}.pt"
        atomic_torch_save({"step": step, "replay": replay.state_dict()}, checkpoints / name)
        train["replay_file"] = name
    payload["train"] = train
    save_checkpoint(checkpoints / "last.pt", payload)
    for old in checkpoints.glob(f"{REPLAY_PREFIX}*.pt"):
        if old.name != train["replay_file"]:
            old.unlink(missing_ok=True)
    return payload


def load_replay(checkpoints: Path, ckpt: dict[str, Any], replay: Any, run_dir: Path | None = None) -> bool:
    """Fill ``replay`` from the file ``last.pt`` names; False when that checkpoint saved no replay.

    A missing, corrupt or foreign replay file is one CheckpointError that names the way forward: resuming
    with ``checkpoint.replay=false`` starts from an empty replay (refilled for ``learning_starts`` steps)."""
    name = ckpt["train"].get("replay_file")
    if not name:
        return False
    path = Path(checkpoints) / name
    step = ckpt["counters"]["env_steps"]
    forward = (
        f"; resume without it with: python train.py resume={run_dir or Path(checkpoints).parent} "
        "checkpoint.replay=false (an empty replay, refilled for agent.learning_starts steps: no longer exact)"
    )
    if not path.exists():
        raise CheckpointError(
            f"{path} is missing, but checkpoints/last.pt (step {step}) needs it to resume exactly" + forward
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or garbage bytes, or a pickle that asks for code: never unpickled
        raise CheckpointError(
            f"{path} could not be read as a replay file ({type(exc).__name__}: it is "
            f"truncated, corrupt or not an rlcore replay)" + forward
        ) from None
    if not isinstance(data, dict) or data.get("step") != step:
        found = data.get("step") if isinstance(data, dict) else "?"
        raise CheckpointError(
            f"{path} is from step {found}, last.pt from step {step}: they do not match" + forward
        )
    try:
        replay.load_state_dict(data["replay"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not fit this run's replay buffer ({exc})" + forward) from None
    return True


# ------------------------------------------------------------------------------------------- signals


class StopSignals:
    """SIGINT/SIGTERM set a flag instead of raising mid-step; the loop saves at its next safe point.

    Installed only in the main thread (Python delivers signals there); elsewhere it never fires.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum

    def restore(self) -> None:
        """Put the previous handlers back (after the loop: a signal in the final evaluation stops as usual)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""


@contextmanager
def interrupt_with(message: str) -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`TrainingInterrupted` at once (``message`` says what was kept), for work
    after the last save that need not finish, such as the final evaluation; then the previous handlers."""

    def handle(signum: int, frame: object) -> None:
        raise TrainingInterrupted(
            f"{signal.Signals(signum).name} received: {message}", exit_code=128 + signum
        )

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handle) for s in StopSignals.SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
