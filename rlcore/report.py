"""Aggregate a folder of runs across seeds: ``python -m rlcore.report <folder> [--band minmax|std] [--out DIR]``.

The folder is a multirun (``train.py -m ...``) or any tree of run directories. Every run below it
(``summary.json`` + ``config.yaml`` + ``metrics.csv``) is grouped by env, agent and every other setting that
differs between the runs of that env and agent (e.g. ``agent.double``), never by the seed. For each group the
report gives the final greedy evaluation (each run's ``summary.json`` ``eval_mean_return``) as mean ± std across
seeds, the mean best periodic evaluation and the steps, and writes ``aggregate.json`` and ``aggregate.png``
(mean curves with their spread across seeds). Runs without a summary.json (still running, or crashed) are
listed and skipped. Groups of three seeds or more also get rliable's interquartile mean (IQM) and mean of the
final evaluations with 95 % stratified-bootstrap confidence intervals, and ``performance_profile.png``
(rlcore/intervals.py; needs the ``stats`` extra).

The std is the sample standard deviation (n-1 in the denominator): the seeds are a sample of the seeds one
could run, and with 3-5 of them the population formula understates the spread (Henderson et al. 2018,
"Deep Reinforcement Learning that Matters", report across-seed spread for the same reason). With one seed
it is undefined and reported as null.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlcore.base.errors import RLCoreError
from rlcore.intervals import format_interval, interval_estimates, performance_profiles

# settings that differ between the runs of one group by design, or that cannot change what is learnt
IGNORED_KEYS = ("seed", "run_dir")
IGNORED_PREFIXES = ("logger.",)
TRAIN_GRID_POINTS = 200  # common steps the smoothed training returns of all seeds are resampled onto


@dataclass
class Run:
    """One finished run: its folder, summary.json, and its config.yaml flattened to dotted keys."""

    path: Path
    summary: dict
    config: dict[str, Any]

    @property
    def seed(self) -> Any:
        return self.summary.get("seed", self.config.get("seed"))


@dataclass
class Group:
    """Runs of one env and agent whose settings are equal except for the seed."""

    env: str
    agent: str
    variant: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    @property
    def settings(self) -> str:
        """What sets this group apart from the others of its env and agent, e.g. ``agent.double=true``."""
        return " ".join(f"{k}={_show(v)}" for k, v in self.variant.items())

    @property
    def label(self) -> str:
        return f"{self.agent} {self.settings}".strip()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"agent": {"lr": 1e-3}}`` -> ``{"agent.lr": 1e-3}``; lists become tuples so values can be compared and hashed."""
    if isinstance(tree, dict) and (tree or not prefix):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(
        tree, dict | list
    ):  # an empty mapping (env.kwargs: {}) or a list (net.hidden_sizes) is one value
        return {
            prefix[:-1]: json.dumps(tree, sort_keys=True)
            if isinstance(tree, dict)
            else tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v for v in tree)
        }
    return {prefix[:-1]: tree}


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    return str(value)


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


