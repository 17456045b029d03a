"""Our DQN vs Stable-Baselines3's DQN on CartPole-v1, same settings (RL Zoo's), several seeds, one run.

    python benchmarks/cartpole_vs_sb3.py                 # 5 seeds x 50,000 steps each (~10 minutes on 2 cores)
    python benchmarks/cartpole_vs_sb3.py --seeds 1 --steps 20000
    python benchmarks/cartpole_vs_sb3.py --threads 1 --jobs 4   # 4 runs at a time (busy machine: compare CPU SPS)
    python benchmarks/cartpole_vs_sb3.py --first-seed 5          # seeds 5-9
    python benchmarks/cartpole_vs_sb3.py --threads 1 --ours overlap=true   # extra train.py overrides for ours

Prints per seed: final 20-episode eval return, the env step at which the periodic 10-episode eval first
reaches 475, training SPS (evaluation time excluded), wall time, and the ours/SB3 SPS ratio; writes JSON to
benchmarks/results/cartpole_vs_sb3.json. Each run is its own subprocess, so they do not share state.
Beside wall-clock SPS it prints CPU-time SPS (env steps per CPU second of the training loop, evaluations
excluded): on a machine shared with other jobs the wall clock also counts the time slices they take, so the
CPU-time ratio is the steadier comparison there.

Ours runs with the tuned defaults of configs/tuned/dqn_CartPole.yaml (``python train.py`` as is); SB3 with
RL Zoo's CartPole settings unchanged (``ZOO`` below). docs/performance.md lists where the two differ.
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
ZOO = dict(  # RL Baselines3 Zoo, hyperparams/dqn.yml, CartPole-v1
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
)
EVAL_EVERY, EVAL_EPISODES, FINAL_EPISODES, THRESHOLD = 5_000, 10, 20, 475.0


def run_ours(seed: int, steps: int, threads: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [
            sys.executable,
            str(ROOT / "train.py"),
            f"seed={seed}",
            f"total_steps={steps}",
            f"run_dir={run_dir}",
            f"eval_every={EVAL_EVERY}",
            f"eval_episodes={EVAL_EPISODES}",
            f"final_eval_episodes={FINAL_EPISODES}",
            "logger=none",
            "device=cpu",
            f"threads={threads}",
            *extra,
        ]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        if (
            done.returncode != 0
        ):  # e.g. a bad --ours override: train.py's one-line error, not a traceback here
            raise SystemExit(
                f"train.py failed (exit {done.returncode}): {' '.join(cmd[2:])}\n{done.stderr[-2000:].strip()}"
            )
        wall = time.perf_counter() - start
        summary = json.loads((run_dir / "summary.json").read_text())
        first = None
        import csv

        with open(run_dir / "metrics.csv") as handle:
            for row in csv.DictReader(handle):
                if row["eval/mean_return"] and float(row["eval/mean_return"]) >= THRESHOLD:
                    first = int(row["step"])
                    break
    return {
        "final_eval": summary["eval_mean_return"],
        "first_475": first,
        "train_sps": summary["train_sps"],
        "cpu_sps": round(summary["total_steps"] / summary["train_cpu_s"], 1),
        "wall_s": round(wall, 1),
    }


def sb3_worker(seed: int, steps: int, threads: int) -> dict:
    """One SB3 run (called in a subprocess): periodic eval time is measured and excluded from the SPS."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    if threads:
        torch.set_num_threads(threads)

    class PeriodicEval(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_env = gym.make("CartPole-v1")
            self.eval_env.reset(seed=seed + 10_000)
            self.eval_time, self.eval_cpu, self.first = 0.0, 0.0, None

        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY == 0:
                t, cpu = time.perf_counter(), time.process_time()
                mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=EVAL_EPISODES)
                self.eval_time += time.perf_counter() - t
                self.eval_cpu += time.process_time() - cpu
                if self.first is None and mean >= THRESHOLD:
                    self.first = self.num_timesteps
            return True

    start = time.perf_counter()
    model = DQN(
        "MlpPolicy", "CartPole-v1", seed=seed, device="cpu", policy_kwargs=dict(net_arch=[256, 256]), **ZOO
    )
    callback = PeriodicEval()
    learn_start, cpu_start = time.perf_counter(), time.process_time()  # like ours: the loop, not the set-up
    model.learn(total_timesteps=steps, callback=callback)
    train_time = time.perf_counter() - learn_start - callback.eval_time
    train_cpu = time.process_time() - cpu_start - callback.eval_cpu
    final, _ = evaluate_policy(model, callback.eval_env, n_eval_episodes=FINAL_EPISODES)
    return {
        "final_eval": float(np.round(final, 2)),
        "first_475": callback.first,
        "train_sps": round(steps / train_time, 1),
        "cpu_sps": round(steps / train_cpu, 1),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def run_sb3(seed: int, steps: int, threads: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--sb3-worker",
            str(seed),
            "--steps",
            str(steps),
            "--threads",
            str(threads),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument(
        "--ours",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra train.py overrides for our runs (e.g. overlap=true); SB3 runs unchanged",
    )
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both (0 = torch default)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at a time (2: ours and SB3 of a seed side by side; for a busy shared machine)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cartpole_vs_sb3.json"))
    parser.add_argument("--sb3-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_worker is not None:
        print(json.dumps(sb3_worker(args.sb3_worker, args.steps, args.threads)))
        return
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.ours:  # a typo in an override fails here with Hydra's message, before any run starts
        check = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "--cfg", "job", *args.ours],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise SystemExit(f"--ours {' '.join(args.ours)}: {check.stderr.strip()}")
    rows = []
    # ours and SB3 of a seed run one after the other (--jobs 1) or side by side, so load drifts hit both alike
    pool = ThreadPoolExecutor(args.jobs)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    futures = [
        (
            pool.submit(run_ours, seed, args.steps, args.threads, args.ours),
            pool.submit(run_sb3, seed, args.steps, args.threads),
        )
        for seed in seeds
    ]
    for seed, (ours_future, sb3_future) in zip(seeds, futures, strict=True):
        ours, sb3 = ours_future.result(), sb3_future.result()
        rows.append(
            {
                "seed": seed,
                "ours": ours,
                "sb3": sb3,
                "sps_ratio": round(ours["train_sps"] / sb3["train_sps"], 2),
                "cpu_sps_ratio": round(ours["cpu_sps"] / sb3["cpu_sps"], 2),
            }
        )
        print(f"seed {seed}: ours {ours} | sb3 {sb3}", flush=True)
    pool.shutdown()
    header = (
        f"{'seed':>4} | {'ours eval':>9} {'ours 475@':>9} {'ours SPS':>9} {'CPU SPS':>8} {'ours s':>7} | "
        f"{'SB3 eval':>9} {'SB3 475@':>9} {'SB3 SPS':>8} {'CPU SPS':>8} {'SB3 s':>6} | {'SPS ratio':>9} {'CPU ratio':>9}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        o, s = r["ours"], r["sb3"]
        print(
            f"{r['seed']:>4} | {o['final_eval']:>9.1f} {o['first_475'] or '-':>9} {o['train_sps']:>9.0f} {o['cpu_sps']:>8.0f} "
            f"{o['wall_s']:>7.1f} | {s['final_eval']:>9.1f} {s['first_475'] or '-':>9} {s['train_sps']:>8.0f} "
            f"{s['cpu_sps']:>8.0f} {s['wall_s']:>6.1f} | {r['sps_ratio']:>9.2f} {r['cpu_sps_ratio']:>9.2f}"
        )
    summary = {
        "seeds_solved_ours": sum(r["ours"]["final_eval"] >= 500 for r in rows),
        "seeds_solved_sb3": sum(r["sb3"]["final_eval"] >= 500 for r in rows),
        "median_sps_ours": statistics.median(r["ours"]["train_sps"] for r in rows),
        "median_sps_sb3": statistics.median(r["sb3"]["train_sps"] for r in rows),
        "median_sps_ratio": statistics.median(r["sps_ratio"] for r in rows),
        "median_cpu_sps_ratio": statistics.median(r["cpu_sps_ratio"] for r in rows),
    }
    print(
        f"\nsolved (20-episode eval = 500): ours {summary['seeds_solved_ours']}/{len(rows)}, SB3 {summary['seeds_solved_sb3']}/{len(rows)}; "
        f"median SPS ours {summary['median_sps_ours']:.0f}, SB3 {summary['median_sps_sb3']:.0f}, ratio {summary['median_sps_ratio']:.2f}; "
        f"median CPU-time SPS ratio {summary['median_cpu_sps_ratio']:.2f}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "settings": {
                    **ZOO,
                    "net": [256, 256],
                    "steps": args.steps,
                    "eval_every": EVAL_EVERY,
                    "threads": args.threads,
                    "jobs": args.jobs,
                    "ours_overrides": args.ours,
                },
                "rows": rows,
                "summary": summary,
            },
            indent=2,
        )
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
