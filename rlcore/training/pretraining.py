"""The autoencoder pretraining loop: gather frames → (layer-wise phase) → epochs → validate → encoder.pt.

Data: a dataset env (``env=MNIST``/``env=Digits``) gives its training images directly
(:func:`envs.dataset_env.dataset_splits`; its validation split is the held-out set). Any other env is played
by a uniformly random policy for ``agent.frames`` observations, kept in the observation space's dtype
(uint8 for Atari: 4x less memory); the *last* ``agent.val_fraction`` of them are held out, so validation
frames come from later play rather than being near-duplicates of neighbouring training frames.

Counting: ``step`` in metrics.csv and ``total_steps``/``train_sps`` in summary.json count training samples
processed (batch size × gradient steps), the autoencoder's analogue of env steps. One metrics row per epoch
(plus one per layer-wise epoch of a stacked autoencoder).

Files: config.yaml, metrics.csv, checkpoints/last.pt (end of every epoch) and best.pt (lowest validation
loss), ``encoder.pt`` holding the encoder of the *best validation epoch* (what ``net.pretrained=<run_dir>``
loads), reconstructions.png from that same model, learning_curve.png (reconstruction loss per epoch) and
summary.json. An autoencoder has no return: ``eval_mean_return`` is null in summary.json and checkpoints;
the model-selection figure is ``best_val_recon_loss``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.autoencoder import AutoencoderAgent
from envs import DatasetEnvConfig, make_env
from envs.dataset_env import dataset_splits
from envs.datasets import train_val_split
from nets import save_encoder
from rlcore.base.errors import RLCoreError
from rlcore.policy import load_agent, resolve_checkpoint
from rlcore.schema import TrainConfig
from rlcore.training.context import RunContext
from rlcore.training.evaluation import reset_finished
from rlcore.training.loggers import Progress
from rlcore.training.plots import plot_epoch_curves, subplots

FIELDS = (
    "epoch",
    "train/loss",
    "train/recon_loss",
    "train/l1_activity",
    "train/kl_sparsity",
    "train/l2_weight",
    "val/recon_loss",
    "layerwise/layer",
    "layerwise/recon_loss",
    "train/updates",
    "time/sps",
    "time/elapsed_s",
)


@dataclass
class Counters:
    epoch: int = 0
    updates: int = 0
    samples: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    best_step: int = 0  # the training samples processed when best.pt was saved


def collect_frames(cfg: TrainConfig, seed: int) -> tuple[np.ndarray, np.ndarray, gym.Space, int]:
    """Training and validation observations, the observation space, and the env steps it took to get them."""
    if isinstance(cfg.env, DatasetEnvConfig):
        splits = dataset_splits(cfg.env, seed)
        train, val = splits["train"], splits["val"]
        if val is None:  # env.validation_fraction=0: carve our own held-out images
            train, val = train_val_split(train, cfg.agent.val_fraction, seed)
        assert val is not None  # train_val_split with a fraction > 0 always holds some out
        envs = make_env(cfg.env, seed, n_envs=1)
        space = envs.single_observation_space
        envs.close()
        return np.asarray(train.images), np.asarray(val.images), space, 0
    envs = make_env(cfg.env, seed)
    space = envs.single_observation_space
    assert space.shape is not None
    frames = np.empty((cfg.agent.frames, *space.shape), dtype=space.dtype)
    envs.action_space.seed(seed)
    obs, _ = envs.reset(seed=seed)
    policy = None
    if cfg.agent.policy:  # a trained agent plays instead of the random policy
        policy, policy_cfg, _ = load_agent(resolve_checkpoint(cfg.agent.policy, None), cfg.device)
        if dataclasses.replace(policy_cfg.env, n_envs=cfg.env.n_envs) != cfg.env:  # the env copies may differ
            raise RLCoreError(
                f"config key 'agent.policy': {cfg.agent.policy} was trained on env {policy_cfg.env.name} with other "
                f"settings than this run's env {cfg.env.name}; collect frames with a policy of the same env config"
            )
    filled, env_steps = 0, 0
    while filled < len(frames):
        take = min(len(obs), len(frames) - filled)
        frames[filled : filled + take] = obs[:take]
        filled += take
        if policy is None:
            actions = envs.action_space.sample()
        else:
            actions = policy.act(obs, explore=False, epsilon=cfg.agent.policy_epsilon)
        obs, _, terminated, truncated, _ = envs.step(actions)
        if policy is not None:
            reset_finished(
                policy, terminated | truncated
            )  # a recurrent (DRQN) policy starts each episode afresh
        env_steps += envs.num_envs
    envs.close()
    n_val = min(max(1, round(len(frames) * cfg.agent.val_fraction)), len(frames) - 1)  # both parts non-empty
    return frames[:-n_val], frames[-n_val:], space, env_steps


def train_autoencoder(run: RunContext, resume: dict | None = None) -> dict:
    """Pretrain the net as the encoder of an autoencoder and write the run's files; returns the summary."""
    cfg = run.cfg
    run.begin()
    device, run_dir = run.device, run.run_dir
    a = cfg.agent
    start = time.perf_counter()
    train_np, val_np, space, env_steps = collect_frames(cfg, cfg.seed)
    agent: AutoencoderAgent = run.build_agent(space, None)
    train = torch.as_tensor(train_np, device=device)
    val = torch.as_tensor(val_np, device=device)
    logger = run.logger(FIELDS)
    batches_per_epoch = math.ceil(len(train) / a.batch_size)
    total_updates = a.steps or a.epochs * batches_per_epoch
    run.announce(
        f"autoencoder on {cfg.env.name} | {len(train)} train / {len(val)} val frames "
        f"{tuple(train.shape[1:])} {train_np.dtype}",
        agent.model,
        space,
    )
    counters = Counters()
    generator = torch.Generator().manual_seed(cfg.seed)  # minibatch order

    def checkpoint(name: str) -> None:
        run.save(name, agent, asdict(counters), None)

    if a.stacked:  # greedy layer-wise phase (Bengio et al. 2007), then end-to-end fine-tuning below
        for layer, losses in enumerate(agent.pretrain_layerwise(train), start=1):
            for loss in losses:
                logger.log(
                    0,
                    {
                        "layerwise/layer": layer,
                        "layerwise/recon_loss": loss,
                        "time/elapsed_s": time.perf_counter() - start,
                    },
                )

    train_start = time.perf_counter()
    best_model = copy.deepcopy(agent.model.state_dict())
    progress = Progress(total_updates, enabled=cfg.logger.progress, desc="pretrain")
    try:
        while counters.updates < total_updates:
            sums: dict[str, torch.Tensor] = {}
            epoch_samples = 0
            order = torch.randperm(len(train), generator=generator).to(device)
            for begin in range(0, len(train), a.batch_size):
                if counters.updates >= total_updates:
                    break
                batch = train[order[begin : begin + a.batch_size]]
                for key, value in agent.update(batch).items():
                    sums[key] = sums.get(key, 0.0) + value * len(batch)
                counters.updates += 1
                counters.samples += len(batch)
                epoch_samples += len(batch)
                progress.update(1)
            counters.epoch += 1
            val_loss = agent.validation_loss(val)
            row = {f"train/{k}": (v / epoch_samples).item() for k, v in sums.items()}
            sps = counters.samples / max(time.perf_counter() - train_start, 1e-9)
            logger.log(
                counters.samples,
                {
                    "epoch": counters.epoch,
                    **row,
                    "val/recon_loss": val_loss,
                    "train/updates": counters.updates,
                    "time/sps": sps,
                    "time/elapsed_s": time.perf_counter() - start,
                },
            )
            logger.flush()
            progress.update(0, recon=row["train/recon_loss"], val=val_loss)
            run.guard_finite(f"epoch {counters.epoch}", {**row, "val/recon_loss": val_loss}, agent.model)
            if val_loss < counters.best_val:
                counters.best_val, counters.best_epoch = val_loss, counters.epoch
                counters.best_step = counters.samples
                best_model = copy.deepcopy(agent.model.state_dict())
                checkpoint("best.pt")
            checkpoint("last.pt")
    finally:
        progress.close()
        logger.close()
    train_time = time.perf_counter() - train_start
    final_recon, final_val = row["train/recon_loss"], val_loss

    agent.model.load_state_dict(best_model)  # the saved encoder and the picture come from the best epoch
    encoder_path = save_encoder(agent.encoder, run_dir / "encoder.pt", asdict(cfg.net))
    plot_reconstructions(
        agent,
        val[:8],
        run_dir / "reconstructions.png",
        f"{cfg.env.name} validation frames, best epoch {counters.best_epoch}",
    )
    plot_recon_curve(
        run_dir / "metrics.csv",
        run_dir / "learning_curve.png",
        f"autoencoder on {cfg.env.name} (seed {cfg.seed})",
    )
    summary = run.write_summary(
        total_steps=counters.samples,
        updates=counters.updates,
        epochs=counters.epoch,
        train_frames=len(train),
        val_frames=len(val),
        collect_env_steps=env_steps,
        wall_time_s=round(time.perf_counter() - start, 3),
        train_time_s=round(train_time, 3),
        train_sps=round(counters.samples / max(train_time, 1e-9), 1),
        eval_mean_return=None,  # an autoencoder has no return; see best_val_recon_loss
        final_recon_loss=final_recon,
        val_recon_loss=final_val,
        best_val_recon_loss=counters.best_val,
        best_epoch=counters.best_epoch,
        best_checkpoint_step=counters.best_step,
        encoder=str(encoder_path),
    )
    return summary