def _hidden(path: Path, root: Path) -> bool:
    """Below a dot-folder (Hydra's .hydra/, submitit's .submitit/): not a run's own files."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def find_runs(root: Path) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Every finished run below ``root`` and, with the reason, every run folder that is not usable."""
    root = Path(root)
    if not root.is_dir():
        raise RLCoreError(
            f"{root} is not a folder; give the folder of a multirun (multirun/<time>) or of runs"
        )
    # train.log is Hydra's log of the job: the one file a job that stopped before training began leaves behind
    names = ("summary.json", "metrics.csv", "train.log")
    folders = {p.parent for name in names for p in root.rglob(name) if not _hidden(p, root)}
    folders -= {
        p.parent for p in root.rglob("trial.json")
    }  # an Optuna trial's job folder: its runs are below it
    runs, skipped = [], []
    for folder in sorted(folders):
        if not (folder / "summary.json").is_file():
            skipped.append((folder, "no summary.json: still running, or stopped by an error"))
            continue
        if not (folder / "config.yaml").is_file():
            skipped.append((folder, "no config.yaml: not a run written by train.py"))
            continue
        try:
            summary = json.loads((folder / "summary.json").read_text())
            config = yaml.safe_load((folder / "config.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError) as exc:
            skipped.append((folder, f"unreadable summary.json or config.yaml ({type(exc).__name__})"))
            continue
        if not isinstance(summary, dict) or not isinstance(config, dict):
            skipped.append((folder, "summary.json or config.yaml is not a mapping"))
            continue
        runs.append(Run(folder, summary, flatten(config)))
    return runs, skipped


def _ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Group by (env, agent), then split each by every setting whose value differs among its runs (not the seed)."""
    by_pair: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        env = str(run.summary.get("env", run.config.get("env.name")))
        agent = str(run.summary.get("agent", run.config.get("agent.name")))
        by_pair[(env, agent)].append(run)
    groups = []
    for (env, agent), members in sorted(by_pair.items()):
        keys = sorted({k for run in members for k in run.config if not _ignored(k)})
        varying = [k for k in keys if len({repr(run.config.get(k, "<unset>")) for run in members}) > 1]
        split: dict[tuple, Group] = {}
        for run in members:
            values = tuple(run.config.get(k, "<unset>") for k in varying)
            key = tuple(map(repr, values))
            if key not in split:
                split[key] = Group(env, agent, dict(zip(varying, values, strict=True)))
            split[key].runs.append(run)
        for group in sorted(split.values(), key=lambda g: [_show(v) for v in g.variant.values()]):
            group.runs.sort(key=lambda r: (r.seed if isinstance(r.seed, int) else math.inf, str(r.path)))
            groups.append(group)
    return groups


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1) of the finite values; std is None below two values, both None for none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None, None
    mean = float(np.mean(finite))
    return mean, float(np.std(finite, ddof=1)) if len(finite) > 1 else None


def stats(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "values"}`` of one quantity across the seeds of a group (see :func:`mean_std`)."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "values": list(values)}


def aggregate_curves(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> dict[str, list]:
    """Per step present in any curve: mean, sample std, min, max and how many seeds have a value there."""
    at_step: dict[float, list[float]] = defaultdict(list)
    for steps, values in curves:
        for step, value in dict(
            zip(steps, values, strict=True)
        ).items():  # a repeated step keeps its last value
            if math.isfinite(value):
                at_step[step].append(value)
    out: dict[str, list] = {"step": [], "mean": [], "std": [], "min": [], "max": [], "n": []}
    for step in sorted(at_step):
        seeds = at_step[step]
        mean, std = mean_std(seeds)
        for key, entry in zip(out, (step, mean, std, min(seeds), max(seeds), len(seeds)), strict=True):
            out[key].append(entry)
    return out


def resample(steps: Sequence[float], values: Sequence[float], grid: np.ndarray) -> list[float]:
    """Linear interpolation of one seed's curve onto the common step grid (episodes end at different steps per seed)."""
    return np.interp(grid, np.asarray(steps, dtype=float), np.asarray(values, dtype=float)).tolist()


def _read_columns(metrics_csv: Path, keys: Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {key: ([], []) for key in keys}
    try:
        with open(metrics_csv, newline="") as handle:
            for row in csv.DictReader(handle):
                for key in keys:
                    value, step = row.get(key), row.get("step")
                    if value not in ("", None) and step not in ("", None):
                        step, value = float(step), float(value)
                        out[key][0].append(step)
                        out[key][1].append(value)
    except (
        OSError,
        ValueError,
    ):  # a missing or damaged metrics.csv leaves the run out of the curves, not the table
        return {key: ([], []) for key in keys}
    return out


def group_curves(group: Group) -> dict[str, dict[str, list] | None]:
    """The group's periodic-evaluation curve and its smoothed training-return curve, aggregated across seeds."""
    from rlcore.training.plots import moving_average, smoothing_window

    evals, trains = [], []
    for run in group.runs:
        columns = _read_columns(run.path / "metrics.csv", ("eval/mean_return", "rollout/episode_return"))
        if columns["eval/mean_return"][0]:
            evals.append(columns["eval/mean_return"])
        steps, returns = columns["rollout/episode_return"]
        if len(steps) >= 2:
            trains.append((steps, moving_average(returns, smoothing_window(len(returns)))))
    train = None
    if trains:
        start, stop = max(s[0] for s, _ in trains), min(s[-1] for s, _ in trains)
        if stop > start:
            grid = np.linspace(start, stop, TRAIN_GRID_POINTS)
            train = aggregate_curves([(grid.tolist(), resample(s, v, grid)) for s, v in trains])
    return {"eval": aggregate_curves(evals) if evals else None, "train": train}


def summarize_group(group: Group, root: Path) -> dict[str, Any]:
    """The JSON record of one group: its runs, final and best evaluation across seeds, steps and curves."""
    final = [r.summary.get("eval_mean_return") for r in group.runs]
    best = [r.summary.get("best_eval_mean_return") for r in group.runs]
    record: dict[str, Any] = {
        "env": group.env,
        "agent": group.agent,
        "variant": {k: _jsonable(v) for k, v in group.variant.items()},
        "settings": group.settings,
        "label": group.label,
        "n_runs": len(group.runs),
        "seeds": [r.seed for r in group.runs],
        "runs": [str(r.path.relative_to(root)) for r in group.runs],
        "final_eval": stats(final),
        "best_eval": stats(best),
        "steps": sorted({r.summary.get("total_steps") for r in group.runs}, key=str),
        "train_sps_mean": mean_std([r.summary.get("train_sps") for r in group.runs])[0],
        "wall_time_s_mean": mean_std([r.summary.get("wall_time_s") for r in group.runs])[0],
    }
    accuracy = [r.summary["test_accuracy"] for r in group.runs if "test_accuracy" in r.summary]
    if accuracy:
        record["test_accuracy"] = stats(accuracy)
    record["rliable"] = interval_estimates(
        final
    )  # IQM and mean with 95 % CIs from 3 seeds on (rlcore/intervals.py)
    record["curves"] = group_curves(group)
    return record


def _pm(stats: dict | None, scale: float = 1.0, digits: int = 1) -> str:
    if not stats or stats["mean"] is None:
        return "–"
    std = "–" if stats["std"] is None else f"{scale * stats['std']:.{digits}f}"
    return f"{scale * stats['mean']:.{digits}f} ± {std}"


def format_table(records: Sequence[dict]) -> str:
    """A Markdown table, one row per group (ready to paste into a README)."""
    accuracy = any("test_accuracy" in r for r in records)
    intervals = any(r.get("rliable") for r in records)
    header = [
        "env",
        "agent",
        "variant",
        "seeds",
        "final eval (mean ± std)",
        "best eval (mean ± std)",
        "steps",
    ]
    header += ["test accuracy % (mean ± std)"] if accuracy else []
    header += ["final eval IQM [95% CI]", "final eval mean [95% CI]"] if intervals else []
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|",
    ]
    for r in records:
        seeds = f"{r['n_runs']}" + (
            " (repeated seed)" if len(set(map(str, r["seeds"]))) < r["n_runs"] else ""
        )
        steps = "/".join(f"{s:,}" if isinstance(s, int) else str(s) for s in r["steps"])
        row = [
            r["env"],
            r["agent"],
            r["settings"] or "–",
            seeds,
            _pm(r["final_eval"]),
            _pm(r["best_eval"]),
            steps,
        ]
        row += [_pm(r.get("test_accuracy"), 100.0, 2)] if accuracy else []
        row += (
            [format_interval(r.get("rliable")), format_interval(r.get("rliable"), "mean")]
            if intervals
            else []
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def sweep_command(root: Path) -> str | None:
    """The ``train.py -m`` command that made a multirun folder (from Hydra's multirun.yaml), minus its sweep dir."""
    try:
        overrides = yaml.safe_load((Path(root) / "multirun.yaml").read_text())["hydra"]["overrides"]
        task, hydra = list(overrides.get("task") or []), list(overrides.get("hydra") or [])
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None  # not a multirun folder (a tree of single runs): nothing to reproduce it with
    hydra = [o for o in hydra if not o.startswith(("hydra.mode=", "hydra.sweep.dir="))]
    return shlex.join(["python", "train.py", "-m", *task, *hydra])


def aggregate(
    root: Path, out_dir: Path | None = None, band: str = "minmax", plot: bool = True
) -> dict[str, Any]:
    """Find, group and summarize the runs below ``root``; write aggregate.json (and aggregate.png) to ``out_dir``."""
    root = Path(root)
    runs, skipped = find_runs(root)
    if not runs:
        why = f"; {len(skipped)} unfinished or unreadable run folder(s)" if skipped else ""
        raise RLCoreError(f"no finished run (summary.json + config.yaml) below {root}{why}")
    records = [summarize_group(group, root) for group in group_runs(runs)]
    report = {
        "root": str(root),
        "command": sweep_command(root),
        "std": "sample standard deviation across seeds (ddof=1); null for one seed",
        "band": band,
        "groups": records,
        "skipped": [{"run": str(path.relative_to(root)), "reason": reason} for path, reason in skipped],
    }
    out_dir = Path(out_dir) if out_dir is not None else root
    out_dir.mkdir(parents=True, exist_ok=True)
    if plot:
        from rlcore.training.plots import plot_sweep

        panels: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            panels[r["env"]].append({"label": r["label"], **r["curves"]})
        plot_sweep(dict(panels), out_dir / "aggregate.png", band=band)
        scores: dict[str, dict[str, list]] = defaultdict(dict)
        for r in records:
            scores[r["env"]][r["label"]] = r["final_eval"]["values"]
        if any(r.get("rliable") for r in records) and performance_profiles(
            scores, out_dir / "performance_profile.png"
        ):
            report["performance_profile"] = str(out_dir / "performance_profile.png")
    (out_dir / "aggregate.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_report(report: dict) -> str:
    """The table, the command that made the sweep, then the skipped run folders (if any)."""
    text = format_table(report["groups"])
    if report.get("command"):
        text += f"\n\nsweep command: {report['command']}"
    if report["skipped"]:
        text += f"\n\nskipped {len(report['skipped'])} run folder(s):"
        text += "".join(f"\n  {s['run']}: {s['reason']}" for s in report["skipped"])
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlcore.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a multirun folder (multirun/<time>) or any folder of runs")
    parser.add_argument(
        "--out", type=Path, default=None, help="where aggregate.json/png go (default: the folder)"
    )
    parser.add_argument(
        "--band",
        choices=("minmax", "std"),
        default="minmax",
        help="shaded spread across seeds: min-max (default) or mean ± 1 std",
    )
    parser.add_argument("--no-plot", action="store_true", help="write aggregate.json only")
    args = parser.parse_args(argv)
    try:
        report = aggregate(args.folder, args.out, band=args.band, plot=not args.no_plot)
    except RLCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else args.folder
    print(format_report(report))
    print(
        f"\nwrote {out / 'aggregate.json'}"
        + ("" if args.no_plot else f" and {out / 'aggregate.png'}")
        + (" and performance_profile.png" if report.get("performance_profile") else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
