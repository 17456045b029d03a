"""The README's headline figures, regenerated from the commands the README shows, with no other key.

    python benchmarks/readme_figures.py                   # every row (~45 min on 2 idle cores), rewrites README
    python benchmarks/readme_figures.py --only cartpole --jobs 3
    python benchmarks/readme_figures.py --check-seed0     # CI: seed 0 of every row reaches its figure

Rows (each run is ``python train.py <row's overrides> seed=<k>`` in its own process, defaults untouched):

* ``cartpole``: ``python train.py`` (the Quick start: DQN on CartPole-v1), seeds 0-19, threshold 475;
* ``acrobot``: ``python train.py env=Acrobot``, seeds 0-9, threshold -100;
* ``mountaincar``: ``python train.py env=MountainCar``, seeds 0-9, threshold -110 (Gym's "solved");
* ``mnist``: ``python train.py agent=supervised env=MNIST net=lenet5``, seed 0, threshold 99.2 % test accuracy
  (needs the MNIST files: ``$RLCORE_MNIST_DIR`` or ``../shared/data/mnist``; skipped with a note without them).

Per row: each seed's final 20-episode greedy evaluation; how many seeds end at or above the threshold; stability
(of the periodic evaluations after a seed's first one at or above the threshold, the share that stay there:
1.0 = no collapse); the median step of that first one; IQM and mean with 95 % stratified-bootstrap CIs
(``rliable``, Agarwal et al. 2021; the ``stats`` extra) and the median training SPS. Runs go to
``runs/readme_figures/<version of the training code>/<row>-<hash of its composed config>/seed<k>`` and are reused
when finished, so a killed benchmark picks up where it stopped, a docs-only commit reruns nothing and retuning one
env's config reruns that row alone. JSON: ``benchmarks/results/readme_figures.json``; the learning curves (mean and min-max band of
the periodic evaluations across seeds): ``docs/figures/readme_defaults.png``. A full run rewrites the block of
README.md between the ``readme_figures`` markers.

``--check-seed0`` runs seed 0 of every row (the same commands) and exits 1 when one misses its threshold: a
regression check of the defaults that CI runs (learning thresholds, not timings; deterministic on CPU).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlcore.intervals import format_interval, interval_estimates  # noqa: E402

README = ROOT / "README.md"
BEGIN, END = "<!-- readme_figures:begin -->", "<!-- readme_figures:end -->"
RESULTS = ROOT / "benchmarks" / "results" / "readme_figures.json"
FIGURE = ROOT / "docs" / "figures" / "readme_defaults.png"


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    overrides: tuple[str, ...]
    seeds: int
    threshold: float
    target: str
    accuracy: bool = False  # a dataset env: the final evaluation is the test accuracy (in %)

    def command(self) -> str:
        return " ".join(["python train.py", *self.overrides])


ROWS = {
    row.name: row
    for row in (
        Row(
            "cartpole",
            "DQN, CartPole-v1 (Quick start)",
            (),
            20,
            475.0,
            "final ≥ 475 on 10/10 seeds 0–9 and ≥ 19/20; ≥ 90 % of evaluations stay ≥ 475",
        ),
        Row(
            "acrobot",
            "DQN, Acrobot-v1",
            ("env=Acrobot",),
            10,
            -100.0,
            "as stable as CartPole: final ≥ −100 on 10/10 seeds; ≥ 90 % of evaluations stay",
        ),
        Row(
            "mountaincar",
            "DQN, MountainCar-v0",
            ("env=MountainCar",),
            10,
            -110.0,
            'as stable as CartPole: final ≥ −110 (Gym\'s "solved") on 10/10 seeds; ≥ 90 % of evaluations stay',
        ),
        Row(
            "mnist",
            "supervised LeNet-5, MNIST",
            ("agent=supervised", "env=MNIST", "net=lenet5"),
            1,
            99.2,
            "≥ 99.2 % test accuracy",
            accuracy=True,
        ),
    )
}


TRAINING_CODE = ("agents", "nets", "envs", "rlcore", "train.py", "pyproject.toml")  # configs: per row, below


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def commit() -> str:
    return git("rev-parse", "--short", "HEAD") or "nogit"


def code_version() -> str:
    """What the runs' folder is named after: the tracked training code (not the configs, the docs or the
    benchmarks), so a docs-only commit reuses finished runs and any code change that can move a trajectory starts
    afresh. Uncommitted changes to that code are folded in (``-dirty-<hash of the diff>``). The configs count per
    row (:func:`row_version`)."""
    import hashlib

    tree = git("ls-tree", "-r", "HEAD", "--", *TRAINING_CODE)
    if not tree:
        return "nogit"
    version = hashlib.sha1(tree.encode()).hexdigest()[:10]
    diff = git("diff", "HEAD", "--", *TRAINING_CODE)
    return version + (f"-dirty-{hashlib.sha1(diff.encode()).hexdigest()[:8]}" if diff else "")


def row_version(row: Row) -> str:
    """The row's folder name: the row and a hash of the config its command composes (every group's file, the
    tuned files it selects and their defaults), so retuning one env's defaults reruns that row and no other."""
    import hashlib

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlcore.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=list(row.overrides))
    composed = OmegaConf.to_yaml(cfg, resolve=False)  # interpolations (run_dir's timestamp) stay as written
    return f"{row.name}-{hashlib.sha1(composed.encode()).hexdigest()[:8]}"


