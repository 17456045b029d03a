"""Cost of one DQN update on CartPole's shapes (256-256 MLP, batch 64, rounds of 128): rlcore vs SB3, per option.

    python benchmarks/update_cost.py                  # ~1-2 minutes on one core
    python benchmarks/update_cost.py --repeats 9 --warmup 2048

All variants run in one process with one torch thread, on the same replay contents (random-policy CartPole
transitions), timed in interleaved repeats so that load from other jobs hits all alike. Each variant first
trains ``--warmup`` updates of its own: Adam's moment estimates of units that stopped receiving gradient
(dead ReLUs) decay into denormal floats only after some hundreds of updates, and those make an Adam step
several times slower on x86. A timed repeat is one round: sampling 128 batches of 64 and the 128 updates
(SB3: ``DQN.train(gradient_steps=128, batch_size=64)``, which samples inside). Also timed: choosing one
action for one observation (ours ``act``; SB3 ``predict``, which its rollout loop calls each step).
Times are CPU time of the process (``time.process_time``), which time slices lost to other jobs on a shared
machine do not inflate, with the wall-clock median beside it. Prints a table and writes
``benchmarks/results/update_cost.json``.
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
ZOO = dict(
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
)  # RL Zoo's CartPole-v1 DQN, as in cartpole_vs_sb3.py
ROUND, BATCH = 128, 64


def random_transitions(n: int, seed: int = 0) -> dict:
    """``n`` CartPole-v1 transitions of a uniformly random policy."""
    import gymnasium as gym
    import numpy as np

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")}
    for _ in range(n):
        action = int(rng.integers(2))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(out, (obs, next_obs, action, reward, terminated, truncated), strict=True):
            out[key].append(value)
        obs = env.reset()[0] if terminated or truncated else next_obs
    return {k: np.asarray(v) for k, v in out.items()}


class Ours:
    """rlcore's DQN agent and replay; ``per_round``: one target pass per round (update_round)."""

    def __init__(self, data: dict, per_round: bool) -> None:
        import gymnasium as gym
        import numpy as np
        import torch

        from agents.dqn import DQNAgent, DQNConfig
        from nets import MLPConfig
        from rlcore.replay import ReplayBuffer

        space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        cfg = DQNConfig(
            lr=ZOO["learning_rate"],
            batch_size=BATCH,
            buffer_size=ZOO["buffer_size"],
            target_update_interval=10,
            train_freq=256,
            gradient_steps=ROUND,
        )
        torch.manual_seed(0)
        self.agent = DQNAgent(
            cfg,
            MLPConfig(hidden_sizes=[256, 256]),
            space,
            gym.spaces.Discrete(2),
            total_steps=50_000,
            device=torch.device("cpu"),
        )
        self.agent.epsilon = ZOO["exploration_final_eps"]
        self.replay = ReplayBuffer(ZOO["buffer_size"], space, seed=0)
        self.replay.add(
            data["obs"].astype(np.float32),
            data["next_obs"].astype(np.float32),
            data["actions"],
            data["rewards"],
            data["terminated"],
            data["truncated"],
        )
        self.per_round = per_round

    def train_round(self) -> None:
        batches = [self.replay.sample(BATCH) for _ in range(ROUND)]
        if self.per_round:
            self.agent.update_round(batches)
        else:
            for batch in batches:
                self.agent.update(batch)

    def act(self, obs) -> None:
        self.agent.act(obs[None], explore=True)

    def adam_moments(self) -> list:
        return [s["exp_avg"] for s in self.agent.optimizer.state.values()]


class SB3:
    """Stable-Baselines3's DQN with RL Zoo's settings, its replay filled with the same transitions."""

    def __init__(self, data: dict) -> None:
        import numpy as np
        from stable_baselines3 import DQN

        self.model = DQN(
            "MlpPolicy", "CartPole-v1", seed=0, device="cpu", policy_kwargs=dict(net_arch=[256, 256]), **ZOO
        )
        self.model._setup_learn(total_timesteps=50_000)  # the logger and schedules that train() uses
        self.model.exploration_rate = ZOO["exploration_final_eps"]
        buffer, n = self.model.replay_buffer, len(data["actions"])
        buffer.observations[:n, 0] = data["obs"]
        buffer.next_observations[:n, 0] = data["next_obs"]
        buffer.actions[:n, 0, 0] = data["actions"]
        buffer.rewards[:n, 0] = data["rewards"]
        buffer.dones[:n, 0] = data["terminated"] | data["truncated"]
        buffer.timeouts[:n, 0] = data["truncated"] & ~data["terminated"]
        buffer.pos = n
        self._np = np

    def train_round(self) -> None:
        self.model.train(gradient_steps=ROUND, batch_size=BATCH)

    def act(self, obs) -> None:
        self.model.predict(obs, deterministic=False)

    def adam_moments(self) -> list:
        return [s["exp_avg"] for s in self.model.policy.optimizer.state.values()]


