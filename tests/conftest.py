"""Shared fixtures: composing configs like train.py does, running the CLI in a subprocess, loading a benchmark script."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

os.environ.setdefault("WANDB_MODE", "disabled")  # tests never talk to W&B's servers nor prompt
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as module ``name`` (the scripts are not a package). Registered in sys.modules
    before it runs: dataclasses look their module up while they are built, and one script imports another."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compose_config(overrides: list[str]):
    """The DictConfig train.py would receive for these command-line overrides."""
    return compose_many([overrides])[0]


def compose_many(override_lists: list[list[str]]) -> list:
    """Compose several configs under one Hydra initialisation (much faster than one each)."""
    from rlcore.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return [compose(config_name="config", overrides=overrides) for overrides in override_lists]


def build_agent(cfg, observation_space, action_space, device):
    """The agent a typed TrainConfig describes, as a run builds it (through the registry)."""
    from agents import BuildContext, make_agent

    return make_agent(cfg.agent, BuildContext.for_run(cfg, observation_space, action_space, device))


def run_cli(
    script: str, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a script of the checkout as a user would; ``env`` replaces the environment (default: this one with
    W&B disabled). Standard input is closed, so anything that would prompt fails instead of hanging."""
    if env is None:
        env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    return run_cli
