"""The off-policy training loop (DQN and its family): collect → store → learn → evaluate → checkpoint.

Everything is counted in env steps across all vector envs: ε schedule, target sync, ``train_freq``,
``learning_starts``, ``eval_every`` and ``total_steps``.

With ``overlap=true`` the updates run in one background thread while the main thread steps the env for
the next ``train_freq`` steps (torch releases the GIL in its kernels, and ale-py in its C++ step), so env
stepping, acting and sampling hide behind the update. The price is one update of staleness: the actions
of those steps come from the weights before the update in flight (:meth:`DQNAgent.refresh_actor` publishes
them when it finishes). The update of each round still starts at the same env step and on the same
sampled batch as without overlap; the loop waits for it before an evaluation, a checkpoint, the next
round and the end of training. A target sync or learning-rate change that falls due while a round is in
flight is applied when it ends (``DQNAgent.begin_round``), so every round sees the same target net and
learning rate as without overlap, whatever the timing of the two threads (CartPole syncs every 10 steps
but trains every 256: waiting at each sync would leave nothing to overlap).

Prioritized replay: each batch carries its buffer positions, and the TD errors of its update set their new
priorities right after that update. Inline, the next batch is sampled only then (as SB3 samples right
before each gradient step); with overlap, the batches of a round are sampled up front in the main thread
(a background sample would race with ``replay.add``), so they see the priorities of the round before.

Resume (``resume=<run_dir>``, docs/resume.md): ``last.pt`` also holds everything the loop carries between
env steps (observations, running episode returns, update metrics not yet logged, env and RNG states, the
length of metrics.csv), so a resumed CPU run writes the same metrics as one that never stopped. SIGINT and
SIGTERM are turned into a save at the end of the current step (:class:`rlcore.resume.StopSignals`).

Divergence guard: a non-finite ``train/loss`` or ``train/q`` in a logged row, or a non-finite weight or
pending metric before an evaluation or checkpoint, stops training with :class:`DivergenceError`; the
diverged weights are never written over ``last.pt``/``best.pt``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents import make_agent
from envs import make_env
from envs.state import env_state, load_env_state
from nets.summary import summarize
from rlcore.checkpoint import save_checkpoint
from rlcore.config import TrainConfig, schema_names
from rlcore.errors import DivergenceError, TrainingInterrupted
from rlcore.evaluation import evaluate
from rlcore.learner import Learner, UpdateMetrics
from rlcore.loggers import Progress, RunLogger, truncate_metrics
from rlcore.plots import plot_learning_curve
from rlcore.replay import ReplayBuffer, make_replay
from rlcore.resume import (
    StopSignals,
    load_replay,
    load_rng_states,
    replay_in_checkpoints,
    rng_states,
    write_last,
)
from rlcore.seeding import EVAL_SEED_OFFSET, configure_threads, resolve_device, seed_everything
from rlcore.sequence_replay import make_sequence_replay
from rlcore.video import record_episode

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


def weights_finite(agent: object) -> bool:
    """Whether every parameter of the online network is finite (one sync)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in agent.online.parameters()]).all())


def _row_text(row: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                     if not k.startswith("time/"))


