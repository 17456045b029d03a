"""What every training loop does the same way: set up the process, log, checkpoint, summarise.

The run orchestration (:mod:`rlcore.run`) builds one :class:`RunContext` per run and hands it to the agent's
loop; the loop calls :meth:`RunContext.begin` first and the orchestration calls :meth:`RunContext.end` after
it, whatever happened, so process-wide settings (torch threads, flushing denormals) never outlive the run.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from agents import BuildContext, make_agent
from nets.summary import summarize
from rlcore.base.checkpoint import save_checkpoint
from rlcore.base.errors import ConfigError, DivergenceError
from rlcore.base.seeding import configure_threads, resolve_device, seed_everything, slow_bf16_warning
from rlcore.schema import TrainConfig
from rlcore.training.loggers import RunLogger


@dataclass
class RunContext:
    cfg: TrainConfig
    run_dir: Path
    config: dict  # the resolved config as written to config.yaml; every checkpoint carries it
    schemas: dict[str, str]  # the schema of each config group, so a checkpoint rebuilds its typed config
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _threads_before: int | None = None

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    def begin(self, flush_denormal: bool = False) -> None:
        """Threads, denormal flushing, seeds and the device, in that order (a loop's first call)."""
        self._threads_before = torch.get_num_threads()
        configure_threads(self.cfg.threads)
        # Adam's moment estimates of dead ReLU units decay geometrically into denormal floats, which x86 cores
        # process several times slower (docs/performance.md); flushing changes values below 1.2e-38 only.
        torch.set_flush_denormal(flush_denormal)
        seed_everything(self.cfg.seed)
        self.device = resolve_device(self.cfg.device)
        warning = slow_bf16_warning(self.cfg.amp, self.device)
        if warning:
            print(warning, file=sys.stderr)

    def end(self) -> None:
        """Put the process-wide settings :meth:`begin` changed back (tests and sweeps run many runs in one process)."""
        torch.set_flush_denormal(False)
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)

    def build_agent(self, observation_space: gym.Space, action_space: gym.Space | None) -> Any:
        """The agent, through the registry; a net that cannot take this env's observations is a config error."""
        context = BuildContext.for_run(self.cfg, observation_space, action_space, self.device)
        try:
            return make_agent(self.cfg.agent, context)
        except ValueError as exc:  # e.g. net=lenet5 on CartPole's 4 numbers: the net's own message says why
            raise ConfigError(
                f"config key 'net': {exc} (env={self.cfg.env.name}); pick a net that fits, e.g. "
                "net=mlp for vector observations"
            ) from None

    def logger(self, fields: tuple[str, ...], wandb_id: str | None = None) -> RunLogger:
        cfg = self.cfg
        return RunLogger(
            self.run_dir,
            fields,
            cfg.logger,
            self.config,
            run_name=f"{cfg.env.name}-{cfg.agent.name}-{self.run_dir.name}",
            wandb_id=wandb_id,
        )

    def announce(self, line: str, net: torch.nn.Module, space: gym.Space) -> None:
        """The start-of-run lines on the console: what trains where, and the net's layers."""
        if self.cfg.logger.progress:
            print(f"[rlcore] {line} | device {self.device} | run dir {self.run_dir}")
            print(summarize(net, space))  # per-layer output shapes and parameter counts

    def payload(self, agent: Any, counters: dict[str, Any], eval_mean: float | None) -> dict[str, Any]:
        """What every checkpoint holds: the config, its schemas, the agent, the loop's counters, an evaluation."""
        return {
            "config": self.config,
            "schemas": self.schemas,
            "agent": agent.state_dict(),
            "counters": counters,
            "eval_mean_return": eval_mean,
        }

    def save(self, name: str, agent: Any, counters: dict[str, Any], eval_mean: float | None) -> None:
        save_checkpoint(self.checkpoints / name, self.payload(agent, counters, eval_mean))

    def guard_finite(self, where: str, metrics: dict[str, float], model: torch.nn.Module) -> None:
        """The divergence guard of the epoch loops (the off-policy loop has its own per-step one): a non-finite
        metric or weight stops the run before it reaches a checkpoint; the last good checkpoint stays."""
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if not bad and all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            return
        last = self.checkpoints / "last.pt"
        good = f"{last}" if last.exists() else "none was written yet"
        what = " and ".join(bad) if bad else "the network weights"
        raise DivergenceError(
            f"training diverged at {where}: {what} became non-finite (NaN/inf). Last good checkpoint: {good}; "
            "metrics.csv is flushed. Lower agent.lr (or clip gradients where the agent has agent.max_grad_norm)"
        )

    def write_summary(self, **figures: Any) -> dict[str, Any]:
        """summary.json: who ran what, then the loop's figures, then where its checkpoints are."""
        cfg = self.cfg
        summary = {
            "env": cfg.env.name,
            "env_id": getattr(cfg.env, "id", cfg.env.name),
            "agent": cfg.agent.name,
            "net": cfg.net.name,
            "seed": cfg.seed,
            "device": str(self.device),
            **figures,
            "checkpoint": str(self.checkpoints / "last.pt"),
            "best_checkpoint": str(self.checkpoints / "best.pt"),
        }
        # strict JSON: a non-finite figure (e.g. no validation accuracy yet) is written as null, never NaN
        finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()}
        (self.run_dir / "summary.json").write_text(json.dumps(finite, indent=2, allow_nan=False) + "\n")
        return summary
