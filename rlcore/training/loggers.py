"""Metric sinks: metrics.csv (always), Weights & Biases and TensorBoard (optional) and the console progress bar.

Metric keys are namespaced the same way everywhere (``rollout/episode_return``, ``train/loss``,
``eval/mean_return``, ``time/sps``) so a CSV column, a W&B chart and a TensorBoard scalar have the same name.
Loggers combine as Hydra list options: ``logger=[wandb,tensorboard]`` merges both option files (each sets its
own switch, ``logger.wandb`` / ``logger.tensorboard``), as does setting the switches directly.
"""

from __future__ import annotations

import csv
import json
import math
import netrc
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rlcore.base.errors import ConfigError
from rlcore.schema import LoggerConfig
from rlcore.training.tensorboard import TensorBoardWriter


def wandb_api_key_configured() -> bool:
    """True when W&B could log online without asking for a key (env var or ~/.netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` → online with a key, offline without; ``online`` without a key is refused instead of prompting.
    An empty WANDB_MODE is taken as unset (W&B answers it with a validation traceback); any other value it does
    not know is refused at start-up (:class:`rlcore.schema.LoggerConfig`)."""
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode == "":  # `export WANDB_MODE=`: meant as unset
        del os.environ["WANDB_MODE"]
        env_mode = None
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

    def __init__(
        self, cfg: LoggerConfig, run_dir: Path, config: dict, run_name: str, run_id: str | None = None
    ) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        mode = resolve_wandb_mode(cfg.mode)
        options: dict[str, Any] = dict(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group if cfg.group is not None else sweep_group(),
            tags=list(cfg.tags),
            name=run_name,
            id=run_id,
            resume="allow" if run_id else None,
            config=config,
            dir=str(run_dir),
        )
        if (
            mode == "online"
        ):  # a key but maybe no network: the wait is bounded, and the run never blocks on it
            print(
                f"[rlcore] W&B: connecting (at most {cfg.timeout:g} s, logger.timeout)",
                file=sys.stderr,
                flush=True,
            )
            try:
                self.run = wandb.init(
                    **options, mode="online", settings=wandb.Settings(init_timeout=cfg.timeout)
                )
            except (
                Exception
            ) as exc:  # CommError, or whatever else the connection raised: W&B is not reachable
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                print(
                    f"[rlcore] W&B could not be reached within {cfg.timeout:g} s ({reason}); this run logs to "
                    "W&B offline instead (the upload command is printed at the end)",
                    file=sys.stderr,
                    flush=True,
                )
                mode = "offline"
        if mode != "online":
            self.run = wandb.init(**options, mode=mode)  # type: ignore[arg-type]  # one of wandb's modes
        self.mode = mode
        self.run_id = self.run.id if self.run is not None else None

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.run.log({k: v for k, v in metrics.items() if k != "step"}, step=step)

    def media(self, step: int, curve: Path | None = None, video: Path | None = None) -> None:
        """The learning-curve PNG and the evaluation video, as W&B media of the run's last step."""
        import wandb

        logged: dict[str, Any] = {}
        if curve is not None and Path(curve).is_file():
            logged["learning_curve"] = wandb.Image(str(curve))
        if video is not None and Path(video).is_file():
            logged["eval/video"] = wandb.Video(str(video), format="mp4")
        if logged:
            self.run.log(logged, step=step)

    def close(self) -> None:
        folder = Path(self.run.dir).parent if self.mode == "offline" else None
        self.run.finish()
        if folder is not None:  # nothing went to W&B's servers: say where the run is and how to send it
            print(
                f"[rlcore] W&B ran offline; the run is in {folder}. Upload it with: wandb sync {folder}",
                flush=True,
            )


def sweep_group() -> str | None:
    """In a multirun job: the sweep folder's path, so W&B groups the runs of one sweep (``logger.group`` wins)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return str(HydraConfig.get().sweep.dir)


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
        if cfg.video and "correct_reward" in config.get("env", {}):  # a dataset env (envs/dataset_env.py)
            raise ConfigError(
                f"config key 'logger.video': env={config['env'].get('name')} is a dataset env with no "
                "screen to film; leave logger.video out"
            )
        self.run_dir = Path(run_dir)
        self.step = 0
        resumed = (
            self.run_dir / "metrics.csv"
        ).exists()  # a fresh run's folder has none (rlcore.run.prepare_run_dir)
        self.tensorboard = TensorBoardWriter(run_dir, config, resume=resumed) if cfg.tensorboard else None
        self.csv = CSVWriter(self.run_dir / "metrics.csv", ["step", *fields])
        self.wandb = WandbWriter(cfg, run_dir, config, run_name, wandb_id) if cfg.wandb else None

    @property
    def wandb_id(self) -> str | None:
        return self.wandb.run_id if self.wandb else None

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.step = step
        self.csv.write({"step": step, **metrics})
        if self.wandb is not None:
            self.wandb.write(step, metrics)
        if self.tensorboard is not None:
            self.tensorboard.write(step, metrics)

    def flush(self) -> None:
        self.csv.flush()

    def sync(self) -> int:
        """metrics.csv on disk; returns its length in bytes (stored in checkpoints for resume)."""
        return self.csv.sync()

    def close(self, curve: Path | None = None, video: Path | None = None) -> None:
        """Close every sink; W&B and TensorBoard also get the learning curve PNG and the evaluation video (when
        given) and TensorBoard the config as hparams with summary.json's final evaluation (when written)."""
        self.csv.close()
        if self.wandb is not None:
            self.wandb.media(self.step, curve, video)
            self.wandb.close()
        if self.tensorboard is not None:
            try:
                summary = json.loads((self.run_dir / "summary.json").read_text())
            except (OSError, ValueError):
                summary = None
            self.tensorboard.close(self.step, summary, curve, video)


class Progress:
    """tqdm bar over env steps (rate = SPS, ETA) with the last episode return and ε; silent when disabled."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> None:
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            unit_scale=True,
            desc=desc,
            disable=not enabled,
            dynamic_ncols=True,
            mininterval=0.5,
            smoothing=0.05,
        )

    def update(self, n: int, **postfix: Any) -> None:
        if postfix:
            self.bar.set_postfix(
                {k: f"{v:.3g}" if isinstance(v, float) else v for k, v in postfix.items()}, refresh=False
            )
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
