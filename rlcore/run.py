"""From a composed config to a finished run: validation, the run directory, the agent's loop, the summary.

Which loop trains an agent, and which settings it supports, come from the agent registry
(:mod:`agents.registry`); this module maps the registry's loop names to the loops.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from agents.registry import AgentSpec, LoopName, agent_spec
from rlcore.base.errors import ConfigError, RLCoreError
from rlcore.base.rundir import hold_run_dir
from rlcore.config import schema_names, to_typed
from rlcore.resume_config import override_keys, resume_config
from rlcore.schema import TrainConfig
from rlcore.training.context import RunContext
from rlcore.training.gan import train_gan
from rlcore.training.layerwise import train_layerwise
from rlcore.training.offpolicy import train_off_policy
from rlcore.training.pretraining import train_autoencoder
from rlcore.training.supervised import train_supervised

Loop = Callable[[RunContext, "dict | None"], dict]

LOOPS: dict[LoopName, Loop] = {
    "off_policy": train_off_policy,
    "supervised": train_supervised,
    "pretraining": train_autoencoder,
    "adversarial": train_gan,
    "layerwise": train_layerwise,
}


def check_supported(typed: TrainConfig, spec: AgentSpec, overrides: list[str]) -> None:
    """Refuse, naming the key, a setting the agent's declared capabilities do not cover (``overrides``: the
    command line, for settings that have a default either way)."""
    if typed.checkpoint.replay is not None and not spec.capabilities.replay:
        raise ConfigError(f"config key 'checkpoint.replay': agent={typed.agent.name} has no replay buffer")
    if "total_steps" in override_keys(overrides) and not spec.capabilities.step_budget:
        raise ConfigError(
            f"config key 'total_steps': agent={typed.agent.name} trains for agent.epochs, not a number "
            "of env steps; set agent.epochs (or agent.max_steps / agent.steps) instead"
        )


def prepare_run_dir(run_dir: Path) -> None:
    """Refuse to write over a run that saved anything: nothing saved may be lost. A folder whose run stopped
    before its first checkpoint (killed early, or a start-up failure) holds nothing to resume and is reused."""
    taken = [p for p in ("checkpoints/last.pt", "summary.json") if (run_dir / p).exists()]
    if taken:
        raise RLCoreError(
            f"run_dir {run_dir} already holds a run ({', '.join(taken)}); choose another run_dir= "
            "or leave it out to get a fresh timestamped folder"
        )
    if (run_dir / "metrics.csv").exists():
        print(
            f"[rlcore] run_dir {run_dir} holds a run that stopped before its first checkpoint; starting it again"
        )
        (run_dir / "metrics.csv").unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def remove_torn_writes(run_dir: Path) -> None:
    """Partial checkpoint writes of a killed run (``.*.tmp``) are never valid: delete them."""
    for torn in (run_dir / "checkpoints").glob(".*.tmp"):
        torn.unlink(missing_ok=True)


def launch(typed: TrainConfig, run_dir: Path, config: dict, resume: dict | None = None) -> dict:
    """Run the agent's loop in a :class:`RunContext`; the process-wide settings it changes are restored after."""
    spec = agent_spec(typed.agent)
    context = RunContext(typed, run_dir, config, schema_names(typed))
    try:
        return LOOPS[spec.loop](context, resume)
    finally:
        context.end()


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> dict:
    """Validate ``cfg``, write config.yaml and train; returns the summary dict.

    With ``resume=<run_dir>`` the run continues from its last checkpoint in its own folder; ``overrides``
    (the command line) say which saved settings to change (see :func:`rlcore.resume_config.resume_config`).
    """
    if cfg.get("resume"):
        return resume(cfg, overrides or [])
    typed = to_typed(cfg)
    check_supported(typed, agent_spec(typed.agent), overrides or [])
    with hold_run_dir(run_dir):  # one process per run directory, from before its first write to the end
        prepare_run_dir(run_dir)
        cfg = cfg.copy()
        cfg.run_dir = str(run_dir)
        config = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(config, dict)
        remove_torn_writes(run_dir)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
        typed.run_dir = str(run_dir)
        return launch(typed, run_dir, config)


def resume(cfg: DictConfig, overrides: list[str]) -> dict:
    """Continue the run in ``cfg.resume`` (agents whose registry entry declares ``resume``)."""
    with hold_run_dir(Path(str(cfg.resume))):
        return _resume(cfg, overrides)


def _resume(cfg: DictConfig, overrides: list[str]) -> dict:
    typed, config, ckpt = resume_config(cfg, overrides)
    spec = agent_spec(typed.agent)
    if not spec.capabilities.resume:
        raise ConfigError(
            f"config key 'resume': agent={typed.agent.name} runs cannot be resumed; start a new run"
        )
    run_dir = Path(typed.run_dir)
    steps = ckpt["counters"]["env_steps"]
    if steps >= typed.total_steps and (run_dir / "summary.json").exists():
        raise ConfigError(
            f"config key 'total_steps': resume={run_dir} already finished at step {steps}; "
            f"pass a larger total_steps= to train it longer"
        )
    if steps > typed.total_steps:
        raise ConfigError(
            f"config key 'total_steps': resume={run_dir} is at step {steps}, past total_steps="
            f"{typed.total_steps}; pass total_steps={steps} or more to continue it"
        )
    remove_torn_writes(run_dir)
    (run_dir / "config.yaml").write_text(
        OmegaConf.to_yaml(config)
    )  # the settings in force (e.g. a new total_steps)
    return launch(typed, run_dir, config, resume=ckpt)


def print_summary(summary: dict) -> None:
    width = max(len(k) for k in summary)
    print("\n" + "-" * 60)
    for key, value in summary.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    print("-" * 60)
