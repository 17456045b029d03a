"""Hyperparameter search on Hydra's Optuna sweeper: ``python train.py -m +search=dqn_CartPole`` (docs/tuning.md).

The search spaces are config files, one per agent x env (``configs/search/<agent>_<env>.yaml``): they pick
``hydra/sweeper=optuna`` and list ``hydra.sweeper.params``. Optuna asks for a trial; the sweeper hands it to
the launcher in use (basic, joblib, submitit), so a search runs on this machine or on a cluster unchanged.

One trial is one Hydra job (:func:`run_trial`): it trains ``tune.seeds`` runs, seeds ``seed``, ``seed+1``, ...,
into ``<job folder>/seed<k>/`` and returns ``tune.statistic`` (the mean by default) of their ``tune.metric``
(the final greedy evaluation by default; the validation accuracy for supervised nets) to Optuna, so a setting
that wins on one lucky seed does not win the search. The job writes ``trial.json`` beside the runs. When the
sweep ends, :func:`write_study` (called by :class:`rlcore.sweeps.SweepCallback`, or ``python -m rlcore.tuning
<sweep folder>``) writes into the sweep folder ``study.csv`` and ``study.md`` (one row per trial),
``study.png`` (objective per trial, best so far, and the parameter importances when Optuna can compute them)
and ``tuned_<agent>_<env>.yaml``: the best trial's settings as a ready ``configs/tuned/`` file.

The sweeper's studies live in memory: Optuna 2.x, which the sweeper pins, cannot open an SQLite ``storage``
with SQLAlchemy 2, so the trial.json files are the study's record (and what :func:`write_study` reads).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from rlcore.base.errors import ConfigError, DivergenceError, RLCoreError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRIAL_FILE = "trial.json"
_ABSENT = object()


def optuna_sweep(hydra_cfg: Any) -> bool:
    """True when ``hydra_cfg`` (HydraConfig.get() in a job, ``config.hydra`` in a callback) is an Optuna sweep."""
    target = str(OmegaConf.select(hydra_cfg, "sweeper._target_", default="") or "")
    return "optuna" in target.lower()


def objective(values: Sequence[float | None], statistic: str) -> float:
    """What a trial reports to Optuna: ``statistic`` of its seeds' values (NaN when any is missing)."""
    array = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    if array.size == 0 or not np.isfinite(array).all():
        return math.nan  # Optuna records the trial as failed and the search goes on
    reduce: dict[str, Callable[[np.ndarray], Any]] = {
        "mean": np.mean,
        "median": np.median,
        "min": np.min,
        "q25": lambda a: np.quantile(a, 0.25),
    }
    return float(reduce[statistic](array))


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def run_trial(
    cfg: DictConfig, job_dir: Path, overrides: list[str], trial: int | None = None, multirun: bool = True
) -> float:
    """Train one trial's seeds into ``job_dir/seed<k>`` and return its objective (see the module docstring)."""
    from rlcore.config import to_typed
    from rlcore.run import run

    if not multirun:  # the Optuna sweeper only runs with -m; without it Hydra would make this one plain run
        raise ConfigError(
            "hydra/sweeper=optuna (a +search= file) is a search: run it with -m, e.g. "
            "python train.py -m +search=dqn_CartPole"
        )
    typed = to_typed(cfg)  # the trial's settings pass their checks once, before any seed trains
    if cfg.get("resume"):
        raise ConfigError(
            "config key 'resume': a search trial trains fresh runs; drop resume= from the search"
        )
    seeds = [typed.seed + k for k in range(typed.tune.seeds)]
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    record: dict[str, Any] = {
        "trial": trial,
        "params": {
            k: _value(cfg, k)
            for k in keys
            if k
            and not k.startswith("hydra")
            and k != "seed"
            and OmegaConf.select(cfg, k, default=_ABSENT) is not _ABSENT
        },  # not +search= (a group)
        "seeds": seeds,
        "statistic": typed.tune.statistic,
        "metric": typed.tune.metric,
        "values": [],
        "runs": [],
    }
    for seed in seeds:
        run_cfg = cfg.copy()
        run_cfg.seed = seed
        run_cfg.logger.progress = False
        run_dir = job_dir / f"seed{seed}"
        try:
            summary = run(run_cfg, run_dir)
        except DivergenceError as exc:  # a setting that diverges fails its trial, not the search
            record["error"] = f"seed {seed}: {exc}"
            record["values"].append(None)
            break
        if not isinstance(summary.get(typed.tune.metric), int | float):
            numbers = ", ".join(k for k, v in summary.items() if isinstance(v, int | float))
            raise ConfigError(
                f"config key 'tune.metric': {typed.tune.metric!r} is no number in this run's "
                f"summary.json; numbers there: {numbers}"
            )
        record["values"].append(summary[typed.tune.metric])
        record["runs"].append(run_dir.name)
    record["objective"] = objective(record["values"], typed.tune.statistic)
    value = record["objective"]
    (job_dir / TRIAL_FILE).write_text(json.dumps(record, indent=2, allow_nan=True) + "\n")
    searched = searched_keys() or list(record["params"])
    shown = " ".join(f"{k}={_show(v)}" for k, v in record["params"].items() if k in searched)
    evals = ", ".join("diverged" if v is None else f"{v:.1f}" for v in record["values"])
    print(
        f"[rlcore] trial {trial}: {shown} -> seeds {seeds[0]}..{seeds[-1]}: {evals} -> "
        f"{typed.tune.statistic} {value:.2f}",
        flush=True,
    )
    return value


