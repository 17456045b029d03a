"""What one step of ``agent=drq`` costs on this CPU, and where a 100k-step run's time goes.

    nice -n 10 python benchmarks/drq_cost.py --update            # one batch-32 update: preset vs bare PyTorch
    nice -n 10 python benchmarks/drq_cost.py --profile --steps 3000   # a short Breakout run, fp32 and amp

``--update``: one batch-32 update of the preset as the run does it (DrQ shifts of obs and next_obs; one pass
of double DQN over s', since the target synced after the previous step is the online net; 10-step targets,
huber loss, backward, clipping, Adam, then the per-step target copy that ``target_update_interval=1`` asks
for), against a bare PyTorch loop doing the same arithmetic on
the same tensors in the same process: the same shift function, copies of the same network, ``F.smooth_l1_loss``,
``clip_grad_norm_``, ``torch.optim.Adam`` and a ``copy_`` per parameter. Both in channels_last, fp32 and bf16
autocast, timed in interleaved rounds (median; CPU time of the process and wall time), one torch thread.
The ratio preset / bare is the framework's overhead on the update (the issue's limit: <= 1.1).

``--profile``: ``agent=drq env=Breakout`` in this process for 1,600 + ``--steps`` env steps (the final
evaluation cut to one short game), with timers around the env step, acting, replay add and sample, the
augmentation and the update (including the target copy), once in fp32 and once with ``amp=true``. Reports ms
per env step in each phase and the 100k-step wall time extrapolated from them (the 100-episode final
evaluation excluded: its length depends on how well the policy plays). JSON: benchmarks/results/drq_cost.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

LEARNING_STARTS = 1600
BUDGET = 100_000


# ------------------------------------------------------------------------------------------- one update


def preset_agent(amp: bool) -> Any:
    import gymnasium as gym
    import numpy as np
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from agents.dqn import DQNAgent
    from rlcore.config import register_configs, to_typed

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = to_typed(compose("config", overrides=["agent=drq", "env=Breakout", "run_dir=unused"]))
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    return DQNAgent(
        cfg.agent,
        cfg.net,
        space,
        gym.spaces.Discrete(4),
        total_steps=BUDGET,
        device=torch.device("cpu"),
        amp=amp,
        channels_last=True,
    )


class Bare:
    """The same update in plain PyTorch on copies of the preset's networks."""

    def __init__(self, agent: Any, amp: bool) -> None:
        from agents.augment import random_shift

        self.shift = random_shift
        self.online = copy.deepcopy(agent.online)
        self.target = copy.deepcopy(agent.target)
        self.params = list(self.online.parameters())
        self.target_params = list(self.target.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=1e-4, eps=1.5e-4)
        self.generator = torch.Generator().manual_seed(0)
        self.amp = amp

    def autocast(self) -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.amp)

    def update(self, batch: Any) -> None:
        obs = self.shift(batch.obs, 4, self.generator, padding="replicate")
        next_obs = self.shift(batch.next_obs, 4, self.generator, padding="replicate")
        obs = obs.contiguous(memory_format=torch.channels_last)
        next_obs = next_obs.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), self.autocast():
            # the target was copied from the online net after the last step (interval 1, as the preset):
            # one pass over s' gives Double DQN's argmax and its value, as the preset computes them
            next_target = self.online(next_obs)[0].float()
            best = next_target.argmax(dim=1, keepdim=True)
            y = batch.rewards + batch.discounts * (1 - batch.terminated) * next_target.gather(
                1, best
            ).squeeze(1)
        with self.autocast():
            q = self.online(obs)[0]
        q_taken = q.float().gather(1, batch.actions.view(-1, 1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, y)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 10.0)
        self.optimizer.step()
        with torch.no_grad():
            for t, o in zip(self.target_params, self.params, strict=True):
                t.copy_(o)


def batches(n: int) -> list[Any]:
    from rlcore.base.batches import Batch

    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        seq = torch.randint(0, 256, (32, 5, 84, 84), dtype=torch.uint8, generator=g)
        out.append(
            Batch(
                obs=seq[:, :-1].contiguous(),
                actions=torch.randint(0, 4, (32,), generator=g),
                rewards=torch.rand(32, generator=g),
                next_obs=seq[:, 1:].contiguous(),
                terminated=(torch.rand(32, generator=g) < 0.1).float(),
                discounts=torch.full((32,), 0.99**10),
            )
        )
    return out


def update_cost(rounds: int, per_round: int, warmup: int) -> dict:
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as a run does (flush_denormal=true)
    data = batches(per_round)
    variants: dict[str, Callable[[Any], None]] = {}
    for amp in (False, True):
        agent = preset_agent(amp)
        bare = Bare(agent, amp)
        tag = "bf16" if amp else "fp32"

        def preset_step(batch: Any, agent: Any = agent) -> None:
            agent.update(batch)
            agent.advance(agent.env_steps + 1)  # target_update_interval=1: the copy of every step

        variants[f"preset {tag}"] = preset_step
        variants[f"bare {tag}"] = bare.update
    for step in variants.values():
        for i in range(warmup):
            step(data[i % len(data)])
    cpu: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for name, step in variants.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for batch in data:
                step(batch)
            cpu[name].append((time.process_time() - c0) / len(data) * 1e3)
            wall[name].append((time.perf_counter() - w0) / len(data) * 1e3)
    result = {
        name: {
            "cpu_ms": round(statistics.median(cpu[name]), 2),
            "wall_ms": round(statistics.median(wall[name]), 2),
        }
        for name in variants
    }
    for tag in ("fp32", "bf16"):
        p, b = result[f"preset {tag}"], result[f"bare {tag}"]
        result[f"ratio {tag}"] = {
            "cpu": round(p["cpu_ms"] / b["cpu_ms"], 3),
            "wall": round(p["wall_ms"] / b["wall_ms"], 3),
        }
    result["bf16 / fp32 (preset, cpu)"] = round(
        result["preset bf16"]["cpu_ms"] / result["preset fp32"]["cpu_ms"], 3
    )
    return result


