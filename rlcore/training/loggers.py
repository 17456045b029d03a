"""Metric sinks: metrics.csv (always), Weights & Biases (optional) and the console progress bar.

Metric keys are namespaced the same way everywhere (``rollout/episode_return``, ``train/loss``,
``eval/mean_return``, ``time/sps``) so a CSV column and a W&B chart have the same name.
"""

from __future__ import annotations

import csv
import math
import netrc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rlcore.base.errors import ConfigError
from rlcore.schema import LoggerConfig


def wandb_api_key_configured() -> bool:
    """True when W&B could log online without asking for a key (env var or ~/.netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` → online with a key, offline without; ``online`` without a key is refused instead of prompting."""
    env_mode = os.environ.get("WANDB_MODE")
    if mode == "auto":
        if env_mode in ("offline", "disabled", "dryrun"):
            return "offline" if env_mode == "dryrun" else env_mode
        return "online" if wandb_api_key_configured() else "offline"
    if mode == "online" and not wandb_api_key_configured():
        raise ConfigError(
            "config key 'logger.mode': 'online' needs a W&B API key and none is configured; "
            "run `wandb login`, set WANDB_API_KEY, or use logger.mode=offline"
        )
    return mode


class CSVWriter:
    """Appends one row per log call under a fixed header; a resumed run keeps appending to the same file."""

    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self.path = Path(path)
        self.fields = list(fields)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.handle = open(self.path, "a", newline="")  # noqa: SIM115 - kept open for the whole run
        self.writer = csv.DictWriter(self.handle, fieldnames=self.fields, extrasaction="ignore")
        if new:
            self.writer.writeheader()

    def write(self, row: Mapping[str, Any]) -> None:
        self.writer.writerow({k: _format(v) for k, v in row.items()})

    def flush(self) -> None:
        self.handle.flush()

    def sync(self) -> int:
        """Flush to disk (fsync) and return the file's length: a checkpoint records it so that a resume can
        cut off the rows written after that checkpoint (see :func:`truncate_metrics`)."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return self.handle.tell()

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()


def truncate_metrics(path: Path, length: int) -> None:
    """Cut ``path`` back to ``length`` bytes: the rows logged after the checkpoint a run resumes from are
    logged again by the resumed run, so keeping them would duplicate their steps."""
    path = Path(path)
    if path.exists() and path.stat().st_size > length:
        os.truncate(path, length)


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(round(value, 8))
    return value


class WandbWriter:
    """Weights & Biases run in the run directory; never prompts for a login (see resolve_wandb_mode)."""

    def __init__(self, cfg: LoggerConfig, run_dir: Path, config: dict, run_name: str, run_id: str | None = None) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        mode = resolve_wandb_mode(cfg.mode)
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group,
            tags=list(cfg.tags),
            name=run_name,
            id=run_id,
            resume="allow" if run_id else None,
            config=config,
            dir=str(run_dir),
            mode=mode,
        )
        self.run_id = self.run.id if self.run is not None else None

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.run.log({k: v for k, v in metrics.items() if k != "step"}, step=step)

    def close(self) -> None:
        self.run.finish()


class RunLogger:
    """Fans one metrics dict out to metrics.csv and, when configured, W&B."""

    def __init__(
        self,
        run_dir: Path,
        fields: Sequence[str],
        cfg: LoggerConfig,
        config: dict,
        run_name: str,
        wandb_id: str | None = None,
    ) -> None:
        self.csv = CSVWriter(Path(run_dir) / "metrics.csv", ["step", *fields])
        self.wandb = WandbWriter(cfg, run_dir, config, run_name, wandb_id) if cfg.wandb else None

    @property
    def wandb_id(self) -> str | None:
        return self.wandb.run_id if self.wandb else None

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.csv.write({"step": step, **metrics})
        if self.wandb is not None:
            self.wandb.write(step, metrics)

    def flush(self) -> None:
        self.csv.flush()

    def sync(self) -> int:
        """metrics.csv on disk; returns its length in bytes (stored in checkpoints for resume)."""
        return self.csv.sync()

    def close(self) -> None:
        self.csv.close()
        if self.wandb is not None:
            self.wandb.close()


class Progress:
    """tqdm bar over env steps (rate = SPS, ETA) with the last episode return and ε; silent when disabled."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> None:
        self.bar = tqdm(total=total, initial=initial, unit="step", unit_scale=True, desc=desc, disable=not enabled,
                        dynamic_ncols=True, mininterval=0.5, smoothing=0.05)

    def update(self, n: int, **postfix: Any) -> None:
        if postfix:
            self.bar.set_postfix({k: f"{v:.3g}" if isinstance(v, float) else v for k, v in postfix.items()}, refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