def next_multiple(step: int, every: int, total: int) -> int:
    """The first multiple of ``every`` after ``step`` (``total + 1``, i.e. never, when ``every`` is 0)."""
    return (step // every + 1) * every if every else total + 1


def train_off_policy(cfg: TrainConfig, run_dir: Path, config: dict, resume: dict | None = None) -> dict:
    """Train ``cfg.agent`` on ``cfg.env`` and write the run's files into ``run_dir``; returns the summary.

    ``resume`` is the run's ``checkpoints/last.pt`` (loaded) to continue from (see docs/resume.md).
    """
    configure_threads(cfg.threads)
    # Adam's moment estimates of dead ReLU units decay geometrically into denormal floats, which x86 cores
    # process ~5x slower: on CartPole's 256-256 MLP the fused Adam step went from ~0.16 to ~0.55 ms
    # (docs/performance.md). Flushing them to 0 changes values below 1.2e-38 only.
    torch.set_flush_denormal(cfg.flush_denormal)
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
                                      seed=cfg.seed, device=device, replay_device=cfg.replay.device,
                                      agent_cfg=cfg.agent, total_steps=cfg.total_steps)
    else:
        replay = make_replay(cfg.agent.buffer_size, cfg.env, envs, seed=cfg.seed, device=device,
                             replay_device=cfg.replay.device, agent_cfg=cfg.agent, total_steps=cfg.total_steps)
    save_replay = replay_in_checkpoints(cfg)
    n_envs = envs.num_envs
    schemas = schema_names(cfg)
    saved = resume["train"] if resume is not None else None
    if saved is not None:  # rows logged after that checkpoint are logged again below
        truncate_metrics(run_dir / "metrics.csv", saved["metrics_bytes"])
    logger = RunLogger(run_dir, FIELDS, cfg.logger, config, run_name=f"{cfg.env.name}-{cfg.agent.name}-{run_dir.name}",
                       wandb_id=saved["wandb_id"] if saved is not None else None)
    if cfg.logger.progress:
        print(f"[rlcore] {cfg.agent.name} on {cfg.env.name} | device {device} | {n_envs} env(s) | run dir {run_dir}")
        print(summarize(agent.online, envs.single_observation_space))  # per-layer output shapes and parameter counts
        if save_replay and hasattr(replay, "nbytes"):
            print(f"[rlcore] checkpoint.replay=true: each last.pt write also writes the replay "
                  f"(up to {replay.nbytes() / 1e9:.2f} GB when full); checkpoint.replay=false turns it off")

    def training_state() -> dict:
        """What the loop carries between env steps: resume restores it (docs/resume.md)."""
        return {
            "obs": torch.from_numpy(np.array(obs)),
            "episode_return": torch.from_numpy(episode_return.copy()),
            "episode_length": torch.from_numpy(episode_length.copy()),
            "env": env_state(envs),
            "eval_env": env_state(eval_env),
            "rng": rng_states(),
            "pending_metrics": updates.state_dict(),
            "metrics_bytes": logger.sync(),
            "wandb_id": logger.wandb_id,
            "elapsed_s": time.perf_counter() - start,
            "eval_time_s": eval_time,
        }

    def payload(eval_mean: float | None) -> dict:
        return {"config": config, "schemas": schemas, "agent": agent.state_dict(), "counters": asdict(counters),
                "eval_mean_return": eval_mean}

    def check_finite() -> None:
        """Stop before diverged weights reach an evaluation or a checkpoint."""
        if not weights_finite(agent):
            diverged("the network weights")
        if not updates.finite():
            diverged("train/loss or train/q since the last metrics row")

    def diverged(what: str) -> None:
        logger.flush()
        good = f"{checkpoints / 'last.pt'} from step {saved_step}" if saved_step is not None else "none was written yet"
        raise DivergenceError(
            f"training diverged at step {counters.env_steps}: {what} became non-finite (NaN/inf). Last metrics: "
            f"{_row_text(last_row) or 'none'}. Last good checkpoint: {good}; metrics.csv is flushed. "
            "Lower agent.lr or agent.max_grad_norm, or try agent.loss=huber"
        )

    def save_last(eval_mean: float | None) -> None:
        nonlocal saved_step
        saved_step = counters.env_steps
        write_last(checkpoints, {**payload(eval_mean), "train": training_state()},
                   replay if save_replay else None, counters.env_steps)

    def log(row: dict) -> None:
        nonlocal last_row
        logger.log(counters.env_steps, row)
        last_row = {"step": counters.env_steps, **row}

    counters = Counters(
        next_train_at=max(cfg.agent.learning_starts, cfg.agent.train_freq),
        next_eval_at=cfg.eval_every or cfg.total_steps + 1,
        next_checkpoint_at=cfg.checkpoint_every or cfg.total_steps + 1,
    )
    a = cfg.agent
    updates = UpdateMetrics()
    learner = Learner(agent, updates, overlap=cfg.overlap,
                      update_priorities=replay.update_priorities if a.prioritized else None)
    # uniform flat replay: a round's batches drawn and gathered at once (prioritized replay: one at a time)
    sample_round = (None if a.prioritized or not isinstance(replay, ReplayBuffer)
                    else lambda count: replay.sample_round(a.batch_size, count))
    episode_return = np.zeros(n_envs)
    episode_length = np.zeros(n_envs, dtype=np.int64)
    last_return = float("nan")
    last_row: dict = {}
    saved_step = resume["counters"]["env_steps"] if resume is not None else None
    start = time.perf_counter()
    cpu_start = time.process_time()  # CPU seconds too: on a shared machine wall time also counts other jobs
    eval_time = eval_cpu = 0.0
    progress_pending = 0

    if saved is None:
        obs, _ = envs.reset(seed=cfg.seed)
        if sequences:
            agent.reset_state(np.ones(n_envs, dtype=bool))
    else:
        agent.load_state_dict(resume["agent"])
        counters = Counters(**resume["counters"])
        counters.next_eval_at = next_multiple(counters.env_steps, cfg.eval_every, cfg.total_steps)
        counters.next_checkpoint_at = next_multiple(counters.env_steps, cfg.checkpoint_every, cfg.total_steps)
        if not load_replay(checkpoints, resume, replay):  # empty replay: collect learning_starts steps first
            wait = counters.env_steps + a.learning_starts - counters.next_train_at
            counters.next_train_at += max(0, -(-wait // a.train_freq)) * a.train_freq
        updates.load_state_dict(saved["pending_metrics"])
        if saved["eval_env"] is not None:
            load_env_state(eval_env, saved["eval_env"])
        if saved["env"] is not None:
            load_env_state(envs, saved["env"])
            obs = saved["obs"].numpy().copy()
            episode_return = saved["episode_return"].numpy().copy()
            episode_length = saved["episode_length"].numpy().copy()
        else:  # Atari: the games in progress are not saved; fresh ones start and the old ones are not counted
            obs, _ = envs.reset(seed=cfg.seed + counters.env_steps)
            if sequences:
                agent.reset_state(np.ones(n_envs, dtype=bool))
        load_rng_states(saved["rng"])
        start -= saved["elapsed_s"]
        eval_time = saved["eval_time_s"]
        if cfg.logger.progress:
            print(f"[rlcore] resumed at step {counters.env_steps} ({counters.episodes} episodes, "
                  f"{counters.updates} updates, replay {len(replay)} transitions)")
    progress = Progress(cfg.total_steps, initial=counters.env_steps, enabled=cfg.logger.progress)

    def train_sps() -> float:
        return counters.env_steps / max(time.perf_counter() - start - eval_time, 1e-9)

    stop = StopSignals().install()
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
            # with a round in flight (overlap) the lr change and a due target sync wait for its end (Learner.wait)
            agent.advance(counters.env_steps, round_in_flight=learner.busy)

            while counters.env_steps >= counters.next_train_at:
                counters.next_train_at += a.train_freq
                if len(replay) >= a.batch_size:
                    learner.submit(lambda: replay.sample(a.batch_size), a.gradient_steps, sample_round)
                    counters.updates += a.gradient_steps

            if done.any():  # one row per vector step: the mean over the episodes that just ended
                finished = np.flatnonzero(done)
                counters.episodes += len(finished)
                last_return = float(episode_return[finished].mean())
                trained = updates.pop()
                log({
                    "rollout/episode": counters.episodes,
                    "rollout/episode_return": last_return,
                    "rollout/episode_length": float(episode_length[finished].mean()),
                    "rollout/epsilon": agent.epsilon,
                    **trained,
                    "train/updates": counters.updates,
                    "time/sps": train_sps(),
                    "time/elapsed_s": time.perf_counter() - start,
                })
                bad = [k for k in ("train/loss", "train/q") if k in trained and not math.isfinite(trained[k])]
                if bad:
                    diverged(" and ".join(bad))
                episode_return[finished] = 0.0
                episode_length[finished] = 0

            progress_pending += n_envs
            if progress_pending >= 256 or counters.env_steps >= cfg.total_steps:
                progress.update(progress_pending, ret=last_return, eps=agent.epsilon)
                progress_pending = 0

            if counters.env_steps >= counters.next_eval_at:
                counters.next_eval_at += cfg.eval_every
                eval_start, eval_cpu_start = time.perf_counter(), time.process_time()
                learner.wait()
                check_finite()
                returns, _ = evaluate(agent, eval_env, cfg.eval_episodes, epsilon=eval_epsilon(cfg))
                mean, std = float(returns.mean()), float(returns.std())
                log({
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
                    save_checkpoint(checkpoints / "best.pt", payload(mean))
                save_last(mean)
                eval_time += time.perf_counter() - eval_start
                eval_cpu += time.process_time() - eval_cpu_start
                if cfg.logger.progress:
                    progress.bar.write(f"[eval] step {counters.env_steps}: return {mean:.1f} ± {std:.1f}")

            if counters.env_steps >= counters.next_checkpoint_at:
                counters.next_checkpoint_at += cfg.checkpoint_every
                learner.wait()
                check_finite()
                save_last(None)

            if stop.received is not None:  # the safe point: the step is complete, nothing is half-written
                learner.wait()
                check_finite()
                save_last(None)
                progress.close()
                raise TrainingInterrupted(
                    f"{stop.name} received: saved {checkpoints / 'last.pt'} at step {counters.env_steps}.\n"
                    f"resume with: python train.py resume={run_dir}",
                    exit_code=128 + stop.received,
                )
        learner.wait()
        check_finite()
    finally:
        stop.restore()
        learner.close()
        progress.close()
        logger.flush()

    wall_train = time.perf_counter() - start
    cpu_train = time.process_time() - cpu_start - eval_cpu
    sps = train_sps()
    # taken before the final evaluation (which draws from the eval env and the agent's generator), so that a
    # resume with a larger total_steps continues from the state training ended in
    end = {**payload(None), "train": training_state()}
    final_returns, _ = evaluate(agent, eval_env, cfg.final_eval_episodes, epsilon=eval_epsilon(cfg))
    final_mean, final_std = float(final_returns.mean()), float(final_returns.std())
    write_last(checkpoints, {**end, "eval_mean_return": final_mean}, replay if save_replay else None, counters.env_steps)
    if final_mean > counters.best_eval or not (checkpoints / "best.pt").exists():
        counters.best_eval = final_mean
        save_checkpoint(checkpoints / "best.pt", payload(final_mean))
    logger.log(counters.env_steps, {"eval/mean_return": final_mean, "eval/std_return": final_std,
                                    "train/updates": counters.updates, "time/sps": sps,
                                    "time/elapsed_s": time.perf_counter() - start})
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
        "train_cpu_s": round(cpu_train, 3),  # CPU time of the training loop (all threads), evaluations excluded
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
    video = None
    if cfg.logger.video:  # one greedy episode of the final policy, for W&B and TensorBoard (and the run folder)
        video = record_episode(agent, cfg, run_dir / "eval_video.mp4", cfg.seed, eval_epsilon(cfg))
    logger.close(curve=run_dir / "learning_curve.png", video=video)  # W&B and TensorBoard get both
    return summary


def eval_epsilon(cfg: TrainConfig) -> float:
    """ε used when evaluating: 0 (greedy) unless the env family's protocol says otherwise (Atari: 0.05)."""
    return float(getattr(cfg.env, "eval_epsilon", 0.0))
