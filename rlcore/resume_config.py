"""Resuming a run, the config's side: ``python train.py resume=<run_dir>`` rebuilds the run from the config saved
in ``checkpoints/last.pt``; command-line overrides may change only settings that do not change what is learned
(:data:`HARMLESS`), anything else is refused naming the key (docs/resume.md). The loop's side (checkpoint
files, RNG states, signals) is :mod:`rlcore.training.resume`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rlcore.base.checkpoint import load_checkpoint
from rlcore.base.errors import CheckpointError, ConfigError
from rlcore.config import schema_names, to_typed, typed_from_container
from rlcore.schema import TrainConfig

# top-level keys (and groups) a resume may change: when and how much to train, evaluate, save and log
HARMLESS = (
    "total_steps",
    "eval_every",
    "eval_episodes",
    "final_eval_episodes",
    "checkpoint_every",
    "threads",
    "device",
    "overlap",
    "logger",
    "checkpoint",
    "resume",
    "run_dir",
)


# ------------------------------------------------------------------------------------------- the config


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def override_keys(overrides: list[str]) -> list[str]:
    """The config keys (or group names) a list of Hydra command-line overrides sets, ``hydra.*`` excluded."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    return [k for k in keys if k and not k.startswith("hydra")]


def resume_config(cfg: DictConfig, overrides: list[str]) -> tuple[TrainConfig, dict, dict]:
    """The run in ``cfg.resume`` with the command line's changes: (typed config, plain config, last.pt).

    Starts from the config saved in the checkpoint (not from the defaults this checkout composes), so a
    resume needs no repeat of the original command line; each key the user overrode takes the composed
    value. A change outside :data:`HARMLESS` (env, net, agent, seed, ...) is refused naming the key.
    """
    run_dir = Path(str(cfg.resume))
    if cfg.run_dir and Path(str(cfg.run_dir)).resolve() != run_dir.resolve():
        raise ConfigError(
            f"config key 'run_dir': a resumed run continues in its own folder; "
            f"drop run_dir={cfg.run_dir} or set it to the resume folder {run_dir}"
        )
    last = run_dir / "checkpoints" / "last.pt"
    if not last.exists():
        if (run_dir / "metrics.csv").exists():  # started, but stopped before its first checkpoint
            raise CheckpointError(
                f"resume={run_dir}: that run stopped before its first checkpoint, so there is "
                f"nothing to resume; start it again with run_dir={run_dir} (the folder is reused)"
            )
        raise CheckpointError(
            f"resume={run_dir}: no checkpoints/last.pt there; pass the folder of a run "
            "(the one holding config.yaml and checkpoints/)"
        )
    ckpt = load_checkpoint(last)
    if "train" not in ckpt:
        agent = ckpt.get("config", {}).get("agent", {}).get("name", "?")
        raise CheckpointError(
            f"resume={run_dir}: {last} holds weights only (agent {agent}); resume works for "
            "DQN runs saved by this rlcore or later. Start a new run instead"
        )
    composed = to_typed(cfg)  # the new values pass their range checks first
    saved = OmegaConf.create(ckpt["config"])
    schemas = dict(ckpt["schemas"])
    for key in override_keys(overrides):
        if key in ("resume", "run_dir"):
            continue
        value = OmegaConf.select(cfg, key)
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        OmegaConf.update(saved, key, value, merge=False, force_add=True)
        if key in schemas:  # a whole group was switched (e.g. logger=wandb)
            schemas[key] = schema_names(composed)[key]
    saved.resume = str(run_dir)
    saved.run_dir = str(run_dir)
    new = OmegaConf.to_container(saved, resolve=True)
    old_flat, new_flat = _flatten(ckpt["config"]), _flatten(new)
    changed = sorted(
        k
        for k in set(old_flat) | set(new_flat)
        if old_flat.get(k) != new_flat.get(k) and k.split(".")[0] not in HARMLESS
    )
    if changed:
        key = changed[0]
        raise ConfigError(
            f"config key '{key}': resume={run_dir} cannot change it (saved {old_flat.get(key)!r}, "
            f"given {new_flat.get(key)!r}): it changes what the run learns. Start a new run for that; a "
            f"resume may change only {', '.join(HARMLESS[:-2])}"
        )
    assert isinstance(new, dict)
    typed = typed_from_container(new, schemas)
    return typed, new, ckpt
