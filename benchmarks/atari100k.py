"""The Atari 100k benchmark (Kaiser et al. 2019) for ``agent=drq``: N seeds x games, each a train.py process.

    python benchmarks/atari100k.py                                   # Breakout, 5 seeds, jobs = cores
    python benchmarks/atari100k.py --games Breakout Pong Qbert --seeds 3 --jobs 2
    python benchmarks/atari100k.py --arms drq drq_dae                # + the pretrained-encoder ablation
    python benchmarks/atari100k.py --arms drq drq_bf16 --seeds 3     # fp32 against amp=true (bf16 autocast)
    python benchmarks/atari100k.py --report-only                     # table of the runs already finished

Each run is ``python train.py agent=drq env=<Game> seed=<k>`` (the whole protocol: configs/tuned/drq_atari.yaml,
docs/atari100k.md) in ``--out/<arm>/<Game>/seed<k>`` (default ``runs/atari100k``). Resumable: a run whose
summary.json exists is read, not rerun, so a killed benchmark picks up where it stopped. An unfinished run
goes on from its last checkpoint: RL runs write ``checkpoints/last.pt`` with their replay every 10,000 steps
(``checkpoint.replay=true checkpoint_every=10000``, about 0.7 GB of frames at the end; bookkeeping only, left
out of the command shown in the table), and ``train.py resume=<run>`` continues from there. ALE's games cannot
be snapshotted, so the game in progress at the checkpoint is cut short and a fresh one starts: the run stays
within the protocol's 100,000 steps but is no longer the same-seed run step for step, so the record lists the
steps it resumed at (``resumed_at``). A run without a checkpoint starts again from scratch; one whose resume
fails is left as it is, with the error and what to do. Runs go ``--jobs``
at a time with one torch thread each (default: one per core).

A run's folder is large (its checkpoint holds the replay) and may not outlive the machine, so the results JSON
is the benchmark's record: each run's score, command, learning curve and the commits that trained it
(``commits.json`` in its folder). A report keeps the runs recorded in ``--results``' atari100k.json whose
folders it does not read this time (same budget only), so seeds trained at different times add up to one
table; ``--forget-recorded`` reports this call's runs alone.

The ``drq_bf16`` arm (``--arms drq_bf16``) is the preset with ``amp=true``: bf16 autocast of the network
passes, fp32 master weights. It is the learning check that bf16 must pass before it can be the default.

The ``drq_dae`` arm (``--arms drq_dae``) is the same preset with its NatureCNN encoder first pretrained as a
denoising autoencoder on frames of the same game played by a random policy (``agent=autoencoder
agent.noise=masking``, then ``net.pretrained=<that run>``). Those frames are env steps too, so they count
against the 100k budget: the RL run gets ``100000 - --dae-frames`` steps (ε still decays over 5,000).

Report: per game and arm, the final evaluation (100 episodes, ε = 0.001) as mean ± std across seeds, the
human-normalised score (score − random) / (human − random) and the paper anchors beside it; across games, the
IQM and mean human-normalised score with 95 % stratified-bootstrap CIs (rliable, through
:func:`rlcore.intervals.aggregate_across_tasks`; needs >= 3 seeds per game and the ``stats`` extra); an
aggregate learning-curve PNG (training-episode returns, human-normalised, mean across runs) and JSON, both in
``benchmarks/results/`` (atari100k.json, atari100k.png).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlcore.base.rundir import hold_run_dir  # noqa: E402
from rlcore.base.seeding import slow_bf16_reason  # noqa: E402
from rlcore.intervals import aggregate_across_tasks  # noqa: E402

BUDGET = 100_000  # agent steps per run (400,000 frames)
EPSILON_DECAY_STEPS = 5_000

# Per-game anchors (mean final score; docs/atari100k.md cites each column). random/human: the Atari reference
# scores of Mnih et al. 2015 / Badia et al. 2020 as Dopamine ships them (dopamine/labs/atari_100k/
# normalization_utils.py) and rliable uses them. SimPLe, DER, SPR: the per-game table of Schwarzer et al. 2021
# (SPR, 10 seeds; reprinted as Table 5 of Cetin et al. 2022, A-LIX). DrQ(eps): the mean of the 100 runs per game
# that Agarwal et al. 2021 released with rliable (as redistributed in eloialonso/iris results/data/DrQ(eps).json),
# rounded to one decimal here: that paper prints no per-game table.
ANCHORS: dict[str, dict[str, float | None]] = {
    "Breakout": {"random": 1.7, "human": 30.5, "SimPLe": 16.4, "DER": 1.9, "DrQ(eps)": 19.8, "SPR": 17.1},
    "Pong": {"random": -20.7, "human": 14.6, "SimPLe": 12.8, "DER": -19.3, "DrQ(eps)": -9.1, "SPR": -5.9},
    "Qbert": {
        "random": 163.9,
        "human": 13455.0,
        "SimPLe": 1288.8,
        "DER": 1152.9,
        "DrQ(eps)": 1810.7,
        "SPR": 669.1,
    },
    "Seaquest": {
        "random": 68.4,
        "human": 42054.7,
        "SimPLe": 683.3,
        "DER": 354.1,
        "DrQ(eps)": 352.3,
        "SPR": 583.1,
    },
    "MsPacman": {
        "random": 307.3,
        "human": 6951.6,
        "SimPLe": 1480.0,
        "DER": 1204.1,
        "DrQ(eps)": 1218.1,
        "SPR": 1313.2,
    },
    # not in the 26-game Atari 100k set, shipped as env options here: random/human only
    "SpaceInvaders": {"random": 148.0, "human": 1668.7},
    "BeamRider": {"random": 363.9, "human": 16926.5},
}
PAPERS = ("SimPLe", "DER", "DrQ(eps)", "SPR")
# the games a run can name as env=<Game> (an env option with its tuned drq file); MsPacman has anchors only
GAMES = sorted(game for game in ANCHORS if (ROOT / "configs" / "env" / f"{game}.yaml").exists())
ARMS = ("drq", "drq_bf16", "drq_dae")
ARM_OVERRIDES = {"drq_bf16": ["amp=true"]}  # an arm = the preset + these train.py overrides
CHECKPOINT_EVERY = 10_000
CURVE_POINTS = 21  # learning-curve grid: every 5,000 steps
LAST_GAMES = 20  # the per-run table's "last training games" column: what the policy did as training ended


def decay_fraction(steps: int) -> str:
    """agent.exploration_fraction that decays ε over the protocol's 5,000 steps in a run of ``steps``."""
    return f"{min(1.0, EPSILON_DECAY_STEPS / steps):.6f}"


