"""Atari 100k on one seed, side by side: ``agent=drq`` against Stable-Baselines3's DQN with the closest settings.

    python benchmarks/atari100k_vs_sb3.py                    # Breakout, seed 0, both runs at once (~1.5 h on 2 cores)
    python benchmarks/atari100k_vs_sb3.py --game Pong --seed 1
    python benchmarks/atari100k_vs_sb3.py --steps 2000 --eval-episodes 1 --eval-max-frames 4000   # a smoke run

Both runs start together, each in its own process with one torch thread (one core each on this 2-core
machine), so they see the same machine. Ours is ``python train.py agent=drq env=<Game> seed=<k>`` (the whole
protocol, docs/atari100k.md). SB3 is ``stable_baselines3.DQN("CnnPolicy")`` on SB3's own Atari wrappers with
every DrQ(ε) setting it has (``SB3_SETTINGS``): one update per env step from 1,600 steps, batch 32, a 100k
replay, Adam lr 1e-4 eps 1.5e-4, the target copied every step, ε 1 → 0.01 over 5,000 steps, 10-step returns
(``n_steps``, SB3 >= 2.7), Huber loss, gradient-norm clipping at 10, no sticky actions, up to 30 no-ops, a
lost life terminal in training, 108,000-frame episodes. **What SB3's DQN lacks** (``LACKS``): Double DQN, the
dueling head and DrQ's image augmentation; and its ``EpisodicLifeEnv`` + ``FireResetEnv`` press FIRE after
every lost life in training, where ours (as Dopamine) leaves that to the agent.

Both are scored the same way: 100 episodes (whole games, no life-loss terminal, raw rewards) at ε = 0.001,
at most 108,000 frames each, after training (SB3 on SB3's wrappers, ours in train.py's final evaluation).
Reports the score, the training wall time and SPS (evaluation excluded) and the whole wall time of each;
JSON into ``benchmarks/results/atari100k_vs_sb3.json``.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from atari100k import GAMES, decay_fraction, rl_command, shown  # noqa: E402  (the benchmark's run of the preset)

BUDGET = 100_000
EVAL_EPSILON = 0.001
EVAL_MAX_FRAMES = 108_000
SB3_SETTINGS: dict[str, Any] = dict(  # DrQ(ε)'s settings (configs/agent/drq.yaml) as SB3's DQN names them
    learning_rate=1e-4,
    buffer_size=100_000,
    learning_starts=1600,
    batch_size=32,
    tau=1.0,
    gamma=0.99,
    train_freq=1,
    gradient_steps=1,
    target_update_interval=1,
    exploration_initial_eps=1.0,
    exploration_final_eps=0.01,
    max_grad_norm=10.0,
    n_steps=10,
    optimize_memory_usage=False,
    policy_kwargs=dict(optimizer_kwargs=dict(eps=1.5e-4)),
)
LACKS = [
    "Double DQN (SB3's DQN takes max_a Q_target(s', a))",
    "the dueling head",
    "DrQ's random shifts of the sampled observations",
    "FIRE after a lost life left to the agent (SB3's FireResetEnv presses it in training)",
]


# ----------------------------------------------------------------------------------------------------- ours


def run_ours(game: str, seed: int, steps: int, episodes: int, max_frames: int, out: Path) -> dict:
    run_dir = out / "ours"
    extra = []
    if steps != BUDGET:
        extra += [f"total_steps={steps}", f"agent.exploration_fraction={decay_fraction(steps)}"]
    if episodes != 100:
        extra.append(f"final_eval_episodes={episodes}")
    if max_frames != EVAL_MAX_FRAMES:
        extra.append(f"env.eval_max_episode_frames={max_frames}")
    cmd = rl_command(game, seed, run_dir, extra)  # the Atari 100k benchmark's run of the preset
    start = time.perf_counter()
    done = subprocess.run(
        ["nice", "-n", "10", *cmd],
        cwd=ROOT,
        env={**os.environ, "WANDB_MODE": "disabled"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ours failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "command": shown(cmd),
        "score": summary["eval_mean_return"],
        "score_std": summary.get("eval_std_return"),
        "eval_episodes": summary.get("eval_episodes"),
        "train_s": summary["train_time_s"],
        "train_sps": summary["train_sps"],
        "wall_s": round(time.perf_counter() - start, 1),
    }


# ------------------------------------------------------------------------------------------------------ SB3


def sb3_env(game: str, seed: int, training: bool) -> Any:
    """SB3's Atari stack: ``NoFrameskip-v4`` (no sticky actions), AtariWrapper (30 no-ops, frame skip 4 with
    max-pooling, 84x84 grey, FIRE on reset; in training a lost life is terminal and rewards are clipped),
    a 108,000-frame cap, 4 frames stacked."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    env = make_atari_env(
        f"{game}NoFrameskip-v4",
        n_envs=1,
        seed=seed,
        wrapper_kwargs=dict(terminal_on_life_loss=training, clip_reward=training),
        env_kwargs=dict(max_num_frames_per_episode=EVAL_MAX_FRAMES),
    )
    return VecFrameStack(env, n_stack=4)


