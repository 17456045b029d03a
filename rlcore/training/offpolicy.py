"""The off-policy training loop (DQN and its family): collect → store → learn → evaluate → checkpoint.

Everything is counted in env steps across all vector envs: ε schedule, target sync, ``train_freq``,
``learning_starts``, ``eval_every`` and ``total_steps``. The loop's state is explicit: one
:class:`OffPolicyRun` holds the envs, agent, replay, learner, logger, counters and the running episode
statistics, and each phase of a step is one method (``collect``, ``learn``, ``log_episodes``, ``evaluate``,
``save_last``). The agent is reached only through :class:`rlcore.base.protocols.OffPolicyAgent`.

With ``overlap=true`` the updates run in one background thread while the main thread steps the env for
the next ``train_freq`` steps (:mod:`rlcore.training.learner`): acting is one update stale, and every
round still starts at the same env step, on the same sampled batch, with the same target net and learning
rate as without overlap (the agent applies a due sync or lr change when the round ends, ``begin_round``).

Prioritized replay: each batch carries its buffer positions, and the TD errors of its update set their new
priorities right after that update. Inline, the next batch is sampled only then (as SB3 samples right
before each gradient step); with overlap, the batches of a round are sampled up front in the main thread
(a background sample would race with ``replay.add``), so they see the priorities of the round before.

Resume (``resume=<run_dir>``, docs/resume.md): ``last.pt`` also holds everything the loop carries between
env steps (observations, running episode returns, update metrics not yet logged, env and RNG states, the
length of metrics.csv), so a resumed CPU run writes the same metrics as one that never stopped. SIGINT and
SIGTERM are turned into a save at the end of the current step (:class:`rlcore.training.resume.StopSignals`).

Divergence guard: a non-finite ``train/loss`` or ``train/q`` in a logged row, or a non-finite weight or
pending metric before an evaluation or checkpoint, stops training with :class:`DivergenceError`; the
diverged weights are never written over ``last.pt``/``best.pt``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs import DatasetEnvConfig, make_env
from envs.state import env_state, load_env_state
from rlcore.base.checkpoint import save_checkpoint
from rlcore.base.errors import CheckpointError, DivergenceError, TrainingInterrupted
from rlcore.base.protocols import OffPolicyAgent
from rlcore.base.seeding import EVAL_SEED_OFFSET
from rlcore.replay import FrameReplayBuffer, ReplayBuffer, SequenceReplay, make_replay, make_sequence_replay
from rlcore.schema import TrainConfig
from rlcore.training.context import RunContext
from rlcore.training.evaluation import evaluate
from rlcore.training.learner import Learner, UpdateMetrics
from rlcore.training.loggers import Progress, truncate_metrics
from rlcore.training.plots import plot_learning_curve
from rlcore.training.resume import (
    StopSignals,
    interrupt_with,
    load_replay,
    load_rng_states,
    rng_states,
    write_last,
)
from rlcore.training.video import record_episode

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
    best_step: int = -1  # the env step best.pt was saved at (-1: none yet)


def weights_finite(agent: OffPolicyAgent) -> bool:
    """Whether every parameter of the online network is finite (one sync)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in agent.online.parameters()]).all())


def _row_text(row: dict) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in row.items()
        if not k.startswith("time/")
    )


