"""From a composed config to a finished run: validation, the run directory, the agent's loop, the summary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rlcore.config import TrainConfig, to_typed
from rlcore.errors import ConfigError, RLCoreError
from rlcore.offpolicy import train_off_policy
from rlcore.pretraining import train_autoencoder
from rlcore.resume import resume_config
from rlcore.supervised import train_supervised

LOOPS: dict[str, Callable[[TrainConfig, Path, dict], dict]] = {
    "dqn": train_off_policy,
    "rainbow_lite": train_off_policy,  # the DQN agent with its extensions switched on (configs/agent/rainbow_lite.yaml)
    "supervised": train_supervised,
    "autoencoder": train_autoencoder,
}


def prepare_run_dir(run_dir: Path) -> None:
    """Refuse to write over a finished or running run: nothing saved may be lost."""
    taken = [p for p in ("metrics.csv", "checkpoints/last.pt", "summary.json") if (run_dir / p).exists()]
    if taken:
        raise RLCoreError(
            f"run_dir {run_dir} already holds a run ({', '.join(taken)}); choose another run_dir= "
            "or leave it out to get a fresh timestamped folder"
        )
    run_dir.mkdir(parents=True, exist_ok=True)


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> dict:
    """Validate ``cfg``, write config.yaml and train; returns the summary dict.

    With ``resume=<run_dir>`` the run continues from its last checkpoint in its own folder; ``overrides``
    (the command line) say which saved settings to change (see :func:`rlcore.resume.resume_config`).
    """
    if cfg.get("resume"):
        return resume(cfg, overrides or [])
    typed = to_typed(cfg)
    if typed.agent.name != "dqn" and typed.checkpoint.replay is not None:
        raise ConfigError(f"config key 'checkpoint.replay': agent={typed.agent.name} has no replay buffer")
    prepare_run_dir(run_dir)
    cfg = cfg.copy()
    cfg.run_dir = str(run_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    for torn in (run_dir / "checkpoints").glob(".*.tmp"):  # partial writes of a killed run: never valid
        torn.unlink(missing_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
    typed.run_dir = str(run_dir)
    loop = LOOPS.get(typed.agent.name)
    if loop is None:
        raise RLCoreError(f"config key 'agent.name': no training loop for {typed.agent.name!r}; known: {', '.join(LOOPS)}")
    return loop(typed, run_dir, config)


def resume(cfg: DictConfig, overrides: list[str]) -> dict:
    """Continue the run in ``cfg.resume`` (DQN runs; supervised and autoencoder runs are refused)."""
    typed, config, ckpt = resume_config(cfg, overrides)
    run_dir = Path(typed.run_dir)
    steps = ckpt["counters"]["env_steps"]
    if steps >= typed.total_steps and (run_dir / "summary.json").exists():
        raise ConfigError(f"config key 'total_steps': resume={run_dir} already finished at step {steps}; "
                          f"pass a larger total_steps= to train it longer")
    for torn in (run_dir / "checkpoints").glob(".*.tmp"):  # partial writes of a killed run: never valid
        torn.unlink(missing_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))  # the settings in force (e.g. a new total_steps)
    return train_off_policy(typed, run_dir, config, resume=ckpt)


def print_summary(summary: dict) -> None:
    width = max(len(k) for k in summary)
    print("\n" + "-" * 60)
    for key, value in summary.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    print("-" * 60)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