def searched_keys() -> list[str]:
    """The keys ``hydra.sweeper.params`` searches (those given as a choice, range or interval), in a job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    params = HydraConfig.get().sweeper.get("params") or {}
    return [k for k, v in params.items() if any(f"{w}(" in str(v) for w in ("choice", "range", "interval"))]


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------- the study


def search_space(sweep_dir: Path) -> dict[str, Any]:
    """The searched parameters and their Optuna distributions, from the sweep's multirun.yaml (file + command line)."""
    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
        sweeper = saved["hydra"]["sweeper"]
        task = list(saved["hydra"]["overrides"]["task"] or [])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    arguments = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()] + task
    try:
        from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

        distributions, fixed = create_params_from_overrides(arguments)
    except Exception:  # the plugin is missing or changed: the study is still written, without importances
        return {}
    return {k: v for k, v in distributions.items() if k not in fixed}  # as the sweeper: a fixed value wins


def load_trials(sweep_dir: Path) -> list[dict]:
    """Every ``trial.json`` below the sweep folder, in trial order, each with its job folder's name as ``job``."""
    trials = []
    for path in sorted(Path(sweep_dir).glob(f"*/{TRIAL_FILE}")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        record["job"] = path.parent.name
        trials.append(record)
    trials.sort(key=lambda r: (r.get("trial") is None, r.get("trial") or 0, r["job"]))
    return trials


def importances(
    trials: Sequence[dict], distributions: dict[str, Any], direction: str = "maximize"
) -> dict[str, float]:
    """Optuna's parameter importances (mean decrease in impurity) of the finished trials; {} when it cannot say."""
    finished = [t for t in trials if t.get("objective") is not None and math.isfinite(t["objective"])]
    if len(finished) < 2 or not distributions:
        return {}
    try:
        import warnings

        import optuna

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction=direction)
        for t in finished:
            params = {k: t["params"][k] for k in distributions if k in t["params"]}
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions={k: distributions[k] for k in params}, value=t["objective"]
                )
            )
        # fANOVA, Optuna's default, breaks on scikit-learn >= 1.3 in the optuna 2.x the sweeper pins
        evaluator = optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0)
        return {
            k: float(v)
            for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()
        }
    except Exception:  # a parameter outside its distribution, too few distinct values, no optuna: none given
        return {}


def best_trial(trials: Sequence[dict], direction: str = "maximize") -> dict | None:
    finished = [t for t in trials if t.get("objective") is not None and math.isfinite(t["objective"])]
    if not finished:
        return None
    pick = max if direction == "maximize" else min
    return pick(finished, key=lambda t: t["objective"])


