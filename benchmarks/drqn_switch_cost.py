"""Cost of one DRQN update with the DQN switches on CartPoleNoVel's tuned settings (LSTM, batch 64 sequences).

    python benchmarks/drqn_switch_cost.py                 # ~1-2 minutes on one core
    python benchmarks/drqn_switch_cost.py --repeats 9 --updates 64

Variants: plain DRQN (``agent=dqn``), ``agent.n_step=3`` (3-step targets; the windows carry 2 more steps),
``agent.prioritized=true`` (priorities per training start) and ``agent=rainbow_lite`` (double + dueling +
both), each composed from the command-line overrides as ``train.py env=CartPoleNoVel <overrides>`` would.
All run in one process with one torch thread on the same replay contents (20,000 steps of a random policy),
timed in interleaved repeats so that load from other jobs hits all alike. A timed repeat is ``--updates``
times the loop's inline path: sample a batch, update, and (prioritized) write its priorities. Times are
CPU time of the process (``time.process_time``), which time slices lost to other jobs do not inflate, with
the wall-clock median beside it. Prints a table and writes ``benchmarks/results/drqn_switch_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VARIANTS = {
    "drqn": [],
    "n_step=3": ["agent.n_step=3"],
    "prioritized": ["agent.prioritized=true"],
    "rainbow_lite": ["agent=rainbow_lite"],
}


def build(overrides: list[str], fill_steps: int) -> tuple:
    """Agent and sequence replay as train.py builds them, the replay filled by a random policy."""
    import numpy as np
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from agents import BuildContext, make_agent
    from envs import make_env
    from rlcore.config import register_configs, to_typed
    from rlcore.replay import make_sequence_replay

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = to_typed(compose("config", overrides=["env=CartPoleNoVel", "device=cpu", *overrides]))
    torch.manual_seed(0)
    envs = make_env(cfg.env, 0)
    agent = make_agent(
        cfg.agent,
        BuildContext.for_run(
            cfg, envs.single_observation_space, envs.single_action_space, torch.device("cpu")
        ),
    )
    replay = make_sequence_replay(
        cfg.agent.buffer_size,
        envs,
        burn_in=cfg.agent.burn_in,
        sequence_length=cfg.agent.sequence_length,
        state_size=agent.state_size,
        seed=0,
        device=torch.device("cpu"),
        options=cfg.agent,
        total_steps=cfg.total_steps,
    )
    rng = np.random.default_rng(0)
    obs, _ = envs.reset(seed=0)
    agent.reset_state(np.ones(envs.num_envs, bool))
    for _ in range(fill_steps):
        state = agent.replay_state(envs.num_envs)
        agent.act(obs)  # advances the hidden state (stored_state); the action itself is random
        actions = rng.integers(0, 2, envs.num_envs)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions)
        done = terminated | truncated
        stored = next_obs.copy()
        for i in np.flatnonzero(done):
            stored[i] = infos["final_obs"][i]
        replay.add(obs, stored, actions, rewards, terminated, truncated, episode_ends=done, states=state)
        agent.reset_state(done)
        obs = next_obs
    return agent, replay, cfg.agent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--updates", type=int, default=64, help="updates per timed repeat")
    parser.add_argument("--fill", type=int, default=20_000, help="random-policy steps in the replay")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "drqn_switch_cost.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    built = {name: build(overrides, args.fill) for name, overrides in VARIANTS.items()}

    def one_repeat(agent, replay, cfg) -> None:
        for _ in range(args.updates):
            batch = replay.sample(cfg.batch_size)
            metrics = agent.update(batch)
            if batch.indices is not None:
                replay.update_priorities(batch.indices, metrics.pop("td_errors"))

    for name in VARIANTS:  # warm-up: allocator, Adam state
        one_repeat(*built[name])
    cpu = {name: [] for name in VARIANTS}
    wall = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name in VARIANTS:
            c, w = time.process_time(), time.perf_counter()
            one_repeat(*built[name])
            cpu[name].append((time.process_time() - c) / args.updates * 1e3)
            wall[name].append((time.perf_counter() - w) / args.updates * 1e3)
    base = statistics.median(cpu["drqn"])
    rows = {}
    header = f"{'variant':>13} | {'window steps':>12} | {'CPU ms/update':>13} | {'vs drqn':>7} | {'wall ms/update':>14}"
    print(header + "\n" + "-" * len(header))
    for name in VARIANTS:
        agent, replay, cfg = built[name]
        rows[name] = {
            "overrides": ["env=CartPoleNoVel", *VARIANTS[name]],
            "window_steps": replay.window,
            "batch_size": cfg.batch_size,
            "cpu_ms_per_update": round(statistics.median(cpu[name]), 3),
            "wall_ms_per_update": round(statistics.median(wall[name]), 3),
        }
        r = rows[name]
        print(
            f"{name:>13} | {r['window_steps']:>12} | {r['cpu_ms_per_update']:>13.2f} | "
            f"{r['cpu_ms_per_update'] / base:>6.2f}x | {r['wall_ms_per_update']:>14.2f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"repeats": args.repeats, "updates": args.updates, "fill": args.fill, "variants": rows}, indent=2
        )
        + "\n"
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
