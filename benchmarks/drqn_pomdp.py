"""DRQN vs feed-forward DQN on CartPole without velocities (rlcore/CartPoleNoVel-v0), several seeds.

    python benchmarks/drqn_pomdp.py --jobs 2              # 5 seeds x (mlp, lstm) at the tuned settings
    python benchmarks/drqn_pomdp.py --nets mlp lstm gru   # add DRQN with a GRU
    python benchmarks/drqn_pomdp.py --quick               # 1 seed, 3,000 steps: checks the script, not the agents
    python benchmarks/drqn_pomdp.py --nets rnn jordan conv1d --seeds 2 --steps 40000 --jobs 2 \
        --out benchmarks/results/drqn_pomdp_classic.json  # Elman vs Jordan vs a temporal conv (docs/classic_models.md)
    python benchmarks/drqn_pomdp.py --agent rainbow_lite --nets lstm --out benchmarks/results/drqn_pomdp_rainbow.json

Every run is ``train.py env=CartPoleNoVel net=<net> seed=<seed>`` with the tuned settings of
configs/tuned/dqn_CartPoleNoVel.yaml and configs/tuned_net/CartPoleNoVel_<net>.yaml (the feed-forward ``mlp``
gets no frame stacking: one observation is x and θ only; ``conv1d``, the feed-forward alternative to DRQN,
gets the last 4 observations through ``env.frame_stack=4`` in its tuned_net file). Prints per net: final 20-episode greedy eval
mean ± std over seeds, the number of seeds whose final eval is >= 475, env steps, training SPS and wall
time per run; writes every run and the summary to benchmarks/results/drqn_pomdp.json. Each run is its own
subprocess; ``--jobs`` runs that many at once (give each a core: runs use one torch thread).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD, FINAL_EPISODES = 475.0, 20
# best.pt (the policy of the best periodic evaluation, what `evaluate.py run=<dir>` loads, as RL Zoo's
# EvalCallback best_model) is re-evaluated on fresh episodes: its own periodic score was a maximum over
# noisy 10-episode draws, so only episodes it was not selected on say how good it is.
BEST_EPISODES, BEST_SEED_OFFSET = 50, 20_000


def command(
    net: str, seed: int, run_dir: Path, steps: int | None, agent: str = "dqn", extra: tuple[str, ...] = ()
) -> list[str]:
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        *([f"agent={agent}"] if agent != "dqn" else []),
        "env=CartPoleNoVel",
        f"net={net}",
        f"seed={seed}",
        f"run_dir={run_dir}",
        f"final_eval_episodes={FINAL_EPISODES}",
        "logger=none",
        "device=cpu",
        "threads=1",
    ]
    if steps is not None:
        cmd += [f"total_steps={steps}", f"eval_every={max(steps // 5, 1)}", "agent.learning_starts=500"]
    return cmd + list(extra)


def evaluate_best(run_dir: Path, seed: int) -> dict:
    """Greedy return of the run's best.pt over BEST_EPISODES episodes it was not selected on."""
    cmd = [
        sys.executable,
        str(ROOT / "evaluate.py"),
        f"run={run_dir}",
        "which=best",
        f"episodes={BEST_EPISODES}",
        f"seed={seed + BEST_SEED_OFFSET}",
        "device=cpu",
    ]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    if done.returncode != 0:
        raise SystemExit(f"evaluation failed: {' '.join(cmd[1:])}\n{done.stderr[-3000:]}")
    return json.loads((run_dir / "checkpoints" / "eval.json").read_text())