def sb3_evaluate(model: Any, env: Any, episodes: int, max_frames: int, seed: int) -> list[float]:
    """``episodes`` whole games at ε = 0.001 (Monitor's returns: raw rewards, all lives), each cut at
    ``max_frames`` frames (4 per agent step) as ours is."""
    import numpy as np

    rng = np.random.default_rng(seed)
    returns: list[float] = []
    obs = env.reset()
    running, steps = 0.0, 0
    while len(returns) < episodes:
        action, _ = model.predict(obs, deterministic=True)
        if rng.random() < EVAL_EPSILON:
            action = np.array([rng.integers(env.action_space.n)])
        obs, rewards, dones, infos = env.step(action)
        running += float(rewards[0])
        steps += 1
        if dones[0] or steps * 4 >= max_frames:
            episode = infos[0].get("episode")
            returns.append(float(episode["r"]) if dones[0] and episode else running)
            running, steps = 0.0, 0
            if not dones[0]:
                obs = env.reset()
    return returns


def sb3_worker(game: str, seed: int, steps: int, episodes: int, max_frames: int) -> dict:
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    start = time.perf_counter()
    settings = {**SB3_SETTINGS, "buffer_size": min(SB3_SETTINGS["buffer_size"], steps)}
    model = DQN(
        "CnnPolicy",
        sb3_env(game, seed, training=True),
        exploration_fraction=float(decay_fraction(steps)),
        seed=seed,
        device="cpu",
        verbose=0,
        **settings,
    )
    learn = time.perf_counter()
    model.learn(total_timesteps=steps)
    train_s = time.perf_counter() - learn
    scores = sb3_evaluate(model, sb3_env(game, seed + 10_000, training=False), episodes, max_frames, seed)
    return {
        "settings": {k: v for k, v in settings.items() if k != "policy_kwargs"} | {"adam_eps": 1.5e-4},
        "lacks": LACKS,
        "score": round(statistics.fmean(scores), 2),
        "score_std": round(statistics.pstdev(scores), 2),
        "eval_episodes": len(scores),
        "train_s": round(train_s, 1),
        "train_sps": round(steps / train_s, 1),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def run_sb3(game: str, seed: int, steps: int, episodes: int, max_frames: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--sb3-worker",
        "--game",
        game,
        "--seed",
        str(seed),
        "--steps",
        str(steps),
    ]
    cmd += ["--eval-episodes", str(episodes), "--eval-max-frames", str(max_frames)]
    done = subprocess.run(["nice", "-n", "10", *cmd], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"SB3 failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------- report


def markdown(game: str, seed: int, ours: dict, sb3: dict) -> str:
    lines = [
        f"| {game}, seed {seed} | score (mean ± std over episodes) | training time | training SPS | wall time |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in (("rlcore `agent=drq`", ours), ("SB3 `DQN` (closest settings)", sb3)):
        std = row.get("score_std")
        lines.append(
            f"| {name} | {row['score']:.1f}"
            + (f" ± {std:.1f}" if std is not None else "")
            + f" | {row['train_s'] / 60:.1f} min | {row['train_sps']:.1f} | {row['wall_s'] / 60:.1f} min |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--game", default="Breakout", choices=GAMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=BUDGET)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--eval-max-frames", type=int, default=EVAL_MAX_FRAMES)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "atari100k_vs_sb3.json")
    parser.add_argument("--sb3-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for flag, value in (
        ("--steps", args.steps),
        ("--eval-episodes", args.eval_episodes),
        ("--eval-max-frames", args.eval_max_frames),
    ):
        if value <= 0:
            parser.error(f"{flag} must be a positive number (got {value})")
    if args.sb3_worker:
        print(
            json.dumps(sb3_worker(args.game, args.seed, args.steps, args.eval_episodes, args.eval_max_frames))
        )
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        ours_job = pool.submit(
            run_ours, args.game, args.seed, args.steps, args.eval_episodes, args.eval_max_frames, Path(tmp)
        )
        sb3_job = pool.submit(
            run_sb3, args.game, args.seed, args.steps, args.eval_episodes, args.eval_max_frames
        )
        ours, sb3 = ours_job.result(), sb3_job.result()
    print(markdown(args.game, args.seed, ours, sb3))
    payload = {
        "game": args.game,
        "seed": args.seed,
        "steps": args.steps,
        "eval": {"episodes": args.eval_episodes, "epsilon": EVAL_EPSILON, "max_frames": args.eval_max_frames},
        "ours": ours,
        "sb3": sb3,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
