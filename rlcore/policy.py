"""Rebuild a trained agent from a checkpoint alone (its saved config names env, net and agent)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from agents import BuildContext, make_agent
from envs import make_env
from rlcore.base.checkpoint import load_checkpoint
from rlcore.base.errors import CheckpointError
from rlcore.base.seeding import resolve_device
from rlcore.config import typed_from_container

if TYPE_CHECKING:  # a type only: the loops import this module (rlcore.training.pretraining)
    from rlcore.schema import TrainConfig


def resolve_checkpoint(run: str | None = None, checkpoint: str | None = None, which: str = "best") -> Path:
    """``checkpoint`` as given, or ``<run>/checkpoints/<which>.pt`` (falling back to last.pt). A folder given as
    ``checkpoint`` is taken as the run it is (so eval.json lands beside that run's checkpoints, not above it)."""
    if checkpoint and Path(checkpoint).is_dir():
        run, checkpoint = checkpoint, None
    if checkpoint:
        return Path(checkpoint)
    if not run:
        raise CheckpointError("say which policy to load: run=<run_dir> or checkpoint=<file.pt>")
    folder = Path(run) / "checkpoints"
    if not Path(run).is_dir():
        raise CheckpointError(f"run directory {run} does not exist")
    for name in (f"{which}.pt", "last.pt"):
        if (folder / name).exists():
            return folder / name
    raise CheckpointError(
        f"{run} has no checkpoints/{which}.pt or checkpoints/last.pt; is it a run directory?"
    )


def load_agent(path: Path | str, device: str = "auto") -> tuple[Any, TrainConfig, dict]:
    """Agent with trained weights, its typed config, and the raw checkpoint dict."""
    ckpt = load_checkpoint(path)
    try:
        cfg = typed_from_container(ckpt["config"], ckpt["schemas"])
    except KeyError as exc:
        raise CheckpointError(f"{path} lacks the '{exc.args[0]}' entry every rlcore checkpoint has") from None
    cfg.device = device
    env = make_env(cfg.env, cfg.seed, evaluation=True, n_envs=1)
    context = BuildContext.for_run(
        cfg, env.single_observation_space, env.single_action_space, resolve_device(device)
    )
    agent = make_agent(cfg.agent, context)
    env.close()
    try:
        agent.load_state_dict(ckpt["agent"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: the saved weights do not fit the saved config ({str(exc).splitlines()[0]})"
        ) from None
    return agent, cfg, ckpt


def load_encoder(run_or_checkpoint: Path | str, which: str = "best", device: str = "cpu") -> torch.nn.Module:
    """The trained feature extractor of a run (supervised or DQN) as a plain module in eval mode.

    ``run_or_checkpoint`` is a run directory (``checkpoints/<which>.pt``, else last.pt) or a checkpoint
    file. Call it as ``features, _ = encoder(images)`` (uint8 images are scaled inside); pass it to
    :func:`nets.save_encoder` to start another run from it with ``net.pretrained=<file>``.
    """
    given = Path(run_or_checkpoint)
    path = given if given.is_file() else resolve_checkpoint(run=str(given), which=which)
    agent, _, _ = load_agent(path, device)
    return agent.online.extractor.eval()