def plot_reconstructions(agent: object, obs: torch.Tensor, out_png: Path, title: str) -> None:
    """Originals in the top row, reconstructions below (the last frame of a stack); bars for vector observations."""
    target = agent.model.target(obs).float().cpu()  # type: ignore[attr-defined]
    recon = agent.reconstruct(obs).float().cpu()  # type: ignore[attr-defined]
    n = len(obs)
    if target.dim() >= 3:  # images: (C, H, W) shows channel -1 (the newest frame), (H, W) as is
        fig, axes = subplots(2, n, figsize=(1.4 * n, 3.2), dpi=100, squeeze=False)
        for i in range(n):
            for row, images in enumerate((target, recon)):
                image = images[i] if images.dim() == 3 else images[i, -1]
                axes[row, i].imshow(image.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                axes[row, i].set_xticks([])
                axes[row, i].set_yticks([])
        axes[0, 0].set_ylabel("original")
        axes[1, 0].set_ylabel("reconstruction")
        stack = " (last frame of each stack)" if target.dim() == 4 and target.shape[1] > 1 else ""
        fig.suptitle(title + stack, fontsize=9)
    else:  # vector observations: grouped bars per sample
        flat_t, flat_r = target.flatten(1), recon.flatten(1)
        fig, axes = subplots(1, n, figsize=(1.8 * n, 2.6), dpi=100, squeeze=False)
        x = np.arange(flat_t.shape[1])
        for i in range(n):
            axes[0, i].bar(x - 0.2, flat_t[i].numpy(), 0.4, label="original")
            axes[0, i].bar(x + 0.2, flat_r[i].numpy(), 0.4, label="reconstruction")
            axes[0, i].set_xticks(x)
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(title + " (observation components)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)


def plot_recon_curve(metrics_csv: Path, out_png: Path, title: str) -> None:
    """Train and validation reconstruction loss per epoch (log scale)."""
    series = [
        ("train/recon_loss", "train (corrupted input when denoising)"),
        ("val/recon_loss", "validation (clean)"),
    ]
    plot_epoch_curves(metrics_csv, out_png, title, series, "reconstruction loss", log_y=True)