def next_multiple(step: int, every: int, total: int) -> int:
    """The first multiple of ``every`` after ``step`` (``total + 1``, i.e. never, when ``every`` is 0)."""
    return (step // every + 1) * every if every else total + 1


def check_metrics_file(path: Path, recorded: int) -> None:
    """A resume appends to metrics.csv from the length ``last.pt`` recorded: a missing or shorter file (deleted,
    truncated or replaced since) would lose the run's history or glue rows into the header, so refuse."""
    if not path.exists():
        raise CheckpointError(
            f"{path} is missing, but checkpoints/last.pt recorded {recorded} bytes of it; restore "
            "it (the run's history) or start a new run with another run_dir="
        )
    if path.stat().st_size < recorded:
        raise CheckpointError(
            f"{path} has {path.stat().st_size} bytes, fewer than the {recorded} checkpoints/last.pt "
            "recorded: it was truncated or replaced since; restore it or start a new run"
        )


def eval_epsilon(cfg: TrainConfig) -> float:
    """ε used when evaluating: 0 (greedy) unless the env family's protocol says otherwise (Atari: 0.05)."""
    return float(getattr(cfg.env, "eval_epsilon", 0.0))


def replay_in_checkpoints(cfg: TrainConfig, replay: object) -> bool:
    """``checkpoint.replay``; null means on, except for a frame replay (Atari: up to ~7 GB per write)."""
    if cfg.checkpoint.replay is not None:
        return cfg.checkpoint.replay
    inner = replay.inner if isinstance(replay, SequenceReplay) else replay  # a sequence replay wraps one
    return not isinstance(inner, FrameReplayBuffer)


class OffPolicyRun:
    """One off-policy run's state, from the first env step (or a resumed checkpoint) to the summary."""

    def __init__(self, run: RunContext, resume: dict | None) -> None:
        cfg = run.cfg
        run.begin(flush_denormal=cfg.flush_denormal)
        self.run, self.cfg, self.a = run, cfg, cfg.agent
        self.envs = make_env(cfg.env, cfg.seed)
        self.eval_env = make_env(cfg.env, cfg.seed + EVAL_SEED_OFFSET, evaluation=True)
        # evaluation's own generator (its ε-greedy draws): the evaluation schedule never moves training's draws
        self.eval_rng = np.random.default_rng(cfg.seed + EVAL_SEED_OFFSET)
        self.agent: OffPolicyAgent = run.build_agent(
            self.envs.single_observation_space, self.envs.single_action_space
        )
        self.n_envs = self.envs.num_envs
        a = self.a
        # DRQN (a recurrent net): the replay samples sequences and the agent carries one hidden state per env
        self.sequences = self.agent.recurrent
        if self.sequences:
            self.replay: Any = make_sequence_replay(
                a.buffer_size,
                self.envs,
                burn_in=a.burn_in,
                sequence_length=a.sequence_length,
                state_size=self.agent.state_size,
                seed=cfg.seed,
                device=run.device,
                replay_device=cfg.replay.device,
                options=a,
                total_steps=cfg.total_steps,
            )
        else:
            self.replay = make_replay(
                a.buffer_size,
                self.envs,
                seed=cfg.seed,
                device=run.device,
                replay_device=cfg.replay.device,
                options=a,
                total_steps=cfg.total_steps,
            )
        self.save_replay = replay_in_checkpoints(cfg, self.replay)
        self.saved = resume["train"] if resume is not None else None
        if self.saved is not None:  # rows logged after that checkpoint are logged again below
            check_metrics_file(run.run_dir / "metrics.csv", self.saved["metrics_bytes"])
            truncate_metrics(run.run_dir / "metrics.csv", self.saved["metrics_bytes"])
        self.logger = run.logger(FIELDS, wandb_id=self.saved["wandb_id"] if self.saved is not None else None)
        run.announce(
            f"{a.name} on {cfg.env.name} | {self.n_envs} env(s)",
            self.agent.online,
            self.envs.single_observation_space,
        )
        if cfg.logger.progress and self.save_replay and isinstance(self.replay, FrameReplayBuffer):
            print(
                f"[rlcore] checkpoint.replay=true: each last.pt write also writes the replay "
                f"(up to {self.replay.nbytes() / 1e9:.2f} GB when full); checkpoint.replay=false turns it off"
            )
        self.counters = Counters(
            next_train_at=max(a.learning_starts, a.train_freq),
            next_eval_at=cfg.eval_every or cfg.total_steps + 1,
            next_checkpoint_at=cfg.checkpoint_every or cfg.total_steps + 1,
        )
        if self.counters.next_train_at > cfg.total_steps:
            print(
                f"[rlcore] warning: agent.learning_starts={a.learning_starts} and agent.train_freq={a.train_freq} "
                f"put the first update after total_steps={cfg.total_steps}: this run makes no update",
                file=sys.stderr,
            )
        self.updates = UpdateMetrics()
        self.learner = Learner(
            self.agent,
            self.updates,
            overlap=cfg.overlap,
            update_priorities=self.replay.update_priorities if a.prioritized else None,
        )
        # uniform flat replay: a round's batches drawn and gathered at once (prioritized replay: one at a time)
        self.sample_round = (
            None
            if a.prioritized or not isinstance(self.replay, ReplayBuffer)
            else lambda count: self.replay.sample_round(a.batch_size, count)
        )
        self.episode_return = np.zeros(self.n_envs)
        self.episode_length = np.zeros(self.n_envs, dtype=np.int64)
        self.last_return = float("nan")
        self.last_row: dict = {}
        self.saved_step: int | None = resume["counters"]["env_steps"] if resume is not None else None
        self.start = time.perf_counter()
        self.cpu_start = (
            time.process_time()
        )  # CPU seconds too: on a shared machine wall time also counts other jobs
        self.eval_time = self.eval_cpu = 0.0
        if resume is None:
            self.obs, _ = self.envs.reset(seed=cfg.seed)
            self.agent.reset_state(np.ones(self.n_envs, dtype=bool))
        else:
            self.restore(resume)

    # -- resume ------------------------------------------------------------------------------------------
    def restore(self, resume: dict) -> None:
        """Continue from a ``last.pt``: the agent, the counters, the replay and every state the loop carries."""
        cfg, a, saved, counters = self.cfg, self.a, resume["train"], Counters(**resume["counters"])
        self.agent.load_state_dict(resume["agent"])
        counters.next_eval_at = next_multiple(counters.env_steps, cfg.eval_every, cfg.total_steps)
        counters.next_checkpoint_at = next_multiple(counters.env_steps, cfg.checkpoint_every, cfg.total_steps)
        # checkpoint.replay=false on resume: start from an empty replay (e.g. when its file is lost)
        loaded = cfg.checkpoint.replay is not False and load_replay(
            self.run.checkpoints, resume, self.replay, self.run.run_dir
        )
        if not loaded:  # empty: collect learning_starts steps first
            wait = counters.env_steps + a.learning_starts - counters.next_train_at
            counters.next_train_at += max(0, -(-wait // a.train_freq)) * a.train_freq
        self.counters = counters
        self.updates.load_state_dict(saved["pending_metrics"])
        if saved["eval_env"] is not None:
            load_env_state(self.eval_env, saved["eval_env"])
        if "eval_rng" in saved:  # checkpoints from before evaluation had its own generator lack it
            self.eval_rng.bit_generator.state = saved["eval_rng"]
        if saved["env"] is not None:
            load_env_state(self.envs, saved["env"])
            self.obs = saved["obs"].numpy().copy()
            self.episode_return = saved["episode_return"].numpy().copy()
            self.episode_length = saved["episode_length"].numpy().copy()
        else:  # Atari: the games in progress are not saved; fresh ones start and the old ones are not counted
            self.obs, _ = self.envs.reset(seed=cfg.seed + counters.env_steps)
            self.agent.reset_state(np.ones(self.n_envs, dtype=bool))
        load_rng_states(saved["rng"])
        self.start -= saved["elapsed_s"]
        self.eval_time = saved["eval_time_s"]
        if cfg.logger.progress:
            print(
                f"[rlcore] resumed at step {counters.env_steps} ({counters.episodes} episodes, "
                f"{counters.updates} updates, replay {len(self.replay)} transitions)"
            )

    def training_state(self) -> dict:
        """What the loop carries between env steps: resume restores it (docs/resume.md)."""
        return {
            "obs": torch.from_numpy(np.array(self.obs)),
            "episode_return": torch.from_numpy(self.episode_return.copy()),
            "episode_length": torch.from_numpy(self.episode_length.copy()),
            "env": env_state(self.envs),
            "eval_env": env_state(self.eval_env),
            "eval_rng": self.eval_rng.bit_generator.state,
            "rng": rng_states(),
            "pending_metrics": self.updates.state_dict(),
            "metrics_bytes": self.logger.sync(),
            "wandb_id": self.logger.wandb_id,
            "elapsed_s": time.perf_counter() - self.start,
            "eval_time_s": self.eval_time,
        }

    # -- checkpoints and the divergence guard ------------------------------------------------------------
    def payload(self, eval_mean: float | None) -> dict:
        return self.run.payload(self.agent, asdict(self.counters), eval_mean)

    def save_last(self, eval_mean: float | None) -> None:
        self.saved_step = self.counters.env_steps
        write_last(
            self.run.checkpoints,
            {**self.payload(eval_mean), "train": self.training_state()},
            self.replay if self.save_replay else None,
            self.counters.env_steps,
        )

    def check_finite(self) -> None:
        """Stop before diverged weights reach an evaluation or a checkpoint."""
        if not weights_finite(self.agent):
            self.diverged("the network weights")
        if not self.updates.finite():
            self.diverged("train/loss or train/q since the last metrics row")

    def diverged(self, what: str) -> None:
        self.logger.flush()
        last = self.run.checkpoints / "last.pt"
        good = (
            f"{last} from step {self.saved_step}" if self.saved_step is not None else "none was written yet"
        )
        raise DivergenceError(
            f"training diverged at step {self.counters.env_steps}: {what} became non-finite (NaN/inf). Last "
            f"metrics: {_row_text(self.last_row) or 'none'}. Last good checkpoint: {good}; metrics.csv is "
            "flushed. Lower agent.lr or agent.max_grad_norm, or try agent.loss=huber"
        )

    def log(self, row: dict) -> None:
        self.logger.log(self.counters.env_steps, row)
        self.last_row = {"step": self.counters.env_steps, **row}

    def train_sps(self) -> float:
        return self.counters.env_steps / max(time.perf_counter() - self.start - self.eval_time, 1e-9)

    # -- one env step, phase by phase --------------------------------------------------------------------
    def collect(self) -> np.ndarray:
        """Act, step the envs, store the transitions; returns which envs ended an episode."""
        agent, envs, obs = self.agent, self.envs, self.obs
        state_before = agent.replay_state(self.n_envs) if self.sequences else None
        actions = agent.act(obs, explore=True)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions)
        done = terminated | truncated
        stored_next = next_obs
        if done.any():  # same-step autoreset: the real last observation is in final_obs
            stored_next = next_obs.copy()
            for i in np.flatnonzero(done):
                stored_next[i] = infos["final_obs"][i]
        learner_terminal = terminated | infos["life_loss"] if "life_loss" in infos else terminated
        stored_rewards = np.sign(rewards) if self.cfg.env.clip_rewards else rewards
        if self.sequences:
            self.replay.add(
                obs,
                stored_next,
                actions,
                stored_rewards,
                learner_terminal,
                truncated,
                episode_ends=done,
                states=state_before,
            )
            agent.reset_state(done)  # the envs that just reset start their next step from a fresh state
        else:
            self.replay.add(obs, stored_next, actions, stored_rewards, learner_terminal, truncated)
        self.obs = next_obs
        self.episode_return += rewards
        self.episode_length += 1
        self.counters.env_steps += self.n_envs
        # with a round in flight (overlap) the lr change and a due target sync wait for its end (Learner.wait)
        agent.advance(self.counters.env_steps, round_in_flight=self.learner.busy)
        return done

    def learn(self) -> None:
        """The rounds of updates that fell due at this step (``train_freq``, once the replay holds a batch)."""
        a, counters = self.a, self.counters
        while counters.env_steps >= counters.next_train_at:
            counters.next_train_at += a.train_freq
            if len(self.replay) >= a.batch_size:
                self.learner.submit(
                    lambda: self.replay.sample(a.batch_size), a.gradient_steps, self.sample_round
                )
                counters.updates += a.gradient_steps

    def log_episodes(self, done: np.ndarray) -> None:
        """One row per vector step in which episodes ended: the mean over those episodes."""
        finished = np.flatnonzero(done)
        self.counters.episodes += len(finished)
        self.last_return = float(self.episode_return[finished].mean())
        trained = self.updates.pop()
        self.log(
            {
                "rollout/episode": self.counters.episodes,
                "rollout/episode_return": self.last_return,
                "rollout/episode_length": float(self.episode_length[finished].mean()),
                "rollout/epsilon": self.agent.epsilon,
                **trained,
                "train/updates": self.counters.updates,
                "time/sps": self.train_sps(),
                "time/elapsed_s": time.perf_counter() - self.start,
            }
        )
        bad = [k for k in ("train/loss", "train/q") if k in trained and not math.isfinite(trained[k])]
        if bad:
            self.diverged(" and ".join(bad))
        self.episode_return[finished] = 0.0
        self.episode_length[finished] = 0

    def evaluate(self, progress: Progress) -> None:
        """The periodic greedy evaluation: a metrics row, ``best.pt`` when it is the best so far, ``last.pt``."""
        cfg, counters = self.cfg, self.counters
        counters.next_eval_at += cfg.eval_every
        eval_start, eval_cpu_start = time.perf_counter(), time.process_time()
        self.learner.wait()
        self.check_finite()
        returns, _ = evaluate(
            self.agent, self.eval_env, cfg.eval_episodes, epsilon=eval_epsilon(cfg), rng=self.eval_rng
        )
        mean, std = float(returns.mean()), float(returns.std())
        self.log(
            {
                "eval/mean_return": mean,
                "eval/std_return": std,
                "rollout/epsilon": self.agent.epsilon,
                "train/updates": counters.updates,
                "time/sps": self.train_sps(),
                "time/elapsed_s": time.perf_counter() - self.start,
            }
        )
        self.logger.flush()
        if mean > counters.best_eval:
            counters.best_eval, counters.best_step = mean, counters.env_steps
            self.run.save("best.pt", self.agent, asdict(counters), mean)
        self.save_last(mean)
        self.eval_time += time.perf_counter() - eval_start
        self.eval_cpu += time.process_time() - eval_cpu_start
        if cfg.logger.progress:
            progress.bar.write(f"[eval] step {counters.env_steps}: return {mean:.1f} ± {std:.1f}")

    # -- the loop ----------------------------------------------------------------------------------------
    def train(self) -> None:
        cfg, counters = self.cfg, self.counters
        progress = Progress(cfg.total_steps, initial=counters.env_steps, enabled=cfg.logger.progress)
        progress_pending = 0
        stop = StopSignals().install()
        try:
            while counters.env_steps < cfg.total_steps:
                done = self.collect()
                self.learn()
                if done.any():
                    self.log_episodes(done)
                progress_pending += self.n_envs
                if progress_pending >= 256 or counters.env_steps >= cfg.total_steps:
                    progress.update(progress_pending, ret=self.last_return, eps=self.agent.epsilon)
                    progress_pending = 0
                if counters.env_steps >= counters.next_eval_at:
                    self.evaluate(progress)
                if counters.env_steps >= counters.next_checkpoint_at:
                    counters.next_checkpoint_at += cfg.checkpoint_every
                    self.learner.wait()
                    self.check_finite()
                    self.save_last(None)
                if stop.received is not None:  # the safe point: the step is complete, nothing is half-written
                    self.learner.wait()
                    self.check_finite()
                    self.save_last(None)
                    progress.close()
                    raise TrainingInterrupted(
                        f"{stop.name} received: saved {self.run.checkpoints / 'last.pt'} at step "
                        f"{counters.env_steps}.\nresume with: python train.py resume={self.run.run_dir}",
                        exit_code=128 + stop.received,
                    )
            self.learner.wait()
            self.check_finite()
        finally:
            stop.restore()
            self.learner.close()
            progress.close()
            self.logger.flush()

    def finish(self) -> dict:
        """The final evaluation, the last checkpoints, summary.json and the learning curve."""
        cfg, counters, run = self.cfg, self.counters, self.run
        wall_train = time.perf_counter() - self.start
        cpu_train = time.process_time() - self.cpu_start - self.eval_cpu
        sps = self.train_sps()
        # Saved before the final evaluation (which draws from the eval env and the agent's generator): a signal
        # or a crash during it loses no training, and a resume continues from the state training ended in.
        end = write_last(
            run.checkpoints,
            {**self.payload(None), "train": self.training_state()},
            self.replay if self.save_replay else None,
            counters.env_steps,
        )
        with interrupt_with(
            f"training finished and is saved in {run.checkpoints / 'last.pt'} (step "
            f"{counters.env_steps}); the final evaluation did not finish. Finish the run with: "
            f"python train.py resume={run.run_dir}"
        ):
            final_returns, _ = evaluate(
                self.agent,
                self.eval_env,
                cfg.final_eval_episodes,
                epsilon=eval_epsilon(cfg),
                progress="final evaluation" if cfg.logger.progress else None,
                rng=self.eval_rng,
            )
        final_mean, final_std = float(final_returns.mean()), float(final_returns.std())
        save_checkpoint(
            run.checkpoints / "last.pt", {**end, "eval_mean_return": final_mean}
        )  # its replay file stays
        if final_mean > counters.best_eval or not (run.checkpoints / "best.pt").exists():
            counters.best_eval, counters.best_step = final_mean, counters.env_steps
            run.save("best.pt", self.agent, asdict(counters), final_mean)
        self.logger.log(
            counters.env_steps,
            {
                "eval/mean_return": final_mean,
                "eval/std_return": final_std,
                "train/updates": counters.updates,
                "time/sps": sps,
                "time/elapsed_s": time.perf_counter() - self.start,
            },
        )
        self.envs.close()
        self.eval_env.close()
        figures: dict[str, Any] = {
            "total_steps": counters.env_steps,
            "episodes": counters.episodes,
            "updates": counters.updates,
            "wall_time_s": round(time.perf_counter() - self.start, 3),
            "train_time_s": round(wall_train - self.eval_time, 3),
            "train_sps": round(sps, 1),
            "train_cpu_s": round(
                cpu_train, 3
            ),  # CPU time of the training loop (all threads), evaluations excluded
            "eval_mean_return": final_mean,
            "eval_std_return": final_std,
            "eval_episodes": len(final_returns),
            "best_eval_mean_return": counters.best_eval,
            "best_checkpoint_step": counters.best_step,  # best.pt holds the weights of this step
        }
        if isinstance(cfg.env, DatasetEnvConfig):  # each test image answered once: the mean is the accuracy
            figures["test_accuracy"] = float(np.mean(final_returns == cfg.env.correct_reward))
        summary = run.write_summary(**figures)
        curve = run.run_dir / "learning_curve.png"
        self.logger.flush()  # the final evaluation's row is on disk before the curve is drawn from it
        plot_learning_curve(
            run.run_dir / "metrics.csv", curve, f"{cfg.agent.name} on {summary['env_id']} (seed {cfg.seed})"
        )
        video = None
        if (
            cfg.logger.video
        ):  # one greedy episode of the final policy, for W&B, TensorBoard and the run folder
            video = record_episode(
                self.agent, cfg, run.run_dir / "eval_video.mp4", cfg.seed, eval_epsilon(cfg)
            )
        self.logger.close(curve=curve, video=video)  # W&B and TensorBoard get both
        return summary


def train_off_policy(run: RunContext, resume: dict | None = None) -> dict:
    """Train ``run.cfg.agent`` on ``run.cfg.env`` and write the run's files; returns the summary.

    ``resume`` is the run's ``checkpoints/last.pt`` (loaded) to continue from (see docs/resume.md).
    """
    loop = OffPolicyRun(run, resume)
    loop.train()
    return loop.finish()