def tuned_settings(best: dict, job_dir: Path, searched: Sequence[str]) -> tuple[dict, str, str]:
    """The best trial's searched keys plus every key the current configs/tuned file of its agent x env sets."""
    config = yaml.safe_load((job_dir / best["runs"][0] / "config.yaml").read_text())
    agent, env = config["agent"]["name"], config["env"]["name"]
    keys = list(searched)
    current = CONFIGS / "tuned" / f"{agent}_{env}.yaml"
    if current.is_file():
        keys += [k for k in _flatten(yaml.safe_load(current.read_text()) or {}) if k not in keys]
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        parent = out
        *head, last = key.split(".")
        for part in head:
            parent = parent.setdefault(part, {})
        parent[last] = node
    return out, agent, env


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_study(sweep_dir: Path, direction: str = "maximize") -> dict[str, Any]:
    """Write study.csv/md/png and the tuned file of the best trial into ``sweep_dir``; returns what it wrote."""
    sweep_dir = Path(sweep_dir)
    trials = load_trials(sweep_dir)
    if not trials:
        raise RLCoreError(
            f"no {TRIAL_FILE} below {sweep_dir}: not an Optuna sweep of train.py, or no trial finished"
        )
    distributions = search_space(sweep_dir)
    searched = list(distributions) or sorted({k for t in trials for k in t["params"]} - {"tune.seeds"})
    columns = ["trial", *searched, "objective", "values", "job"]
    rows = [
        [
            t.get("trial"),
            *(t["params"].get(k) for k in searched),
            t.get("objective"),
            " ".join("nan" if v is None else f"{v:g}" for v in t["values"]),
            t["job"],
        ]
        for t in trials
    ]
    with open(sweep_dir / "study.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    best = best_trial(trials, direction)
    table = ["| " + " | ".join(columns[:-1]) + " |", "|" + "---:|" * (len(columns) - 1)]
    for t, row in zip(trials, rows, strict=True):
        cells = ["" if v is None else _show(v) for v in row[:-1]]
        if t is best:
            cells[0] = f"**{cells[0]}** (best)"
        table.append("| " + " | ".join(cells) + " |")
    statistic, metric = trials[0].get("statistic", "mean"), trials[0].get("metric", "eval_mean_return")
    (sweep_dir / "study.md").write_text(
        f"Objective: the {statistic} of summary.json's {metric} over each trial's seeds "
        f"{trials[0]['seeds']}.\n\n" + "\n".join(table) + "\n"
    )
    weights = importances(trials, distributions, direction)
    from rlcore.training.plots import plot_study

    plot_study(
        [t.get("trial") for t in trials],
        [t.get("objective") for t in trials],
        weights,
        sweep_dir / "study.png",
        direction=direction,
    )
    result: dict[str, Any] = {
        "trials": len(trials),
        "best": best,
        "importances": weights,
        "table": sweep_dir / "study.md",
        "csv": sweep_dir / "study.csv",
        "plot": sweep_dir / "study.png",
        "tuned": None,
        "searched": searched,
    }
    if best is not None and best.get("runs"):
        settings, agent, env = tuned_settings(best, sweep_dir / best["job"], searched)
        tuned = sweep_dir / f"tuned_{agent}_{env}.yaml"
        header = (
            "# @package _global_\n"
            f"# Best trial ({best.get('trial')}) of the Optuna search in {sweep_dir}: {statistic} {metric} "
            f"{best['objective']:.2f} over seeds {best['seeds']}.\n"
            f"# Searched: {', '.join(searched)}; the other keys are those configs/tuned/{agent}_{env}.yaml sets, as the "
            "trial ran them.\n"
            f"# Use it: copy it to configs/tuned/{agent}_{env}.yaml, or pass its keys on the command line.\n"
        )
        tuned.write_text(header + yaml.safe_dump(settings, sort_keys=False))
        result["tuned"] = tuned
    return result


def format_study(result: dict[str, Any]) -> str:
    best = result["best"]
    if best is None:
        return f"{result['trials']} trial(s), none finished with a finite objective"
    params = " ".join(f"{k}={_show(v)}" for k, v in best["params"].items() if k in result["searched"])
    text = f"{result['trials']} trial(s); best: trial {best.get('trial')} ({best['objective']:.2f}): {params}"
    if result["importances"]:
        text += "\nparameter importances: " + ", ".join(
            f"{k} {v:.2f}" for k, v in result["importances"].items()
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlcore.tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the sweep folder of an Optuna search (multirun/<time>)")
    parser.add_argument("--direction", choices=("maximize", "minimize"), default="maximize")
    args = parser.parse_args(argv)
    try:
        result = write_study(args.folder, args.direction)
    except RLCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_study(result))
    print(
        f"wrote {result['table']}, {result['csv'].name}, {result['plot'].name}"
        + (f" and {result['tuned'].name}" if result["tuned"] else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
