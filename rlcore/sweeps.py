"""Multirun (``train.py -m``) support: what a sweep refuses at its start, how its jobs use the console, its report.

Hydra gives every job of a sweep its own folder, ``<hydra.sweep.dir>/<job number>_<env>_<agent>_seed<k>``
(configs/config.yaml). :class:`SweepCallback` is listed in ``hydra.callbacks``: Hydra calls it in the
launching process before the first job and after the last one, whatever the launcher (basic, joblib,
submitit). :func:`parallel_job` and :func:`job_line` keep the console readable when jobs run side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rlcore.base.errors import RLCoreError
from rlcore.tuning import optuna_sweep

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def explicit_run_dir(overrides: list[str]) -> str | None:
    """The value of a ``run_dir=`` (or ``+run_dir=``/``++run_dir=``) command-line override, if there is one."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key.strip() == "run_dir":
            return value
    return None


def run_dir_refusal(overrides: list[str]) -> str | None:
    """Why a multirun with these overrides must not start (one run_dir for several jobs), or None."""
    value = explicit_run_dir(overrides)
    if value is None:
        return None
    return (
        f"run_dir={value} names the folder of one run, and -m starts several: each job gets its own folder "
        f"<hydra.sweep.dir>/<job>_<env>_<agent>_seed<k> instead. To put the sweep under {value}, "
        f"pass hydra.sweep.dir={value} in place of run_dir="
    )


class SweepCallback(Callback):
    """``hydra.callbacks.sweeps``: refuses ``run_dir=`` before a multirun starts; aggregates it when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        why = run_dir_refusal(list(config.hydra.overrides.task))
        if why is not None:  # before Hydra creates the sweep folder: nothing is written
            print(f"error: {why}", file=sys.stderr)
            sys.exit(2)
        if optuna_sweep(config.hydra):  # Hydra's basic sweeper saves this; the Optuna sweeper does not
            sweep_dir = Path(str(config.hydra.sweep.dir))
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(
                config, sweep_dir / "multirun.yaml"
            )  # the search space, for rlcore.tuning and report

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the mean ± std table of the sweep and write aggregate.json/png into its folder."""
        from rlcore.report import aggregate, format_report

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if optuna_sweep(config.hydra):
            write_search_study(sweep_dir, config)
        try:
            report = aggregate(sweep_dir)
        except RLCoreError as exc:  # e.g. every job failed: the jobs have said why already
            print(f"[rlcore] no aggregate for {sweep_dir}: {exc}", file=sys.stderr)
            return
        print(f"\n[rlcore] sweep {sweep_dir}: final greedy evaluation across seeds\n")
        print(format_report(report))
        print(
            f"\n[rlcore] wrote {sweep_dir / 'aggregate.json'} and aggregate.png "
            f"(again, e.g. with --band std: python -m rlcore.report {sweep_dir})"
        )


def write_search_study(sweep_dir: Path, config: DictConfig) -> None:
    """An Optuna search's study table, plot and tuned file (rlcore/tuning.py), printed and written to its folder."""
    from rlcore.tuning import format_study, write_study

    direction = str(config.hydra.sweeper.get("direction", "maximize"))
    try:
        result = write_study(sweep_dir, "minimize" if "minimize" in direction else "maximize")
    except RLCoreError as exc:
        print(f"[rlcore] no study for {sweep_dir}: {exc}", file=sys.stderr)
        return
    print(f"\n[rlcore] search {sweep_dir}: {format_study(result)}")
    print(
        f"[rlcore] wrote {result['table']} (and study.csv, study.png)"
        + (f"; best settings as a tuned file: {result['tuned']}" if result["tuned"] else "")
    )


def parallel_job() -> bool:
    """True inside a multirun job whose launcher runs jobs side by side or elsewhere (joblib, submitit).

    Their progress bars would interleave on one console (or fill SLURM log files with carriage returns),
    so train.py turns the bar off for them and prints one line per finished job instead.
    """
    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.mode == RunMode.MULTIRUN and hydra_cfg.launcher.get("_target_") != BASIC_LAUNCHER


def job_line(summary: dict, run_dir: Path) -> str:
    """One line per finished job of a parallel sweep."""
    std = summary.get("eval_std_return")
    final = f"{summary['eval_mean_return']:.1f}" + (f" ± {std:.1f}" if std is not None else "")
    return (
        f"[rlcore] done: {summary.get('env')} {summary.get('agent')} seed {summary.get('seed')}: final eval {final} "
        f"({summary.get('total_steps')} steps, {summary.get('wall_time_s', 0):.1f} s) in {run_dir}"
    )
