"""What each DQN switch buys: vanilla / double / dueling / 3-step / PER / rainbow_lite on CartPole and Acrobot.

    python benchmarks/dqn_ablation.py                    # 5 seeds x 6 variants x 2 envs, 2 runs at a time
    python benchmarks/dqn_ablation.py --quick            # smoke test: 1 seed, a few thousand steps (~2 min)
    python benchmarks/dqn_ablation.py --envs CartPole --variants vanilla rainbow_lite --seeds 3

Every run is ``train.py`` in its own subprocess with the env's tuned settings (configs/tuned/: RL Baselines3
Zoo's, and CartPole's 3-step returns turned back to 1 step, ``agent.n_step=1``) and one switch changed: ``agent.double=true``, ``agent.dueling=true``, ``agent.n_step=3``,
``agent.prioritized=true`` (Schaul et al.'s α = 0.6, β 0.4 → 1), or ``agent=rainbow_lite`` (all four,
α = 0.5). CartPole-v1 runs the Zoo's 50,000 steps (threshold 475); Acrobot-v1 runs 30,000 steps instead
of the Zoo's 100,000 (threshold -100) so the whole ablation fits in about 45 minutes on 2 idle cores
(``--acrobot-steps 100000`` for the Zoo budget; ε still decays over the first 12 % of the run).

Per env and variant: the final 20-episode greedy evaluation, mean ± std across seeds; how many seeds end
at or above the threshold; the median env step at which the periodic 10-episode evaluation (every 5,000
steps; 1,000 with --quick) first reaches it, over the seeds that reach it; median training SPS. JSON
(every run's command and numbers) goes to benchmarks/results/dqn_ablation.json.
"""

from __future__ import annotations

import argparse
import csv
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
# CartPole's tuning has 3-step returns (configs/tuned/dqn_CartPole.yaml): the variants but n-step turn them off
ONE_STEP = "agent.n_step=1"
VARIANTS = {
    "vanilla": [ONE_STEP],
    "double": [ONE_STEP, "agent.double=true"],
    "dueling": [ONE_STEP, "agent.dueling=true"],
    "nstep3": ["agent.n_step=3"],
    "per": [ONE_STEP, "agent.prioritized=true"],
    "rainbow_lite": ["agent=rainbow_lite"],
}
ENVS = {  # env option -> (threshold, total steps)
    "CartPole": (475.0, 50_000),
    "Acrobot": (-100.0, 30_000),
}
EVAL_EPISODES, FINAL_EPISODES = 10, 20


def command(env: str, variant: str, seed: int, steps: int, eval_every: int, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        f"env={env}",
        *VARIANTS[variant],
        f"seed={seed}",
        f"total_steps={steps}",
        f"eval_every={eval_every}",
        f"eval_episodes={EVAL_EPISODES}",
        f"final_eval_episodes={FINAL_EPISODES}",
        "logger=none",
        "device=cpu",
        "threads=1",
        f"run_dir={run_dir}",
    ]


