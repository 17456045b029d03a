"""Saving an extractor's weights as a reusable encoder file, and loading (optionally freezing) them.

The file is ``torch.save`` of ``{"format": "rlcore-encoder", "version", "net", "class", "input_shape",
"features_dim", "state_dict"}`` where ``net`` is the net config as a plain dict, so a later run can see what
was saved. It is written to a temporary file and moved into place with ``os.replace``, so a crash never
leaves a truncated encoder behind, and read with ``torch.load(weights_only=True)``, which cannot run code
from a foreign file.

Freezing only sets ``requires_grad=False``. Batch-norm statistics and dropout follow the module's
train/eval mode, which is the agent's business: an agent that keeps a frozen encoder fixed should call
``encoder.eval()`` on it (and keep it there when it switches the rest of the model to training).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlcore.base.checkpoint import atomic_torch_save
from rlcore.base.errors import CheckpointError

ENCODER_FORMAT = "rlcore-encoder"
ENCODER_VERSION = 1
ENCODER_FILENAME = "encoder.pt"


def save_encoder(extractor: nn.Module, path: str | os.PathLike[str], net_cfg: dict[str, Any]) -> Path:
    """Write ``extractor``'s weights and its net config to ``path`` atomically; returns the path.

    A directory ``path`` gets an ``encoder.pt`` inside it (the name :func:`load_pretrained` looks for in a
    run directory).
    """
    target = Path(path)
    if target.is_dir():
        target = target / ENCODER_FILENAME
    payload = {
        "format": ENCODER_FORMAT,
        "version": ENCODER_VERSION,
        "net": dict(net_cfg),
        "class": type(extractor).__name__,
        "input_shape": list(getattr(extractor, "input_shape", ())),
        "features_dim": int(getattr(extractor, "features_dim", 0)),
        "state_dict": {k: v.detach().cpu() for k, v in extractor.state_dict().items()},
    }
    atomic_torch_save(payload, target)
    return target


def resolve_encoder_path(path: str | os.PathLike[str]) -> Path:
    """The encoder file ``path`` refers to: the file itself, or ``encoder.pt`` in a run directory."""
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / ENCODER_FILENAME
    if not candidate.is_file():
        raise CheckpointError(f"no pretrained encoder at {candidate}")
    return candidate


def read_encoder(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate an encoder file's contents (see the module docstring for the layout)."""
    file = resolve_encoder_path(path)
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or holding objects weights_only refuses
        raise CheckpointError(f"cannot read pretrained encoder {file}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{file} is not an rlcore encoder file (written by nets.save_encoder)")
    if payload.get("version") != ENCODER_VERSION:
        raise CheckpointError(
            f"{file} has encoder format version {payload.get('version')}, expected {ENCODER_VERSION}"
        )
    return payload


def load_pretrained(extractor: nn.Module, path: str | os.PathLike[str], freeze: bool = False) -> nn.Module:
    """Copy the weights saved at ``path`` into ``extractor`` (in place; also returned), then maybe freeze it.

    Raises CheckpointError when the saved net does not fit: missing or unexpected parameters, or a parameter
    whose saved shape differs from this extractor's (the message names the key and both shapes).
    """
    payload = read_encoder(path)
    saved: dict[str, torch.Tensor] = payload["state_dict"]
    expected = extractor.state_dict()
    problems = [
        f"{key}: saved shape {tuple(saved[key].shape)}, expected shape {tuple(value.shape)}"
        for key, value in expected.items()
        if key in saved and saved[key].shape != value.shape
    ]
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing:
        problems.append(f"missing from the file: {', '.join(missing)}")
    if unexpected:
        problems.append(f"not in this net: {', '.join(unexpected)}")
    saved_activation = payload.get("net", {}).get("activation")
    own_activation = getattr(extractor, "activation", None)
    if (
        saved_activation and own_activation and saved_activation != own_activation
    ):  # same shapes, other function
        problems.append(
            f"saved with net.activation={saved_activation}, this net has net.activation={own_activation}"
        )
    if problems:
        raise CheckpointError(
            f"pretrained encoder {resolve_encoder_path(path)} (a {payload.get('class')} for input shape "
            f"{tuple(payload.get('input_shape', ()))}) does not fit this {type(extractor).__name__} for input "
            f"shape {tuple(getattr(extractor, 'input_shape', ()))}: " + "; ".join(problems)
        )
    extractor.load_state_dict(saved)
    if freeze:
        freeze_module(extractor)
    return extractor


def freeze_module(module: nn.Module) -> nn.Module:
    """Stop gradients into every parameter of ``module`` (train/eval mode is left to the caller)."""
    for param in module.parameters():
        param.requires_grad_(False)
    return module
