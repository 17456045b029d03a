"""The top-level run schema (``TrainConfig``) and its run-wide groups: logger, replay placement, checkpoints.

The agent, env and net groups are typed by their own packages' schemas (``agents``, ``envs``, ``nets``);
:mod:`rlcore.config` registers all of them with Hydra and turns a composed config into these dataclasses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from rlcore.base.errors import ConfigError
from rlcore.base.validation import require, require_choice

WANDB_ENV_MODES = frozenset(
    {"online", "offline", "disabled", "dryrun", "shared", "run"}
)  # what wandb accepts


@dataclass
class LoggerConfig:
    """Where metrics go besides the run directory's metrics.csv, which is always written."""

    name: str = "csv"
    progress: bool = True  # live progress bar and end-of-run summary on the console
    wandb: bool = False
    project: str = "rlcore"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    mode: str = "auto"  # auto: online when an API key is configured, else offline; never prompts
    timeout: float = 30.0  # seconds W&B may take to connect online; past them the run logs to W&B offline
    tensorboard: bool = (
        False  # also write TensorBoard event files to <run_dir>/tensorboard (rlcore/training/tensorboard.py)
    )
    video: bool = (
        False  # film one greedy episode of the final policy (eval_video.mp4) and log it to W&B/TensorBoard
    )

    def __post_init__(self) -> None:
        require_choice(self.mode, "logger.mode", ["auto", "online", "offline", "disabled"])
        require(self.timeout > 0, "logger.timeout", f"must be > 0 seconds (got {self.timeout})")
        env_mode = os.environ.get("WANDB_MODE")  # W&B would answer a value it does not know with a traceback
        if self.wandb and env_mode and env_mode not in WANDB_ENV_MODES:
            raise ConfigError(
                f"the environment variable WANDB_MODE={env_mode!r} is not a W&B mode "
                f"({', '.join(sorted(WANDB_ENV_MODES))}); fix or unset it (logger.mode= sets this run's mode)"
            )


LOGGER_SCHEMAS: dict[str, type] = {"logger_schema": LoggerConfig}

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ReplayConfig:
    """Where the replay buffer lives.

    ``device``: ``cpu`` keeps it in host memory; batches are gathered there and copied to the learner
    (from pinned memory, non-blocking, when the learner is on CUDA). ``cuda`` keeps the Atari frame replay
    in GPU memory and gathers batches there (no host gather, no copy; 1M transitions take about 7.1 GB of
    GPU memory). ``auto`` means ``cpu``: host memory is the larger and the safer default; ask for ``cuda``
    when the GPU has room.
    """

    device: str = "auto"

    def __post_init__(self) -> None:
        require_choice(self.device, "replay.device", DEVICES)


@dataclass
class CheckpointConfig:
    """What ``checkpoints/last.pt`` carries besides the weights (docs/resume.md).

    ``replay``: also write the replay buffer (``checkpoints/replay-<step>.pt``) so ``resume=`` continues
    exactly. ``null`` = auto: on for classic-control and dataset envs (a few MB), off for Atari (up to
    ~7 GB per write for 1M transitions; a resumed Atari run refills its replay for ``learning_starts``
    steps before learning again).
    """

    replay: bool | None = None


@dataclass
class TuneConfig:
    """A hyperparameter-search trial (``hydra/sweeper=optuna``, docs/tuning.md): one trial trains ``seeds`` runs,
    seeds ``seed``, ``seed+1``, ..., and reports ``statistic`` of their ``metric`` (a summary.json number), so
    that no single lucky seed wins the search. Ignored outside an Optuna sweep."""

    seeds: int = 3
    statistic: str = "mean"  # mean | median | q25 (lower quartile) | min
    metric: str = (
        "eval_mean_return"  # the final greedy evaluation; supervised: best_val_accuracy (not the test set)
    )

    def __post_init__(self) -> None:
        require(self.seeds >= 1, "tune.seeds", f"must be >= 1 (got {self.seeds})")
        require_choice(self.statistic, "tune.statistic", ["mean", "median", "q25", "min"])
        require_choice(
            self.metric,
            "tune.metric",
            [
                "eval_mean_return",
                "best_eval_mean_return",
                "test_accuracy",
                "best_val_accuracy",
                "best_val_recon_loss",
            ],
        )


@dataclass
class TrainConfig:
    """The top-level config: one run of one agent on one env with one net."""

    agent: Any = MISSING
    env: Any = MISSING
    net: Any = MISSING
    logger: LoggerConfig = field(
        default_factory=LoggerConfig
    )  # typed here, so logger=[wandb,tensorboard] merges
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    resume: str | None = (
        None  # a run directory: continue that run from its checkpoints/last.pt (docs/resume.md)
    )
    seed: int = 0
    device: str = "auto"
    total_steps: int = 50_000
    eval_every: int = 5_000  # env steps between periodic greedy evaluations (0 = never)
    eval_episodes: int = 10  # episodes per periodic evaluation
    final_eval_episodes: int = 20  # episodes of the evaluation written to summary.json
    checkpoint_every: int = 0  # env steps between checkpoints/last.pt writes (0 = at evals and at the end)
    run_dir: str = MISSING  # where the run's files go; resolved by Hydra (hydra.run.dir follows it)
    threads: int = (
        1  # torch intra-op threads; 1 is robust on shared/small machines (0 = torch's default, all cores)
    )
    amp: bool = False  # bf16 autocast for network passes (GPUs; CPUs with oneDNN bf16: AVX-512; slower on AVX2-only CPUs)
    compile: bool = False  # torch.compile the networks
    channels_last: bool = True  # NHWC memory format for conv nets (faster convolutions on CPU)
    overlap: bool = False  # learn in a background thread while the env steps; acting is one update stale
    flush_denormal: bool = (
        True  # CPU: denormal floats count as 0 (Adam's moments of dead units; docs/performance.md)
    )

    def __post_init__(self) -> None:
        require(self.seed >= 0, "seed", f"must be >= 0 (got {self.seed})")
        require_choice(self.device, "device", DEVICES)
        require(self.total_steps > 0, "total_steps", f"must be > 0 (got {self.total_steps})")
        require(self.eval_every >= 0, "eval_every", f"must be >= 0 (got {self.eval_every})")
        require(self.eval_episodes > 0, "eval_episodes", f"must be > 0 (got {self.eval_episodes})")
        require(
            self.final_eval_episodes > 0,
            "final_eval_episodes",
            f"must be > 0 (got {self.final_eval_episodes})",
        )
        require(self.checkpoint_every >= 0, "checkpoint_every", f"must be >= 0 (got {self.checkpoint_every})")
        require(self.threads >= 0, "threads", f"must be >= 0 (got {self.threads})")
