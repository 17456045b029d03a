"""Training throughput on Breakout: rlcore's DQN against Stable-Baselines3's DQN, same settings.

    python benchmarks/atari_throughput.py                # 20,000 env steps each (about 5 minutes)
    python benchmarks/atari_throughput.py --steps 5000   # a quick trial
    python benchmarks/atari_throughput.py --ablation     # also rlcore with each speed option added in turn,
                                                         # then amp (bf16) and threads=2 beyond the defaults
    python benchmarks/atari_throughput.py --update-cost  # only: ms per NatureCNN update, per option

Both agents: 1 env, DeepMind preprocessing, replay of 100,000 transitions, batch 32, one update every 4
env steps after 1,000 steps of random play, target sync every 1,000 steps, Adam with lr 1e-4, on CPU.
Training SPS is env steps over the time the training loop takes (rlcore: the loop without its
evaluations; SB3: ``model.learn``). Each run is its own subprocess, so its peak resident memory
(``ru_maxrss`` from ``os.wait4``) is its own. Results go to ``benchmarks/results/atari_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "atari_throughput.json"

COMMON = {
    "buffer_size": 100_000,
    "batch_size": 32,
    "train_freq": 4,
    "learning_starts": 1_000,
    "target_update_interval": 1_000,
    "lr": 1e-4,
}

# rlcore runs: label -> overrides on top of `env=Breakout` (whose tuned config has overlap, threads=1,
# channels_last). The ablation adds the speed options one at a time, from none of them.
OURS_DEFAULT = ("rlcore (Atari defaults: channels_last, threads=1, overlap)", [])
ABLATION = [
    (
        "rlcore plain: NCHW, torch threads=2, inline updates",
        ["channels_last=false", "threads=0", "overlap=false"],
    ),
    ("+ channels_last", ["channels_last=true", "threads=0", "overlap=false"]),
    ("+ channels_last, threads=1", ["channels_last=true", "threads=1", "overlap=false"]),
]  # then OURS_DEFAULT: + overlap
# then, with --ablation, bf16 autocast (amp: fp32 master weights; off by default until its learning check on
# the 100k protocol, docs/atari100k.md) and the second core given to the update instead of to overlap
BEYOND_DEFAULT = [
    ("defaults + amp (bf16 autocast)", ["amp=true"]),
    ("defaults, threads=2, inline updates", ["threads=2", "overlap=false"]),
    ("defaults + amp, threads=2, inline updates", ["amp=true", "threads=2", "overlap=false"]),
]


def ours_worker(steps: int, overrides: list[str], out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from hydra import compose, initialize_config_dir

    from rlcore.config import register_configs
    from rlcore.run import run

    register_configs()
    with tempfile.TemporaryDirectory(prefix="rlcore-bench-") as tmp:
        summary = _run_ours(steps, overrides, Path(tmp) / "run", compose, initialize_config_dir, run)
    out.write_text(
        json.dumps(
            {
                "sps": summary["train_sps"],
                "updates": summary["updates"],
                "train_time_s": summary["train_time_s"],
            }
        )
    )


def _run_ours(steps, overrides, run_dir, compose, initialize_config_dir, run) -> dict:
    a = COMMON
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "env=Breakout",
                "device=cpu",
                "logger=none",
                f"total_steps={steps}",
                "eval_every=0",
                "final_eval_episodes=1",
                "env.eval_max_episode_frames=2000",
                f"run_dir={run_dir}",
                f"agent.buffer_size={a['buffer_size']}",
                f"agent.batch_size={a['batch_size']}",
                f"agent.train_freq={a['train_freq']}",
                f"agent.learning_starts={a['learning_starts']}",
                f"agent.target_update_interval={a['target_update_interval']}",
                f"agent.lr={a['lr']}",
                "agent.gradient_steps=1",
                *overrides,
            ],
        )
    return run(cfg, run_dir)


def sb3_worker(steps: int, threads: int, out: Path) -> None:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    if threads > 0:
        torch.set_num_threads(threads)
    env = VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=1, seed=0), n_stack=4)
    a = COMMON
    model = DQN(
        "CnnPolicy",
        env,
        buffer_size=a["buffer_size"],
        optimize_memory_usage=False,
        learning_starts=a["learning_starts"],
        batch_size=a["batch_size"],
        train_freq=a["train_freq"],
        gradient_steps=1,
        target_update_interval=a["target_update_interval"],
        learning_rate=a["lr"],
        exploration_fraction=0.1,
        exploration_final_eps=0.01,
        device="cpu",
        seed=0,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    elapsed = time.perf_counter() - start
    out.write_text(json.dumps({"sps": round(steps / elapsed, 1), "train_time_s": round(elapsed, 3)}))


def update_cost(rounds: int = 6, per_round: int = 10) -> dict[str, float]:
    """Median ms per batch-32 NatureCNN update (and per single-obs action) for each layout/threads/amp
    option, timed in interleaved rounds in one process so that load from other jobs hits all alike."""
    sys.path.insert(0, str(ROOT))
    import gymnasium as gym
    import numpy as np
    import torch

    from agents.dqn import DQNAgent, DQNConfig
    from nets.configs import NatureCNNConfig
    from rlcore.replay import Batch

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    variants = {
        f"{'channels_last' if cl else 'NCHW'}, threads={t}{', amp bf16' if amp else ''}": (cl, t, amp)
        for cl in (False, True)
        for t in (1, 2)
        for amp in (False, True)
        if not (amp and t == 2)
    }
    agents = {
        name: DQNAgent(
            DQNConfig(),
            NatureCNNConfig(),
            space,
            gym.spaces.Discrete(4),
            total_steps=1,
            device=torch.device("cpu"),
            amp=amp,
            channels_last=cl,
        )
        for name, (cl, _, amp) in variants.items()
    }
    seq = torch.randint(0, 256, (32, 5, 84, 84), dtype=torch.uint8)
    batch = Batch(seq[:, :-1], torch.randint(0, 4, (32,)), torch.rand(32), seq[:, 1:], torch.zeros(32))
    obs = seq[:1, :-1].numpy()
    times: dict[str, list[float]] = {name: [] for name in variants}
    acts: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds + 1):
        for name, (_, threads, amp) in variants.items():
            torch.set_num_threads(threads)
            n = 2 if amp else per_round  # bf16 without AMX is slow: fewer repeats
            start = time.perf_counter()
            for _ in range(n):
                agents[name].update(batch)
            middle = time.perf_counter()
            for _ in range(n):
                agents[name].greedy_actions(obs)
            if r:  # round 0 warms up
                times[name].append((middle - start) / n * 1e3)
                acts[name].append((time.perf_counter() - middle) / n * 1e3)
    return {
        name: {
            "update_ms": round(float(np.median(times[name])), 2),
            "act_ms": round(float(np.median(acts[name])), 2),
        }
        for name in variants
    }


def run_child(args: list[str]) -> dict:
    """Run this script as a worker; its result plus its own peak RSS."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    proc = subprocess.Popen(
        [sys.executable, __file__, *args, "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"worker {' '.join(args)} failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    out.unlink()
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per run (default 20000)")
    parser.add_argument(
        "--sb3-threads", type=int, default=0, help="torch threads for SB3 (0: torch's default)"
    )
    parser.add_argument("--ablation", action="store_true", help="also time each rlcore speed option")
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 run")
    parser.add_argument("--update-cost", action="store_true", help="only time one update per option")
    parser.add_argument("--worker", choices=["ours", "sb3"], help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        return ours_worker(args.steps, args.overrides.split(), args.out)
    if args.worker == "sb3":
        return sb3_worker(args.steps, args.sb3_threads, args.out)

    if args.update_cost:
        costs = update_cost()
        for name, cost in costs.items():
            print(f"{name:<36} update {cost['update_ms']:>7.1f} ms   act {cost['act_ms']:>6.2f} ms")
        path = RESULTS.with_name("atari_update_cost.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(costs, indent=2) + "\n")
        print(f"written to {path}")
        return None

    rows = []
    runs = [*ABLATION, OURS_DEFAULT, *BEYOND_DEFAULT] if args.ablation else [OURS_DEFAULT]
    sys.path.insert(0, str(ROOT))
    from rlcore.base.seeding import native_bf16_on_cpu

    amp_rows = [label for label, overrides in runs if "amp=true" in overrides]
    if amp_rows and not native_bf16_on_cpu():  # torch's reference convolutions: an amp run would take an hour
        print(
            "amp rows left out: this CPU has no oneDNN bf16 kernels, where amp is several times slower than fp32"
        )
        runs = [(label, overrides) for label, overrides in runs if label not in amp_rows]
    for label, overrides in runs:
        result = run_child(
            ["--worker", "ours", "--steps", str(args.steps), "--overrides", " ".join(overrides)]
        )
        rows.append({"run": label, "impl": "rlcore", "overrides": overrides, **result})
        print(f"{label:<52} {result['sps']:>7.1f} SPS  peak RSS {result['peak_rss_mb']:>7.1f} MB", flush=True)
    ours = next(row for row in rows if row["run"] == OURS_DEFAULT[0])
    fastest = max(rows, key=lambda row: row["sps"])
    report = {
        "steps": args.steps,
        "settings": COMMON,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "runs": rows,
    }
    if not args.no_sb3:
        sb3 = run_child(
            ["--worker", "sb3", "--steps", str(args.steps), "--sb3-threads", str(args.sb3_threads)]
        )
        rows.append({"run": "stable-baselines3 DQN", "impl": "sb3", **sb3})
        print(f"{'stable-baselines3 DQN':<52} {sb3['sps']:>7.1f} SPS  peak RSS {sb3['peak_rss_mb']:>7.1f} MB")
        report["sps_ratio_ours_over_sb3"] = round(ours["sps"] / sb3["sps"], 2)
        report["rss_ratio_ours_over_sb3"] = round(ours["peak_rss_mb"] / sb3["peak_rss_mb"], 2)
        report["fastest_rlcore"] = {
            "run": fastest["run"],
            "sps_ratio_over_sb3": round(fastest["sps"] / sb3["sps"], 2),
        }
        print(
            f"training SPS ratio rlcore / SB3: {report['sps_ratio_ours_over_sb3']:.2f}x (defaults), "
            f"{report['fastest_rlcore']['sps_ratio_over_sb3']:.2f}x ({fastest['run']}); "
            f"peak RSS ratio: {report['rss_ratio_ours_over_sb3']:.2f}x"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