def mnist_dir() -> str | None:
    for candidate in (os.environ.get("RLCORE_MNIST_DIR"), str(ROOT.parent / "shared" / "data" / "mnist")):
        if candidate and any(Path(candidate, f"t10k-labels-idx1-ubyte{gz}").exists() for gz in ("", ".gz")):
            return candidate
    return None


def run_one(row: Row, seed: int, folder: Path) -> dict:
    """One seed of one row: train.py in its own process (reused when a finished run is already there)."""
    run_dir = folder / f"seed{seed}"
    reused = (run_dir / "summary.json").exists()
    if not reused:
        if run_dir.exists():  # killed before it finished: start it again from scratch
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        env = {**os.environ, "WANDB_MODE": "disabled"}
        if row.accuracy:
            env["RLCORE_MNIST_DIR"] = mnist_dir() or ""
        cmd = [sys.executable, str(ROOT / "train.py"), *row.overrides, f"seed={seed}", f"run_dir={run_dir}"]
        cmd += ["logger.progress=false"]  # the console bar only; what is logged and trained is the same
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(
                f"train.py failed (exit {done.returncode}): {' '.join(cmd[1:])}\n{done.stderr[-1500:]}"
            )
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "metrics.csv", newline="") as handle:
        evals = [
            (int(r["step"]), float(r["eval/mean_return"]))
            for r in csv.DictReader(handle)
            if r["eval/mean_return"]
        ]
    final = summary.get("test_accuracy", summary["eval_mean_return"])
    final = 100.0 * final if row.accuracy else final
    return {
        "seed": seed,
        "final": round(float(final), 2),
        "periodic": evals[:-1] if not row.accuracy else [],  # the last row is the final evaluation
        "train_sps": summary.get("train_sps"),
        "reused": reused,
    }


def stability(row: Row, runs: list[dict]) -> tuple[int, int, int | None]:
    """(evaluations after each seed's first one ≥ threshold that stay ≥ it, all of them, median first step)."""
    stay = after = 0
    firsts = []
    for run in runs:
        values = [v for _, v in run["periodic"]]
        first = next((i for i, v in enumerate(values) if v >= row.threshold), None)
        if first is None:
            continue
        firsts.append(run["periodic"][first][0])
        tail = values[first + 1 :]
        after += len(tail)
        stay += sum(v >= row.threshold for v in tail)
    return stay, after, int(statistics.median(firsts)) if firsts else None


def summarise(row: Row, runs: list[dict]) -> dict:
    finals = [r["final"] for r in runs]
    stay, after, first = stability(row, runs)
    record = {
        "command": row.command() + " seed=<k>",
        "seeds": [r["seed"] for r in runs],
        "finals": finals,
        "reached": sum(f >= row.threshold for f in finals),
        "threshold": row.threshold,
        "target": row.target,
        "stay": stay,
        "after_first": after,
        "median_first_step": first,
        "mean": statistics.fmean(finals),
        "std": statistics.pstdev(finals),
        "rliable": interval_estimates(finals),
        "median_train_sps": statistics.median(r["train_sps"] for r in runs if r["train_sps"]),
    }
    if row.name == "cartpole":
        first10 = [r["final"] for r in runs if r["seed"] < 10]
        record["reached_seeds_0_9"] = sum(f >= row.threshold for f in first10)
    return record


