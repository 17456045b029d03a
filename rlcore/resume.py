"""Resuming a run: its config, the training checkpoint (weights + loop state + replay), and stop signals.

``python train.py resume=<run_dir>`` rebuilds the run from the config saved in ``checkpoints/last.pt``;
command-line overrides may change only settings that do not change what is learned (:data:`HARMLESS`),
anything else is refused. Users asked for this after SB3 reset ε and lost the replay on reload
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from rlcore.checkpoint import atomic_torch_save, load_checkpoint, save_checkpoint
from rlcore.config import TrainConfig, schema_names, to_typed, typed_from_container
from rlcore.errors import CheckpointError, ConfigError

# top-level keys (and groups) a resume may change: when and how much to train, evaluate, save and log
HARMLESS = ("total_steps", "eval_every", "eval_episodes", "final_eval_episodes", "checkpoint_every", "threads",
            "device", "overlap", "logger", "checkpoint", "resume", "run_dir")
REPLAY_PREFIX = "replay-"


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
        raise ConfigError(f"config key 'run_dir': a resumed run continues in its own folder; "
                          f"drop run_dir={cfg.run_dir} or set it to the resume folder {run_dir}")
    last = run_dir / "checkpoints" / "last.pt"
    if not last.exists():
        raise CheckpointError(f"resume={run_dir}: no checkpoints/last.pt there; pass the folder of a run "
                              "(the one holding config.yaml and checkpoints/)")
    ckpt = load_checkpoint(last)
    if "train" not in ckpt:
        agent = ckpt.get("config", {}).get("agent", {}).get("name", "?")
        raise CheckpointError(f"resume={run_dir}: {last} holds weights only (agent {agent}); resume works for "
                              "DQN runs saved by this rlcore or later. Start a new run instead")
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
    changed = sorted(k for k in set(old_flat) | set(new_flat)
                     if old_flat.get(k) != new_flat.get(k) and k.split(".")[0] not in HARMLESS)
    if changed:
        key = changed[0]
        raise ConfigError(
            f"config key '{key}': resume={run_dir} cannot change it (saved {old_flat.get(key)!r}, "
            f"given {new_flat.get(key)!r}): it changes what the run learns. Start a new run for that; a "
            f"resume may change only {', '.join(HARMLESS[:-2])}"
        )
    typed = typed_from_container(new, schemas)
    return typed, new, ckpt


def replay_in_checkpoints(cfg: TrainConfig) -> bool:
    """``checkpoint.replay``, with null meaning on for classic-control and dataset envs and off for Atari."""
    from envs.atari import AtariConfig

    if cfg.checkpoint.replay is not None:
        return cfg.checkpoint.replay
    return not isinstance(cfg.env, AtariConfig)


# ---------------------------------------------------------------------------------------- RNG states


def rng_states() -> dict[str, Any]:
    """Python's, NumPy's global and torch's (CPU and CUDA) generators, as weights_only-safe values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
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


def write_last(checkpoints: Path, payload: dict[str, Any], replay: Any | None, step: int) -> None:
    """Write ``last.pt`` (and, with ``replay``, ``replay-<step>.pt`` before it); see the module docstring."""
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


def load_replay(checkpoints: Path, ckpt: dict[str, Any], replay: Any) -> bool:
    """Fill ``replay`` from the file ``last.pt`` names; False when that checkpoint saved no replay."""
    name = ckpt["train"].get("replay_file")
    if not name:
        return False
    path = Path(checkpoints) / name
    step = ckpt["counters"]["env_steps"]
    if not path.exists():
        raise CheckpointError(f"{path} is missing, but checkpoints/last.pt (step {step}) needs it to resume")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if data.get("step") != step:
        raise CheckpointError(f"{path} is from step {data.get('step')}, last.pt from step {step}: they do not match")
    try:
        replay.load_state_dict(data["replay"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} does not fit this run's replay buffer ({exc})") from None
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