def run_one(env: str, variant: str, seed: int, steps: int, eval_every: int) -> dict:
    threshold = ENVS[env][0]
    with tempfile.TemporaryDirectory(prefix="rlcore-ablation-") as tmp:
        run_dir = Path(tmp) / "run"
        cmd = command(env, variant, seed, steps, eval_every, run_dir)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{done.stderr[-3000:]}")
        summary = json.loads((run_dir / "summary.json").read_text())
        first = None
        with open(run_dir / "metrics.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                value = row["eval/mean_return"]
                periodic = bool(row["rollout/epsilon"])  # the final evaluation's row logs no epsilon
                if value and periodic and float(value) >= threshold:
                    first = int(row["step"])
                    break
    shown = " ".join(a for a in cmd[2:] if not a.startswith("run_dir="))
    return {
        "env": env,
        "variant": variant,
        "seed": seed,
        "final_eval": summary["eval_mean_return"],
        "first_step_at_threshold": first,
        "train_sps": summary["train_sps"],
        "wall_s": round(time.perf_counter() - start, 1),
        "command": f"python train.py {shown}",
    }


def summarize(rows: list[dict], threshold: float) -> dict:
    finals = [r["final_eval"] for r in rows]
    firsts = [r["first_step_at_threshold"] for r in rows if r["first_step_at_threshold"] is not None]
    return {
        "seeds": len(rows),
        "final_mean": round(statistics.fmean(finals), 1),
        "final_std": round(statistics.pstdev(finals), 1),
        "seeds_final_at_threshold": sum(f >= threshold for f in finals),
        "seeds_eval_reached_threshold": len(firsts),
        "median_first_step_at_threshold": statistics.median(firsts) if firsts else None,
        "median_train_sps": round(statistics.median(r["train_sps"] for r in rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument("--cartpole-steps", type=int, default=ENVS["CartPole"][1])
    parser.add_argument("--acrobot-steps", type=int, default=ENVS["Acrobot"][1])
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, 3,000 (CartPole) / 2,000 (Acrobot) steps"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dqn_ablation.json"))
    args = parser.parse_args()
    steps = {"CartPole": args.cartpole_steps, "Acrobot": args.acrobot_steps}
    if args.quick:
        args.seeds, args.eval_every = 1, 1_000
        steps = {"CartPole": 3_000, "Acrobot": 2_000}
    os.environ.setdefault("WANDB_MODE", "disabled")
    # seed-major order: a drift in machine load hits every variant alike
    tasks = [
        (env, variant, seed) for env in args.envs for seed in range(args.seeds) for variant in args.variants
    ]
    start = time.perf_counter()
    rows = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(run_one, env, variant, seed, steps[env], args.eval_every)
            for env, variant, seed in tasks
        ]
        for future in futures:
            rows.append(future.result())
            r = rows[-1]
            print(
                f"{r['env']:<8} {r['variant']:<12} seed {r['seed']}: final {r['final_eval']:8.1f}  "
                f"first at threshold {r['first_step_at_threshold'] or '-'}  SPS {r['train_sps']:.0f}  {r['wall_s']:.0f} s",
                flush=True,
            )
    table = {}
    for env in args.envs:
        threshold = ENVS[env][0]
        print(f"\n{env} ({steps[env]:,} steps, {args.seeds} seed(s), threshold {threshold:g})")
        header = (
            f"{'variant':<13} {'final eval mean ± std':>22} {'final ≥ thr':>11} {'eval reached':>12} "
            f"{'median first step':>17} {'SPS':>5}"
        )
        print(header + "\n" + "-" * len(header))
        for variant in args.variants:
            s = summarize([r for r in rows if r["env"] == env and r["variant"] == variant], threshold)
            table.setdefault(env, {})[variant] = s
            first = s["median_first_step_at_threshold"]
            print(
                f"{variant:<13} {s['final_mean']:>13.1f} ± {s['final_std']:<6.1f} "
                f"{s['seeds_final_at_threshold']:>5}/{s['seeds']:<5} {s['seeds_eval_reached_threshold']:>6}/{s['seeds']:<5} "
                f"{first if first is not None else '-':>17} {s['median_train_sps']:>5}"
            )
    wall = time.perf_counter() - start
    print(f"\nwall time {wall / 60:.1f} min with {args.jobs} job(s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "settings": {
                    "steps": steps,
                    "seeds": args.seeds,
                    "jobs": args.jobs,
                    "eval_every": args.eval_every,
                    "eval_episodes": EVAL_EPISODES,
                    "final_eval_episodes": FINAL_EPISODES,
                    "thresholds": {e: ENVS[e][0] for e in args.envs},
                    "variants": {v: VARIANTS[v] for v in args.variants},
                    "quick": args.quick,
                },
                "summary": table,
                "runs": rows,
                "wall_s": round(wall, 1),
                "command": "python benchmarks/dqn_ablation.py " + " ".join(sys.argv[1:]),
            },
            indent=2,
        )
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