def table(records: dict[str, dict]) -> str:
    lines = [
        "| command (`seed=<k>`) | seeds | final ≥ threshold | stay ≥ threshold after first | median first step "
        "| final mean ± std | IQM [95 % CI] | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, rec in records.items():
        row = ROWS[name]
        unit = " %" if row.accuracy else ""
        stay = f"{rec['stay']}/{rec['after_first']}" if rec["after_first"] else "–"
        first = f"{rec['median_first_step']:,}" if rec["median_first_step"] else "–"
        reached = f"{rec['reached']}/{len(rec['finals'])}"
        if "reached_seeds_0_9" in rec:
            reached += f" (seeds 0–9: {rec['reached_seeds_0_9']}/10)"
        lines.append(
            f"| `{row.command()}` | {len(rec['finals'])} | {reached} (≥ {row.threshold:g}{unit}) | {stay} | {first} "
            f"| {rec['mean']:.2f} ± {rec['std']:.2f}{unit} | {format_interval(rec['rliable'])} | {row.target} |"
        )
    return "\n".join(lines)


def per_seed(records: dict[str, dict]) -> str:
    lines = []
    for name, rec in records.items():
        if len(rec["finals"]) > 1:
            values = ", ".join(f"{s}: {f:g}" for s, f in zip(rec["seeds"], rec["finals"], strict=True))
            lines.append(f"- `{ROWS[name].command()}` final evaluation per seed — {values}")
    return "\n".join(lines)


def plot(records: dict[str, dict], runs: dict[str, list[dict]]) -> bool:
    import numpy as np
    from matplotlib.figure import Figure

    curves = {n: r for n, r in runs.items() if r and r[0]["periodic"]}
    if not curves:
        return False
    fig = Figure(figsize=(5 * len(curves), 3.8), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, seeds) in zip(axes, curves.items(), strict=True):
        steps = [s for s, _ in seeds[0]["periodic"]]
        values = np.array([[v for _, v in r["periodic"]] for r in seeds if len(r["periodic"]) == len(steps)])
        ax.plot(steps, values.mean(axis=0), label=f"mean of {len(values)} seeds")
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2, label="min–max")
        ax.axhline(ROWS[name].threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
        ax.set_title(f"{ROWS[name].command()}", fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("periodic greedy evaluation (10 episodes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=100)
    return True


def rewrite_readme(block: str) -> None:
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + block + "\n" + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows, comma-separated ({', '.join(ROWS)})")
    parser.add_argument("--seeds", type=int, default=0, help="seeds per row (0: each row's own count)")
    parser.add_argument("--jobs", type=int, default=2, help="train.py processes at a time")
    parser.add_argument("--check-seed0", action="store_true", help="seed 0 of each row; exit 1 if one misses")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        print(f"readme_figures.py: unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
        return 2
    if "mnist" in names and mnist_dir() is None:
        print(
            "[readme_figures] no MNIST files ($RLCORE_MNIST_DIR or ../shared/data/mnist): the mnist row is skipped"
        )
        names.remove("mnist")
    base = ROOT / "runs" / "readme_figures" / code_version()
    jobs = [
        (ROWS[n], seed)
        for n in names
        for seed in range(1 if args.check_seed0 else (args.seeds or ROWS[n].seeds))
    ]
    start = time.perf_counter()
    folders = {n: base / row_version(ROWS[n]) for n in names}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda job: run_one(job[0], job[1], folders[job[0].name]), jobs))
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for (row, _), result in zip(jobs, results, strict=True):
        runs[row.name].append(result)
    minutes = (time.perf_counter() - start) / 60
    reused = sum(r["reused"] for r in results)

    if args.check_seed0:
        failed = [n for n in names if runs[n][0]["final"] < ROWS[n].threshold]
        for n in names:
            verdict = "ok" if n not in failed else "BELOW"
            print(
                f"[readme_figures] seed 0 `{ROWS[n].command()}`: {runs[n][0]['final']:g} "
                f"(at least {ROWS[n].threshold:g}) {verdict}"
            )
        return 1 if failed else 0

    records = {n: summarise(ROWS[n], runs[n]) for n in names}
    print(table(records))
    print(per_seed(records))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "commit": commit(),
                "code_version": code_version(),
                "minutes": round(minutes, 1),
                "runs_reused": reused,
                "rows": records,
            },
            indent=1,
        )
    )
    drew = plot(records, runs)
    full = names == list(ROWS) and not args.seeds
    if full:
        block = "\n".join(
            [
                f"`python benchmarks/readme_figures.py` (commit {commit()}; every run the command as shown, "
                f"`seed=<k>` added; {len(jobs) - reused} runs trained in {minutes:.0f} min, {args.jobs} at a time"
                + (
                    f"; {reused} reused from an earlier invocation on the same code and configs"
                    if reused
                    else ""
                )
                + ")",
                "",
                table(records),
                "",
                per_seed(records),
                *(
                    ["", f"![learning curves of the default commands]({FIGURE.relative_to(ROOT)})"]
                    if drew
                    else []
                ),
            ]
        )
        rewrite_readme(block)
        print(f"README.md rewritten between the {BEGIN} markers")
    print(f"JSON: {RESULTS}" + (f"; curves: {FIGURE}" if drew else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
