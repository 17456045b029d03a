"""The off-policy training loop (DQN and its family): collect → store → learn → evaluate → checkpoint.

Everything is counted in env steps across all vector envs: ε schedule, target sync, ``train_freq``,
``learning_starts``, ``eval_every`` and ``total_steps``.

With ``overlap=true`` the updates run in one background thread while the main thread steps the env for
the next ``train_freq`` steps (torch releases the GIL in its kernels, and ale-py in its C++ step), so env
stepping, acting and sampling hide behind the update. The price is one update of staleness: the actions
of those steps come from the weights before the update in flight (:meth:`DQNAgent.refresh_actor` publishes
them when it finishes). The update of each round still starts at the same env step and on the same
sampled batch as without overlap; the loop waits for it before a target sync, an evaluation, a
checkpoint and the end of training.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents import make_agent
from envs import make_env
from nets.summary import summarize
from rlcore.checkpoint import save_checkpoint
from rlcore.config import TrainConfig, schema_names
from rlcore.evaluation import evaluate
from rlcore.loggers import Progress, RunLogger
from rlcore.plots import plot_learning_curve
from rlcore.replay import make_replay
from rlcore.seeding import EVAL_SEED_OFFSET, configure_threads, resolve_device, seed_everything
from rlcore.sequence_replay import make_sequence_replay

FIELDS = (
    "rollout/episode",
    "rollout/episode_return",
    "rollout/episode_length",
    "rollout/epsilon",
    "train/loss",
    "train/q",
    "train/grad_norm",
    "train/updates",
    "eval/mean_return",
    "eval/std_return",
    "time/sps",
    "time/elapsed_s",
)


@dataclass
class Counters:
    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    next_train_at: int = 0
    next_eval_at: int = 0
    next_checkpoint_at: int = 0
    best_eval: float = -math.inf


class UpdateMetrics:
    """Collects per-update metric tensors and averages them when a row is logged (one sync, not one per update)."""

    def __init__(self) -> None:
        self.items: dict[str, list[torch.Tensor]] = {}

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            self.items.setdefault(key, []).append(value)

    def pop(self) -> dict[str, float]:
        out = {f"train/{k}": torch.stack(v).float().mean().item() for k, v in self.items.items() if v}
        self.items = {}
        return out


class Learner:
    """Runs rounds of updates inline, or (``overlap``) one round at a time in a background thread."""

    def __init__(self, agent: object, metrics: UpdateMetrics, overlap: bool) -> None:
        self.agent = agent
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rlcore-learner") if overlap else None
        self.pending: Future | None = None

    def _run(self, batches: list) -> list[dict[str, torch.Tensor]]:
        return [self.agent.update(batch) for batch in batches]

    def submit(self, batches: list) -> None:
        """Learn from ``batches`` (one gradient step each); with overlap, returns once the round has started."""
        if self.pool is None:
            for batch in batches:
                self.metrics.add(self.agent.update(batch))
            return
        self.wait()
        self.pending = self.pool.submit(self._run, batches)

    def wait(self) -> None:
        """Finish the round in flight (re-raising its error) and let the actor act with its weights."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            for metrics in pending.result():
                self.metrics.add(metrics)
            self.agent.refresh_actor()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def train_off_policy(cfg: TrainConfig, run_dir: Path, config: dict) -> dict:
    """Train ``cfg.agent`` on ``cfg.env`` and write the run's files into ``run_dir``; returns the summary."""
    configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    run_dir = Path(run_dir)
    checkpoints = run_dir / "checkpoints"
    envs = make_env(cfg.env, cfg.seed)
    eval_env = make_env(cfg.env, cfg.seed + EVAL_SEED_OFFSET, evaluation=True)
    agent = make_agent(cfg, envs.single_observation_space, envs.single_action_space, device)
    # DRQN (a recurrent net): the replay samples sequences and the agent carries one hidden state per env
    sequences = getattr(agent, "recurrent", False)
    if sequences:
        replay = make_sequence_replay(cfg.agent.buffer_size, cfg.env, envs, burn_in=cfg.agent.burn_in,
                                      sequence_length=cfg.agent.sequence_length, state_size=agent.state_size,
                                      seed=cfg.seed, device=device, replay_device=cfg.replay.device)
    else:
        replay = make_replay(cfg.agent.buffer_size, cfg.env, envs, seed=cfg.seed, device=device, replay_device=cfg.replay.device)
    n_envs = envs.num_envs
    schemas = schema_names(cfg)
    logger = RunLogger(run_dir, FIELDS, cfg.logger, config, run_name=f"{cfg.env.name}-{cfg.agent.name}-{run_dir.name}")
    if cfg.logger.progress:
        print(f"[rlcore] {cfg.agent.name} on {cfg.env.name} | device {device} | {n_envs} env(s) | run dir {run_dir}")
        print(summarize(agent.online, envs.single_observation_space))  # per-layer output shapes and parameter counts

    def checkpoint(path: Path, eval_mean: float | None) -> None:
        save_checkpoint(path, {
            "config": config,
            "schemas": schemas,
            "agent": agent.state_dict(),
            "counters": asdict(counters),
            "eval_mean_return": eval_mean,
        })

    counters = Counters(
        next_train_at=max(cfg.agent.learning_starts, cfg.agent.train_freq),
        next_eval_at=cfg.eval_every or cfg.total_steps + 1,
        next_checkpoint_at=cfg.checkpoint_every or cfg.total_steps + 1,
    )
    a = cfg.agent
    progress = Progress(cfg.total_steps, enabled=cfg.logger.progress)
    updates = UpdateMetrics()
    learner = Learner(agent, updates, overlap=cfg.overlap)
    episode_return = np.zeros(n_envs)
    episode_length = np.zeros(n_envs, dtype=np.int64)
    last_return = float("nan")
    start = time.perf_counter()
    eval_time = 0.0
    progress_pending = 0

    def train_sps() -> float:
        return counters.env_steps / max(time.perf_counter() - start - eval_time, 1e-9)

    obs, _ = envs.reset(seed=cfg.seed)
    if sequences:
        agent.reset_state(np.ones(n_envs, dtype=bool))
    try:
        while counters.env_steps < cfg.total_steps:
            state_before = agent.replay_state(n_envs) if sequences else None
            actions = agent.act(obs, explore=True)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            done = terminated | truncated
            stored_next = next_obs
            if done.any():  # same-step autoreset: the real last observation is in final_obs
                stored_next = next_obs.copy()
                for i in np.flatnonzero(done):
                    stored_next[i] = infos["final_obs"][i]
            learner_terminal = terminated | infos["life_loss"] if "life_loss" in infos else terminated
            stored_rewards = np.sign(rewards) if cfg.env.clip_rewards else rewards
            if sequences:
                replay.add(obs, stored_next, actions, stored_rewards, learner_terminal, truncated,
                           episode_ends=done, states=state_before)
                agent.reset_state(done)  # the envs that just reset start their next step from a fresh state
            else:
                replay.add(obs, stored_next, actions, stored_rewards, learner_terminal, truncated)
            obs = next_obs
            episode_return += rewards
            episode_length += 1
            counters.env_steps += n_envs
            if agent.target_sync_due(counters.env_steps):
                learner.wait()  # the target copy must not race an update in flight
            agent.advance(counters.env_steps)

            while counters.env_steps >= counters.next_train_at:
                counters.next_train_at += a.train_freq
                if len(replay) >= a.batch_size:
                    learner.submit([replay.sample(a.batch_size) for _ in range(a.gradient_steps)])
                    counters.updates += a.gradient_steps

            if done.any():  # one row per vector step: the mean over the episodes that just ended
                finished = np.flatnonzero(done)
                counters.episodes += len(finished)
                last_return = float(episode_return[finished].mean())
                logger.log(counters.env_steps, {
                    "rollout/episode": counters.episodes,
                    "rollout/episode_return": last_return,
                    "rollout/episode_length": float(episode_length[finished].mean()),
                    "rollout/epsilon": agent.epsilon,
                    **updates.pop(),
                    "train/updates": counters.updates,
                    "time/sps": train_sps(),
                    "time/elapsed_s": time.perf_counter() - start,
                })
                episode_return[finished] = 0.0
                episode_length[finished] = 0

            progress_pending += n_envs
            if progress_pending >= 256 or counters.env_steps >= cfg.total_steps:
                progress.update(progress_pending, ret=last_return, eps=agent.epsilon)
                progress_pending = 0

            if counters.env_steps >= counters.next_eval_at:
                counters.next_eval_at += cfg.eval_every
                eval_start = time.perf_counter()
                learner.wait()
                returns, _ = evaluate(agent, eval_env, cfg.eval_episodes, epsilon=eval_epsilon(cfg))
                mean, std = float(returns.mean()), float(returns.std())
                logger.log(counters.env_steps, {
                    "eval/mean_return": mean,
                    "eval/std_return": std,
                    "rollout/epsilon": agent.epsilon,
                    "train/updates": counters.updates,
                    "time/sps": train_sps(),
                    "time/elapsed_s": time.perf_counter() - start,
                })
                logger.flush()
                if mean > counters.best_eval:
                    counters.best_eval = mean
                    checkpoint(checkpoints / "best.pt", mean)
                checkpoint(checkpoints / "last.pt", mean)
                eval_time += time.perf_counter() - eval_start
                if cfg.logger.progress:
                    progress.bar.write(f"[eval] step {counters.env_steps}: return {mean:.1f} ± {std:.1f}")

            if counters.env_steps >= counters.next_checkpoint_at:
                counters.next_checkpoint_at += cfg.checkpoint_every
                learner.wait()
                checkpoint(checkpoints / "last.pt", None)
        learner.wait()
    finally:
        learner.close()
        progress.close()
        logger.flush()

    wall_train = time.perf_counter() - start
    sps = train_sps()
    final_returns, _ = evaluate(agent, eval_env, cfg.final_eval_episodes, epsilon=eval_epsilon(cfg))
    final_mean, final_std = float(final_returns.mean()), float(final_returns.std())
    checkpoint(checkpoints / "last.pt", final_mean)
    if final_mean > counters.best_eval or not (checkpoints / "best.pt").exists():
        counters.best_eval = final_mean
        checkpoint(checkpoints / "best.pt", final_mean)
    logger.log(counters.env_steps, {"eval/mean_return": final_mean, "eval/std_return": final_std,
                                    "train/updates": counters.updates, "time/sps": sps,
                                    "time/elapsed_s": time.perf_counter() - start})
    logger.close()
    envs.close()
    eval_env.close()

    summary = {
        "env": cfg.env.name,
        "env_id": getattr(cfg.env, "id", cfg.env.name),
        "agent": cfg.agent.name,
        "net": cfg.net.name,
        "seed": cfg.seed,
        "device": str(device),
        "total_steps": counters.env_steps,
        "episodes": counters.episodes,
        "updates": counters.updates,
        "wall_time_s": round(time.perf_counter() - start, 3),
        "train_time_s": round(wall_train - eval_time, 3),
        "train_sps": round(sps, 1),
        "eval_mean_return": final_mean,
        "eval_std_return": final_std,
        "eval_episodes": len(final_returns),
        "best_eval_mean_return": counters.best_eval,
        "checkpoint": str(checkpoints / "last.pt"),
        "best_checkpoint": str(checkpoints / "best.pt"),
    }
    if hasattr(cfg.env, "correct_reward"):  # dataset env: each test image answered once, so this is the accuracy
        summary["test_accuracy"] = float(np.mean(final_returns == cfg.env.correct_reward))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_learning_curve(run_dir / "metrics.csv", run_dir / "learning_curve.png", f"{cfg.agent.name} on {summary['env_id']} (seed {cfg.seed})")
    return summary


def eval_epsilon(cfg: TrainConfig) -> float:
    """ε used when evaluating: 0 (greedy) unless the env family's protocol says otherwise (Atari: 0.05)."""
    return float(getattr(cfg.env, "eval_epsilon", 0.0))