def human_normalised(score: float, game: str) -> float:
    anchor = ANCHORS[game]
    random, human = anchor["random"], anchor["human"]
    assert random is not None and human is not None
    return (score - random) / (human - random)


# ----------------------------------------------------------------------------------------------- the runs


def rl_command(game: str, seed: int, run_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "agent=drq",
        f"env={game}",
        f"seed={seed}",
        "device=cpu",
        "threads=1",
        "logger=csv",
        "logger.progress=false",
        *extra,
        f"run_dir={run_dir}",
    ]


def dae_command(game: str, seed: int, run_dir: Path, frames: int, epochs: int) -> list[str]:
    """A denoising autoencoder on random-policy frames of the game (the NatureCNN encoder of the preset)."""
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "agent=autoencoder",
        f"env={game}",
        "net=nature_cnn",
        f"seed={seed}",
        f"agent.frames={frames}",
        f"agent.epochs={epochs}",
        "agent.noise=masking",
        "agent.mask_prob=0.25",
        "device=cpu",
        "threads=1",
        "logger=csv",
        "logger.progress=false",
        f"run_dir={run_dir}",
    ]


def _run(cmd: list[str], run_dir: Path, env: dict[str, str], resumable: bool = False) -> None:
    """Train ``cmd`` into ``run_dir``: from its last checkpoint when ``resumable`` and one exists, else from
    scratch (an unfinished folder without a checkpoint, and held by no live run, is removed first)."""
    last = run_dir / "checkpoints" / "last.pt"
    if resumable and last.exists():
        step = checkpoint_step(last)
        resume = [cmd[0], cmd[1], f"resume={run_dir}", "logger.progress=false"]
        done = subprocess.run(
            ["nice", "-n", "10", *resume], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:  # the folder is kept: it holds up to 100k steps of training
            raise RuntimeError(
                f"{' '.join(resume[1:])} failed (the run stopped at step {step}); remove {run_dir} to train "
                f"it again from scratch:\n{done.stderr[-3000:]}"
            )
        marks = run_dir / "resumed_at.json"
        earlier = json.loads(marks.read_text()) if marks.exists() else []
        marks.write_text(json.dumps([*earlier, step]))
        return
    if run_dir.exists():
        with hold_run_dir(run_dir):  # refuses if a live train.py holds it (another benchmark's run)
            pass
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["nice", "-n", "10", *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{done.stderr[-3000:]}")


def checkpoint_step(last: Path) -> int:
    import torch

    return int(torch.load(last, map_location="cpu", weights_only=True)["counters"]["env_steps"])


def checkpointing(every: int) -> list[str]:
    """The overrides with which an RL run checkpoints with its replay, so a killed benchmark resumes it
    (bookkeeping: left out of the shown command)."""
    return ["checkpoint.replay=true", f"checkpoint_every={every}"]


def shown(cmd: Sequence[str]) -> str:
    hidden = ("run_dir=", *(key.split("=")[0] + "=" for key in checkpointing(0)))
    return "python train.py " + " ".join(a for a in cmd[2:] if not a.startswith(hidden))


def run_one(arm: str, game: str, seed: int, out: Path, args: argparse.Namespace, commit: str) -> dict:
    """Train (unless finished) and read one run; returns its record."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    run_dir = out / arm / game / f"seed{seed}"
    extra: list[str] = [*ARM_OVERRIDES.get(arm, []), *args.extra]
    pretrain: dict[str, Any] | None = None
    if arm == "drq_dae":
        dae_dir = out / "dae" / game / f"seed{seed}"
        dae_cmd = dae_command(game, seed, dae_dir, args.dae_frames, args.dae_epochs)
        if not (dae_dir / "summary.json").exists():
            _run(dae_cmd, dae_dir, env)
        dae_summary = json.loads((dae_dir / "summary.json").read_text())
        used = int(dae_summary.get("collect_env_steps") or args.dae_frames)
        steps = args.steps - used
        extra += [
            f"net.pretrained={dae_dir}",
            f"total_steps={steps}",
            f"agent.exploration_fraction={decay_fraction(steps)}",
        ]
        pretrain = {"command": shown(dae_cmd), "env_steps": used, "wall_s": dae_summary.get("wall_time_s")}
    elif args.steps != BUDGET:
        extra += [
            f"total_steps={args.steps}",
            f"agent.exploration_fraction={decay_fraction(args.steps)}",
        ]
    cmd = rl_command(game, seed, run_dir, [*extra, *checkpointing(args.checkpoint_every)])
    if not (run_dir / "summary.json").exists():
        _run(cmd, run_dir, env, resumable=True)
        mark_commit(run_dir, commit)
    return read_run(arm, game, seed, run_dir, shown(cmd), pretrain)


def git_commit() -> str:
    """HEAD's short hash, ``+changes`` when tracked files differ from it ("unknown" outside a git checkout)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, capture_output=True).returncode
    return head.stdout.strip() + ("+changes" if dirty else "")


def mark_commit(run_dir: Path, commit: str) -> None:
    """Append the commit that trained (or resumed) the run to its ``commits.json``: the table says which code
    each score comes from, also once the score is all that is left of the run (:func:`recorded_runs`)."""
    marks = run_dir / "commits.json"
    earlier = json.loads(marks.read_text()) if marks.exists() else []
    marks.write_text(json.dumps([*earlier, commit]))


def read_run(
    arm: str, game: str, seed: int, run_dir: Path, command: str, pretrain: dict | None = None
) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    curve: list[tuple[int, float]] = []
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        with open(metrics, newline="") as handle:
            for row in csv.DictReader(handle):
                value = row.get("rollout/episode_return")
                if value:
                    curve.append((int(row["step"]), float(value)))
    offset = pretrain["env_steps"] if pretrain else 0  # the DAE arm's env steps start after its pretraining
    marks = run_dir / "resumed_at.json"
    commits = run_dir / "commits.json"
    wall, train_wall = summary.get("wall_time_s"), summary.get("train_time_s")
    last = [value for _, value in curve[-LAST_GAMES:]]
    return {
        "arm": arm,
        "game": game,
        "seed": seed,
        "score": float(summary["eval_mean_return"]),
        "score_std": summary.get("eval_std_return"),
        "eval_episodes": summary.get("eval_episodes"),
        "train_sps": summary.get("train_sps"),
        "wall_s": wall,
        "train_cpu_s": summary.get("train_cpu_s"),
        # wall time outside the training loop: the final evaluation (and any periodic ones; the preset has none)
        "eval_wall_s": round(wall - train_wall, 1) if wall is not None and train_wall is not None else None,
        "last_train_games": statistics.fmean(last) if last else None,
        "command": command,
        "pretrain": pretrain,
        "resumed_at": json.loads(marks.read_text()) if marks.exists() else [],
        "commits": json.loads(commits.read_text()) if commits.exists() else [],
        "curve": [[step + offset, value] for step, value in curve],
    }


def recorded_runs(results_json: Path) -> list[dict]:
    """The runs an earlier report recorded (score, command, commits, curve). A run's folder holds checkpoints
    with its replay (0.7 GB) and may be gone, on another machine or a fresh checkout; its record in the results
    JSON is kept, so seeds trained at different times add up to one table."""
    if not results_json.exists():
        return []
    payload = json.loads(results_json.read_text())
    steps = payload.get("steps", BUDGET)
    unknown = dict.fromkeys(("score_std", "train_cpu_s", "eval_wall_s", "last_train_games"))
    return [{"steps": steps, "commits": [], "curve": [], **unknown, **run} for run in payload.get("runs", [])]


def merge_recorded(records: list[dict], recorded: list[dict], steps: int) -> tuple[list[dict], list[dict]]:
    """``records`` plus the recorded runs of other (arm, game, seed)s with the same budget (a short smoke run
    never joins a 100k table), sorted; and the ones kept."""
    present = {(r["arm"], r["game"], r["seed"]) for r in records}
    kept = [r for r in recorded if (r["arm"], r["game"], r["seed"]) not in present and r["steps"] == steps]
    merged = sorted(
        [*records, *kept],
        key=lambda r: (ARMS.index(r["arm"]) if r["arm"] in ARMS else 99, r["game"], r["seed"]),
    )
    return merged, kept


# ----------------------------------------------------------------------------------------------- the report


def per_game_table(records: list[dict]) -> list[dict]:
    rows = []
    for arm in sorted({r["arm"] for r in records}, key=lambda a: ARMS.index(a) if a in ARMS else 99):
        for game in sorted({r["game"] for r in records if r["arm"] == arm}):
            scores = [r["score"] for r in records if r["arm"] == arm and r["game"] == game]
            mean = statistics.fmean(scores)
            std = statistics.pstdev(scores) if len(scores) > 1 else 0.0
            hns = [human_normalised(s, game) for s in scores]
            rows.append(
                {
                    "arm": arm,
                    "game": game,
                    "seeds": len(scores),
                    "mean": mean,
                    "std": std,
                    "min": min(scores),
                    "hns_mean": statistics.fmean(hns),
                    "hns_std": statistics.pstdev(hns) if len(hns) > 1 else 0.0,
                    "anchors": ANCHORS[game],
                }
            )
    return rows


def across_games(records: list[dict], reps: int) -> dict[str, dict | None]:
    """Per arm: IQM and mean human-normalised score over the (runs x games) matrix with stratified-bootstrap
    CIs. Each game keeps its first ``min runs`` seeds so the matrix is rectangular."""
    out: dict[str, dict | None] = {}
    for arm in sorted({r["arm"] for r in records}):
        games = sorted({r["game"] for r in records if r["arm"] == arm})
        columns = [
            [
                human_normalised(r["score"], g)
                for r in sorted(records, key=lambda r: r["seed"])
                if r["arm"] == arm and r["game"] == g
            ]
            for g in games
        ]
        runs = min(len(c) for c in columns)
        matrix = np.array([c[:runs] for c in columns]).T  # (runs, games)
        result = aggregate_across_tasks(matrix, reps=reps)
        out[arm] = None if result is None else {**result, "games": games}
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def per_run_markdown(records: list[dict]) -> str:
    """One row per run: the table README.md and docs/atari100k.md show, so they are pasted, not retyped. Every
    record has these keys (an older recorded run gets None from :func:`recorded_runs`)."""
    lines = [
        "| arm | game | seed | final score, mean ± std (games) | last "
        f"{LAST_GAMES} training games | training, CPU time | final evaluation, wall time | commits |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in records:
        spread = "" if r["score_std"] is None else f" ± {r['score_std']:.2f}"
        games = f" ({r['eval_episodes']})" if r.get("eval_episodes") else ""
        lines.append(
            f"| {r['arm']} | {r['game']} | {r['seed']} | {r['score']:.2f}{spread}{games} | "
            f"{fmt(r['last_train_games'], 2)} | {minutes(r['train_cpu_s'])} | "
            f"{minutes(r['eval_wall_s'])} | {', '.join(r['commits']) or '–'} |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict], aggregate: dict[str, dict | None]) -> str:
    lines = [
        "| arm | game | seeds | score (mean ± std) | min seed | HNS (mean ± std) | random | human | "
        + " | ".join(PAPERS)
        + " |",
        "| --- " * (8 + len(PAPERS)) + "|",
    ]
    for row in rows:
        anchor = row["anchors"]
        lines.append(
            f"| {row['arm']} | {row['game']} | {row['seeds']} | {row['mean']:.1f} ± {row['std']:.1f} | "
            f"{row['min']:.1f} | {row['hns_mean']:.3f} ± {row['hns_std']:.3f} | {fmt(anchor['random'])} | "
            f"{fmt(anchor['human'])} | " + " | ".join(fmt(anchor.get(p)) for p in PAPERS) + " |"
        )
    lines += [
        "",
        "| arm | games | runs per game | IQM HNS [95% CI] | mean HNS [95% CI] |",
        "| --- | --- | --- | --- | --- |",
    ]
    for arm, result in aggregate.items():
        if result is None:
            lines.append(f"| {arm} | – | – | needs >= 3 seeds per game and rliable | – |")
            continue
        iqm, mean = result["iqm_ci"], result["mean_ci"]
        lines.append(
            f"| {arm} | {', '.join(result['games'])} | {result['runs']} | {result['iqm']:.3f} [{iqm[0]:.3f}, "
            f"{iqm[1]:.3f}] | {result['mean']:.3f} [{mean[0]:.3f}, {mean[1]:.3f}] |"
        )
    return "\n".join(lines)


def learning_curves(records: list[dict], out_png: Path, budget: int = BUDGET) -> bool:
    """Human-normalised training-episode return (the last 10 episodes' mean at each grid step), mean across
    every run of an arm (all games), with the spread across runs; one line per arm."""
    from rlcore.training.plots import subplots

    grid = np.linspace(0, budget, CURVE_POINTS)
    fig, axes = subplots(1, 1, figsize=(7, 4.5), squeeze=False)
    ax = axes[0][0]
    drawn = False
    for i, arm in enumerate(sorted({r["arm"] for r in records})):
        lines = []
        for r in records:
            if r["arm"] != arm or not r["curve"]:
                continue
            steps = np.array([s for s, _ in r["curve"]], dtype=float)
            hns = np.array([human_normalised(v, r["game"]) for _, v in r["curve"]])
            line = np.full(len(grid), np.nan)
            for j, x in enumerate(grid):
                seen = hns[steps <= x]
                if seen.size:
                    line[j] = seen[-10:].mean()
            lines.append(line)
        if not lines:
            continue
        stack = np.array(lines)
        with warnings.catch_warnings():  # grid points before any run's first episode are all NaN: left blank
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(stack, axis=0)
            low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        ax.plot(grid, mean, color=f"C{i}", label=f"{arm} ({len(lines)} runs)")
        ax.fill_between(grid, low, high, color=f"C{i}", alpha=0.15)
        drawn = True
    if not drawn:
        return False
    ax.set_xlabel("env steps")
    ax.set_ylabel("human-normalised training return (last 10 episodes)")
    ax.set_title("Atari 100k, agent=drq: training curves, mean and min-max across runs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(out_png, dpi=110, bbox_inches="tight")
    return True


def report(records: list[dict], results: Path, reps: int, meta: dict) -> dict:
    rows = per_game_table(records)
    aggregate = across_games(records, reps)
    table = markdown(rows, aggregate)
    print(per_run_markdown(records) + "\n")
    print(table)
    results.mkdir(parents=True, exist_ok=True)
    png = results / "atari100k.png"
    drawn = learning_curves(records, png)
    payload = {
        **meta,
        "per_game": rows,
        "across_games": aggregate,
        "runs": records,
        "learning_curves_png": (str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png))
        if drawn
        else None,
        "anchor_sources": "docs/atari100k.md",
    }
    (results / "atari100k.json").write_text(json.dumps(payload, indent=2, allow_nan=False))
    print(f"wrote {results / 'atari100k.json'}" + (f" and {png}" if drawn else ""))
    return payload


def finished(
    out: Path, arms: Sequence[str], games: Sequence[str], seeds: Sequence[int], extra: Sequence[str] = ()
) -> list[dict]:
    """The finished runs (``--report-only``), each with the command this benchmark runs for it (the DAE arm's
    pretraining is not repeated here, so its command is not known)."""
    records = []
    for arm in arms:
        for game in games:
            for seed in seeds:
                run_dir = out / arm / game / f"seed{seed}"
                if (run_dir / "summary.json").exists():
                    command = (
                        "(read from an earlier run)"
                        if arm == "drq_dae"
                        else shown(rl_command(game, seed, run_dir, [*ARM_OVERRIDES.get(arm, []), *extra]))
                    )
                    records.append(read_run(arm, game, seed, run_dir, command))
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", nargs="+", default=["Breakout"], choices=GAMES)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--arms", nargs="+", default=["drq"], choices=ARMS)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time (one thread each)"
    )
    parser.add_argument("--steps", type=int, default=BUDGET, help="env steps per run (the protocol: 100000)")
    parser.add_argument(
        "--dae-frames", type=int, default=10_000, help="drq_dae: random-policy frames, from the budget"
    )
    parser.add_argument("--dae-epochs", type=int, default=10)
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_EVERY,
        help="env steps between an RL run's checkpoints (with its replay), from which a killed run resumes",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "atari100k")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--report-only", action="store_true", help="no training: report the finished runs")
    parser.add_argument(
        "--forget-recorded",
        action="store_true",
        help="report only this call's runs: leave out the runs recorded in --results' atari100k.json whose "
        "folders are not read this time (kept by default: a table can gather seeds trained at different times)",
    )
    parser.add_argument("extra", nargs="*", help="more train.py overrides for every RL run (key=value)")
    args = parser.parse_args(argv)
    if args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every must be >= 0 (got {args.checkpoint_every}; 0 = only at the end)")
    slow_bf16 = slow_bf16_reason() if "drq_bf16" in args.arms and not args.report_only else None
    if slow_bf16 is not None:
        parser.error(f"--arms drq_bf16 is the bf16 learning check for CPUs where bf16 is fast; {slow_bf16}")
    if "drq_dae" in args.arms and args.dae_frames >= args.steps:
        parser.error("--dae-frames must be smaller than --steps (the frames count against the budget)")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    start = time.perf_counter()
    if args.report_only:
        records = finished(args.out, args.arms, args.games, seeds, args.extra)
    else:
        commit = git_commit()
        jobs = [(arm, game, seed) for seed in seeds for game in args.games for arm in args.arms]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [
                pool.submit(run_one, arm, game, seed, args.out, args, commit) for arm, game, seed in jobs
            ]
            records = [f.result() for f in futures]
    records = [{**r, "steps": args.steps} for r in records]
    if not args.forget_recorded:
        recorded = args.results / "atari100k.json"
        records, kept = merge_recorded(records, recorded_runs(recorded), args.steps)
        if kept:
            names = ", ".join(f"{r['arm']} {r['game']} seed {r['seed']}" for r in kept)
            print(f"kept {len(kept)} run(s) recorded in {recorded} (their folders are not read): {names}")
    if not records:
        print(f"no finished runs under {args.out}")
        return 1
    meta = {
        "protocol": "Atari 100k (agent=drq, env.eval_protocol=atari100k), docs/atari100k.md",
        "steps": args.steps,
        "games": sorted({r["game"] for r in records}),
        "seeds": sorted({r["seed"] for r in records}),
        "arms": [arm for arm in ARMS if any(r["arm"] == arm for r in records)],
        "dae_frames": args.dae_frames if "drq_dae" in args.arms else None,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    report(records, args.results, args.reps, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
