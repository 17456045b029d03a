"""Checkpoints: atomic writes, and loads that never unpickle code.

A checkpoint is a dict of tensors and plain Python values (state dicts, the resolved config, counters,
package versions) saved with ``torch.save`` and loaded with ``torch.load(weights_only=True)``, so a
checkpoint from an untrusted source cannot run code. Writes go to a temporary file in the same folder,
are fsynced, then renamed over the target, so a crash or ``kill -9`` at any moment leaves either the old
or the new file, never a torn one.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from rlcore.base.errors import CheckpointError

FORMAT = "rlcore-checkpoint"
FORMAT_VERSION = 1


def package_versions() -> dict[str, str]:
    import gymnasium
    import numpy

    import rlcore

    return {
        "rlcore": rlcore.__version__,
        "torch": str(torch.__version__),
        "numpy": str(numpy.__version__),
        "gymnasium": str(gymnasium.__version__),
        "python": platform.python_version(),
    }


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary sibling, fsync, then ``os.replace`` onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CheckpointError(_unwritable(path, exc)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, read-only folder, quota: the previous file is still whole
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(_unwritable(path, exc)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _unwritable(path: Path, exc: OSError) -> str:
    last = path.parent / "last.pt"
    kept = f"{last} is kept as it was" if last.exists() else "no file was overwritten"
    return (
        f"could not write {path}: {exc.strerror or exc}; {kept} (writes are atomic). Free space or fix the folder's permissions, "
        "then resume the run (python train.py resume=<run_dir>)"
    )


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write an rlcore checkpoint: ``payload`` plus the format marker and package versions."""
    atomic_torch_save(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": package_versions(), **payload}, path
    )


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load and validate a checkpoint; every failure is a CheckpointError that says what to do."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoints" / "last.pt"
        if not candidate.exists():
            raise CheckpointError(
                f"{path} is a folder without checkpoints/last.pt; pass a run directory or a .pt file"
            )
        path = candidate
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; pass an existing run directory or checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, or a pickle that asks for code
        code = (
            "unsupported global" in str(exc).lower()
        )  # weights_only refused a class or function in the pickle
        reason = (
            "it holds objects that would run code when unpickled"
            if code
            else "it is truncated or not a torch file"
        )
        raise CheckpointError(
            f"{path} could not be loaded as a checkpoint: {reason} ({type(exc).__name__}). "
            "Pass another checkpoint (e.g. the run's checkpoints/best.pt or last.pt)"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not an rlcore checkpoint (no '{FORMAT}' marker)")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {data['format_version']}, newer than this rlcore ({FORMAT_VERSION}); upgrade rlcore"
        )
    return data