# -------------------------------------------------------------------------------------------- profile


class Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.learning = False
        self.first_update: float | None = None
        self.last_update: float | None = None
        self.first_update_cpu = 0.0
        self.last_update_cpu = 0.0
        self.updates = 0

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            key = f"{name} ({'learning' if self.learning else 'warm-up'})"
            self.total[key] += time.perf_counter() - start
            self.cpu[key] += time.process_time() - cpu
            self.calls[key] += 1


def instrument(timers: Timers) -> Callable[[], None]:
    """Wrap the hot methods with timers; returns the function that puts them back."""
    from agents.dqn import DQNAgent
    from envs.atari import AtariVecEnv
    from rlcore.replay.frames import FrameReplayBuffer

    saved: list[tuple[type, str, Any]] = []

    def wrap(cls: type, name: str, label: str) -> None:
        original = getattr(cls, name)
        saved.append((cls, name, original))

        def timed(*args: Any, **kwargs: Any) -> Any:
            with timers.time(label):
                return original(*args, **kwargs)

        setattr(cls, name, timed)

    original_update = DQNAgent.update

    def update(self: Any, *args: Any, **kwargs: Any) -> Any:
        if timers.first_update is None:
            timers.first_update = time.perf_counter()
            timers.first_update_cpu = time.process_time()
            timers.learning = True
        with timers.time("update (incl. augmentation)"):
            out = original_update(self, *args, **kwargs)
        timers.last_update = time.perf_counter()
        timers.last_update_cpu = time.process_time()
        timers.updates += 1
        return out

    saved.append((DQNAgent, "update", original_update))
    DQNAgent.update = update  # type: ignore[method-assign]
    wrap(DQNAgent, "augment", "augmentation")
    wrap(DQNAgent, "act", "act")
    wrap(DQNAgent, "advance", "schedules + target copy")
    wrap(AtariVecEnv, "step", "env step")
    wrap(FrameReplayBuffer, "add", "replay add")
    wrap(FrameReplayBuffer, "sample", "replay sample")

    def restore() -> None:
        for cls, name, original in saved:
            setattr(cls, name, original)

    return restore


def profile(steps: int, amp: bool) -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rlcore.config import register_configs
    from rlcore.run import run

    register_configs()
    GlobalHydra.instance().clear()
    timers = Timers()
    restore = instrument(timers)
    try:
        with tempfile.TemporaryDirectory(prefix="rlcore-drq-profile-") as tmp:
            with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
                cfg = compose(
                    "config",
                    overrides=[
                        "agent=drq",
                        "env=Breakout",
                        "device=cpu",
                        "logger=none",
                        f"total_steps={LEARNING_STARTS + steps}",
                        "final_eval_episodes=1",
                        "env.eval_max_episode_frames=2000",
                        f"amp={str(amp).lower()}",
                        f"run_dir={Path(tmp) / 'run'}",
                    ],
                )
            start = time.perf_counter()
            summary = run(cfg, Path(tmp) / "run")
            wall = time.perf_counter() - start
    finally:
        restore()
    assert timers.first_update is not None and timers.last_update is not None
    steps_timed = max(timers.updates - 1, 1)
    out: dict[str, Any] = {"amp": amp, "learning_steps": timers.updates}
    # wall: what this (shared) machine gave; cpu: the process's CPU time, what an idle core would take
    for clock, totals, learning in (
        ("wall", timers.total, timers.last_update - timers.first_update),
        ("cpu", timers.cpu, timers.last_update_cpu - timers.first_update_cpu),
    ):
        per_learning_step = learning / steps_timed
        per_warmup_step = sum(v for k, v in totals.items() if k.endswith("(warm-up)")) / LEARNING_STARTS
        parts = {
            k.removesuffix(" (learning)"): round(v / max(timers.updates, 1) * 1e3, 2)
            for k, v in totals.items()
            if k.endswith("(learning)")
        }
        accounted = sum(v for k, v in parts.items() if k != "augmentation")  # augmentation is inside update
        parts["other: loop, logging"] = round(per_learning_step * 1e3 - accounted, 2)
        extrapolated = per_warmup_step * LEARNING_STARTS + per_learning_step * (BUDGET - LEARNING_STARTS)
        out[clock] = {
            "ms_per_learning_step": round(per_learning_step * 1e3, 2),
            "ms_per_warmup_step": round(per_warmup_step * 1e3, 2),
            "ms_per_learning_step_by_part": parts,
            "extrapolated_100k_minutes": round(extrapolated / 60, 1),
        }
    return {
        **out,
        "run_wall_s": round(wall, 1),
        "train_sps": summary.get("train_sps"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--update", action="store_true", help="time one update: preset vs bare PyTorch")
    parser.add_argument("--profile", action="store_true", help="profile a short preset run, fp32 and amp")
    parser.add_argument("--steps", type=int, default=3000, help="--profile: learning steps after the 1,600")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-amp", action="store_true", help="--profile: fp32 only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "drq_cost.json")
    args = parser.parse_args()
    if not (args.update or args.profile):
        parser.error("pick --update and/or --profile")
    result: dict[str, Any] = {"torch": torch.__version__}
    if args.update:
        result["update"] = update_cost(args.rounds, args.per_round, args.warmup)
        for name, value in result["update"].items():
            print(f"{name:28s} {value}")
    if args.profile:
        result["profile"] = [profile(args.steps, amp) for amp in ((False,) if args.no_amp else (False, True))]
        for entry in result["profile"]:
            print(json.dumps(entry, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