def denormal_fraction(tensors: list) -> float:
    import torch

    tiny = torch.finfo(torch.float32).tiny
    total = sum(t.numel() for t in tensors)
    return sum(((t != 0) & (t.abs() < tiny)).sum().item() for t in tensors) / total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per variant (interleaved)")
    parser.add_argument("--warmup", type=int, default=1536, help="updates each variant trains before timing")
    parser.add_argument("--acts", type=int, default=2000, help="single-observation actions timed per variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "update_cost.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = random_transitions(20_000)
    # name -> (learner, flush denormals while it trains)
    variants = {
        "SB3 DQN.train (as shipped)": (SB3(data), False),
        "SB3 DQN.train + flush denormals": (SB3(data), True),
        "rlcore, target pass per update, denormals kept": (Ours(data, per_round=False), False),
        "rlcore, target pass per update, flush denormals": (Ours(data, per_round=False), True),
        "rlcore, one target pass per round, denormals kept": (Ours(data, per_round=True), False),
        "rlcore default: one target pass per round, flush denormals": (Ours(data, per_round=True), True),
    }
    ms: dict[str, list[float]] = {name: [] for name in variants}
    wall_ms: dict[str, list[float]] = {name: [] for name in variants}
    act_us: dict[str, list[float]] = {name: [] for name in variants}
    obs = data["obs"][0].astype("float32")
    try:
        for learner, flush in variants.values():
            torch.set_flush_denormal(flush)
            for _ in range(max(args.warmup // ROUND, 1)):
                learner.train_round()
        for _ in range(args.repeats):
            for name, (learner, flush) in variants.items():
                torch.set_flush_denormal(flush)
                cpu, wall = time.process_time(), time.perf_counter()
                learner.train_round()
                ms[name].append((time.process_time() - cpu) / ROUND * 1e3)
                wall_ms[name].append((time.perf_counter() - wall) / ROUND * 1e3)
                cpu = time.process_time()
                for _ in range(args.acts // args.repeats):
                    learner.act(obs)
                act_us[name].append((time.process_time() - cpu) / (args.acts // args.repeats) * 1e6)
    finally:
        torch.set_flush_denormal(False)
    sb3_ms = statistics.median(ms["SB3 DQN.train (as shipped)"])
    rows = []
    for name, (learner, _) in variants.items():
        median = statistics.median(ms[name])
        rows.append(
            {
                "variant": name,
                "ms_per_update": round(median, 3),
                "min_ms": round(min(ms[name]), 3),
                "wall_ms_per_update": round(statistics.median(wall_ms[name]), 3),
                "sb3_over_this": round(sb3_ms / median, 2),
                "act_us": round(statistics.median(act_us[name]), 1),
                "adam_exp_avg_denormal": round(denormal_fraction(learner.adam_moments()), 3),
            }
        )
    width = max(len(r["variant"]) for r in rows)
    header = (
        f"{'variant':<{width}} | {'CPU ms/update':>13} {'min':>6} {'wall ms':>7} | {'SB3/this':>8} | "
        f"{'act CPU us':>10} | {'denormal Adam m':>15}"
    )
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(
            f"{r['variant']:<{width}} | {r['ms_per_update']:>13.3f} {r['min_ms']:>6.3f} {r['wall_ms_per_update']:>7.3f} | "
            f"{r['sb3_over_this']:>8.2f} | {r['act_us']:>10.1f} | {r['adam_exp_avg_denormal']:>15.3f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "settings": {
                    **ZOO,
                    "net": [256, 256],
                    "round": ROUND,
                    "batch": BATCH,
                    "warmup_updates": args.warmup,
                    "repeats": args.repeats,
                    "threads": args.threads,
                    "torch": torch.__version__,
                },
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
