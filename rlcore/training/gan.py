"""The adversarial loop (``agent=gan``): epochs of alternating D/G updates over a dataset's training images.

Data: the training split of a dataset env (``env=MNIST``/``env=Digits``; ``env.validation_fraction=0`` trains
on every training image). Counting: ``step`` in metrics.csv and ``total_steps``/``train_sps`` in summary.json
count real images processed (batch size x updates). One metrics row per epoch: the mean losses and the mean
discriminator outputs on real and fake images (D(x), D(G(z))).

Files: config.yaml, metrics.csv, checkpoints/last.pt (end of every epoch) and best.pt (the final model: a GAN
has no validation figure to select by), ``samples/epoch_<k>.png`` every ``agent.sample_every`` epochs and
``samples.png`` at the end, all from the same fixed noise (a conditional grid has one row per class),
``encoder.pt`` (the discriminator's extractor, what ``net.pretrained=<run_dir>`` loads), learning_curve.png
and summary.json (``eval_mean_return`` is null: a GAN has no return).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from envs import DatasetEnvConfig, make_env
from envs.dataset_env import dataset_splits
from nets import save_encoder
from rlcore.base.errors import ConfigError
from rlcore.base.protocols import AdversarialAgent
from rlcore.training.context import RunContext
from rlcore.training.loggers import Progress
from rlcore.training.plots import plot_epoch_curves, subplots

FIELDS = (
    "epoch",
    "train/d_loss",
    "train/g_loss",
    "train/d_real",
    "train/d_fake",
    "train/updates",
    "time/sps",
    "time/elapsed_s",
)


@dataclass
class Counters:
    epoch: int = 0
    updates: int = 0
    samples: int = 0


def tile(images: torch.Tensor, cols: int, pad: int = 1) -> np.ndarray:
    """(n, C, H, W) or (n, H, W) images in [0, 1] as one (rows*(H+pad), cols*(W+pad)) array (channel 0 shown)."""
    x = images.detach().float().cpu()
    if x.dim() == 4:
        x = x[:, 0]
    n, h, w = x.shape
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top : top + h, left : left + w] = x[i].clamp(0, 1).numpy()
    return canvas


def save_grid(images: torch.Tensor, cols: int, out_png: Path, title: str) -> None:
    """A grid of generated images as a PNG (white separators, grey scale)."""
    canvas = tile(images, cols)
    fig, ax = subplots(
        figsize=(max(3.0, cols * 0.6), max(3.0, canvas.shape[0] / canvas.shape[1] * cols * 0.6))
    )
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)


def grid_inputs(agent: AdversarialAgent, grid: int, z_dim: int, seed: int, device: torch.device) -> tuple:
    """The fixed noise of every grid (its own generator, so drawing it leaves training's noise alone) and, for
    a conditional GAN, the class of each grid row."""
    z = torch.randn(grid * grid, z_dim, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    labels = None
    if agent.n_classes:
        labels = (torch.arange(grid * grid) // grid % agent.n_classes).to(device)
    return z, labels


def train_gan(run: RunContext, resume: dict | None = None) -> dict:
    """Train the GAN and write the run's files; returns the summary."""
    cfg = run.cfg
    if not isinstance(cfg.env, DatasetEnvConfig):
        raise ConfigError(
            f"config key 'env': agent=gan trains on a dataset's images; env={cfg.env.name} is not a dataset "
            "env (use env=MNIST or env=Digits)"
        )
    run.begin()
    device, run_dir, a = run.device, run.run_dir, cfg.agent
    start = time.perf_counter()
    train_set = dataset_splits(cfg.env, cfg.seed)["train"]
    envs = make_env(cfg.env, cfg.seed, n_envs=1)
    space, classes = envs.single_observation_space, envs.single_action_space
    envs.close()
    agent: AdversarialAgent = run.build_agent(space, classes)
    if len(train_set) < a.batch_size:
        raise ConfigError(
            f"config key 'agent.batch_size': {a.batch_size} is more than the {len(train_set)} training images; "
            "lower it"
        )
    images = torch.as_tensor(np.asarray(train_set.images), device=device)
    labels = torch.as_tensor(np.asarray(train_set.labels), device=device)
    logger = run.logger(FIELDS)
    total_updates = a.steps or a.epochs * (len(images) // a.batch_size)
    kind = "conditional GAN" if agent.n_classes else "GAN"
    run.announce(
        f"{kind} on {cfg.env.name} | {len(images)} images {tuple(images.shape[1:])}", agent.encoder, space
    )
    counters = Counters()
    order_rng = torch.Generator().manual_seed(cfg.seed)  # minibatch order
    z_grid, y_grid = grid_inputs(agent, a.grid_size, a.z_dim, cfg.seed, device)
    both = nn.ModuleList([agent.generator, agent.discriminator])  # for the divergence guard

    def grid(name: str, title: str) -> Path:
        samples, _ = agent.sample(len(z_grid), y_grid, z_grid)
        path = run_dir / name
        save_grid(samples, a.grid_size, path, title)
        return path

    train_start = time.perf_counter()
    progress = Progress(total_updates, enabled=cfg.logger.progress, desc="gan")
    row: dict[str, float] = {}
    try:
        while counters.updates < total_updates:
            sums: dict[str, torch.Tensor] = {}
            n_updates = 0
            order = torch.randperm(len(images), generator=order_rng).to(device)
            # whole batches only: batch norm and the D/G balance want equal-sized batches
            for begin in range(0, len(images) - a.batch_size + 1, a.batch_size):
                if counters.updates >= total_updates:
                    break
                index = order[begin : begin + a.batch_size]
                for key, value in agent.update(images[index], labels[index]).items():
                    sums[key] = sums.get(key, 0.0) + value
                counters.updates += 1
                counters.samples += a.batch_size
                n_updates += 1
                progress.update(1)
            counters.epoch += 1
            row = {f"train/{k}": (v / max(n_updates, 1)).item() for k, v in sums.items()}
            elapsed = time.perf_counter() - train_start
            logger.log(
                counters.samples,
                {
                    "epoch": counters.epoch,
                    **row,
                    "train/updates": counters.updates,
                    "time/sps": counters.samples / max(elapsed, 1e-9),
                    "time/elapsed_s": time.perf_counter() - start,
                },
            )
            logger.flush()
            progress.update(0, d=row.get("train/d_loss", math.nan), g=row.get("train/g_loss", math.nan))
            run.guard_finite(f"epoch {counters.epoch}", row, both)
            run.save("last.pt", agent, asdict(counters), None)
            if counters.epoch % a.sample_every == 0:
                grid(f"samples/epoch_{counters.epoch:03d}.png", f"{kind}, epoch {counters.epoch}")
    finally:
        progress.close()
        logger.close()
    train_time = time.perf_counter() - train_start
    run.save("best.pt", agent, asdict(counters), None)  # the final model (no validation figure to select by)
    samples_png = grid("samples.png", f"{kind} on {cfg.env.name}: fixed noise after {counters.epoch} epochs")
    encoder_path = save_encoder(agent.encoder, run_dir / "encoder.pt", asdict(cfg.net))
    plot_epoch_curves(
        run_dir / "metrics.csv",
        run_dir / "learning_curve.png",
        f"{kind} on {cfg.env.name} (seed {cfg.seed})",
        [
            ("train/d_loss", "discriminator loss"),
            ("train/g_loss", f"generator loss ({a.loss})"),
            ("train/d_real", "mean D(x)"),
            ("train/d_fake", "mean D(G(z))"),
        ],
        "loss / probability",
    )
    return run.write_summary(
        total_steps=counters.samples,
        updates=counters.updates,
        epochs=counters.epoch,
        train_images=len(images),
        conditional=bool(agent.n_classes),
        wall_time_s=round(time.perf_counter() - start, 3),
        train_time_s=round(train_time, 3),
        train_sps=round(counters.samples / max(train_time, 1e-9), 1),
        eval_mean_return=None,  # a GAN has no return
        final_d_loss=row.get("train/d_loss"),
        final_g_loss=row.get("train/g_loss"),
        final_d_real=row.get("train/d_real"),
        final_d_fake=row.get("train/d_fake"),
        samples=str(samples_png),
        encoder=str(encoder_path),
    )