def run_one(net: str, seed: int, steps: int | None, agent: str = "dqn", extra: tuple[str, ...] = ()) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = command(net, seed, run_dir, steps, agent, extra)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"run failed: {' '.join(cmd[1:])}\n{done.stderr[-3000:]}")
        summary = json.loads((run_dir / "summary.json").read_text())
        best = evaluate_best(run_dir, seed)
    row = {
        "net": net,
        "seed": seed,
        "final_eval": summary["eval_mean_return"],
        "final_std": summary["eval_std_return"],
        "best_eval": summary["best_eval_mean_return"],
        "best_ckpt_eval": best["mean_return"],
        "best_ckpt_std": best["std_return"],
        "steps": summary["total_steps"],
        "train_sps": summary["train_sps"],
        "wall_s": round(wall, 1),
        "command": "python train.py " + " ".join(c for c in cmd[2:] if not c.startswith("run_dir=")),
    }
    print(
        f"{net} seed {seed}: final eval {row['final_eval']:.1f}, best.pt on {BEST_EPISODES} fresh episodes "
        f"{row['best_ckpt_eval']:.1f}, {row['train_sps']:.0f} SPS, {wall:.0f} s",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--nets", nargs="+", default=["mlp", "lstm"])
    parser.add_argument(
        "--agent", default="dqn", help="dqn, or rainbow_lite (DRQN with double, dueling, 3-step, PER)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="override total_steps (default: the tuned value)"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra train.py overrides for every run (tuning screens), e.g. agent.batch_size=128",
    )
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 seed, 3,000 steps: a check of the script")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "drqn_pomdp.json"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps = 1, args.steps or 3000
    os.environ.setdefault("WANDB_MODE", "disabled")
    for (
        net
    ) in args.nets:  # a typo in --set/--agent/--nets fails here with Hydra's message, before any run starts
        cmd = command(net, args.first_seed, Path("unused"), args.steps, args.agent, tuple(args.set))
        check = subprocess.run([*cmd[:2], "--cfg", "job", *cmd[2:]], cwd=ROOT, capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"net={net} {' '.join(args.set)}: {check.stderr.strip()}")
    start = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(net, seed) for seed in seeds for net in args.nets]  # interleaved: load drift hits all
    with ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        rows = list(pool.map(lambda job: run_one(*job, args.steps, args.agent, tuple(args.set)), jobs))
    total_wall = time.perf_counter() - start

    summary = {}
    header = (
        f"{'net':>6} | {'final eval (mean ± std over seeds)':>34} | {'seeds >= 475':>12} | "
        f"{'best.pt, fresh episodes':>23} | {'seeds >= 475':>12} | {'steps':>6} | {'SPS':>5} | {'wall s/run':>10}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for net in args.nets:
        mine = [r for r in rows if r["net"] == net]
        finals = [r["final_eval"] for r in mine]
        bests = [r["best_ckpt_eval"] for r in mine]
        summary[net] = {
            "final_eval_mean": statistics.fmean(finals),
            "final_eval_std": statistics.pstdev(finals),
            "seeds_at_475": sum(f >= THRESHOLD for f in finals),
            "best_ckpt_eval_mean": statistics.fmean(bests),
            "best_ckpt_eval_std": statistics.pstdev(bests),
            "best_ckpt_seeds_at_475": sum(b >= THRESHOLD for b in bests),
            "seeds": len(finals),
            "steps": mine[0]["steps"],
            "median_train_sps": statistics.median(r["train_sps"] for r in mine),
            "median_wall_s": statistics.median(r["wall_s"] for r in mine),
        }
        s = summary[net]
        print(
            f"{net:>6} | {s['final_eval_mean']:>25.1f} ± {s['final_eval_std']:>6.1f} | "
            f"{s['seeds_at_475']:>5}/{s['seeds']:<6} | {s['best_ckpt_eval_mean']:>14.1f} ± {s['best_ckpt_eval_std']:>6.1f} | "
            f"{s['best_ckpt_seeds_at_475']:>5}/{s['seeds']:<6} | {s['steps']:>6} | {s['median_train_sps']:>5.0f} | {s['median_wall_s']:>10.0f}"
        )
    print(f"\ntotal wall time {total_wall:.0f} s with --jobs {args.jobs}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "agent": args.agent,
                "overrides": args.set,
                "threshold": THRESHOLD,
                "final_eval_episodes": FINAL_EPISODES,
                "best_ckpt_episodes": BEST_EPISODES,
                "jobs": args.jobs,
                "total_wall_s": round(total_wall, 1),
                "summary": summary,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
