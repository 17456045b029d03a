"""The layer-wise pretraining loop of agent=rbm, agent=dbn and agent=sparse_coding: gather observations -> stages
of epochs -> encoder.pt and pictures.

Data as for the autoencoder (:func:`rlcore.training.pretraining.collect_frames`): a dataset env's training images
(its validation split held out), or ``agent.frames`` observations played by a random (or trained) policy. The
agent says what its stages are (a DBN: one RBM per hidden layer, trained greedily bottom-up on the up-pass of
the layers below, Hinton et al. 2006; sparse coding: the dictionary, then the LISTA encoder) and the loop runs
them in order, one metrics row per epoch.

Files: config.yaml, metrics.csv, checkpoints/last.pt (every epoch) and best.pt (the final model: nothing here
selects among epochs), encoder.pt (the unrolled encoder that ``net.pretrained=<run_dir>`` loads), filters.png
(first-layer filters or dictionary atoms), samples.png (model samples, for the RBMs), reconstructions.png,
learning_curve.png and summary.json, whose ``reuse`` field gives the net options that load the encoder.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs import DatasetEnvConfig
from envs.dataset_env import dataset_splits
from nets import save_encoder
from rlcore.base.protocols import LayerwisePretrainer
from rlcore.training.context import RunContext
from rlcore.training.loggers import Progress
from rlcore.training.plots import plot_epoch_curves, subplots
from rlcore.training.pretraining import collect_frames

METRICS = (
    "recon_error",
    "free_energy",
    "objective",
    "active_fraction",
    "lista_code_error",
    "lista_objective",
)
FIELDS = (
    "epoch",
    "stage",
    "stage_epoch",
    *(f"train/{m}" for m in METRICS),
    *(f"val/{m}" for m in METRICS),
    "train/updates",
    "time/sps",
    "time/elapsed_s",
)


def train_layerwise(run: RunContext, resume: dict | None = None) -> dict:
    """Train every stage of the agent in order and write the run's files; returns the summary."""
    cfg = run.cfg
    run.begin()
    a = cfg.agent
    start = time.perf_counter()
    train_np, val_np, space, env_steps = collect_frames(cfg, cfg.seed)
    agent: LayerwisePretrainer = run.build_agent(space, None)
    train = agent.prepare(torch.as_tensor(train_np))
    val = agent.prepare(torch.as_tensor(val_np))
    logger = run.logger(FIELDS)
    run.announce(
        f"{a.name} on {cfg.env.name} | {len(train)} train / {len(val)} val frames {tuple(train_np.shape[1:])} "
        f"| stages {', '.join(f'{name} x{epochs}' for name, epochs in agent.stages)}",
        agent.encoder(),
        space,
    )
    generator = torch.Generator().manual_seed(cfg.seed)  # minibatch order
    counters: dict[str, Any] = {"epoch": 0, "updates": 0, "samples": 0}
    batches = math.ceil(len(train) / a.batch_size)
    progress = Progress(sum(e for _, e in agent.stages) * batches, enabled=cfg.logger.progress, desc=a.name)
    train_start = time.perf_counter()
    val_row: dict[str, float] = {}
    try:
        for stage, (name, epochs) in enumerate(agent.stages):
            inputs, val_inputs = agent.stage_inputs(stage, train), agent.stage_inputs(stage, val)
            agent.begin_stage(stage, inputs, batches)
            for stage_epoch in range(1, epochs + 1):
                sums: dict[str, float] = {}
                order = torch.randperm(len(inputs), generator=generator).to(inputs.device)
                for begin in range(0, len(inputs), a.batch_size):
                    batch = inputs[order[begin : begin + a.batch_size]]
                    for key, value in agent.update(stage, batch).items():
                        sums[key] = sums.get(key, 0.0) + value * len(batch)
                    counters["updates"] += 1
                    counters["samples"] += len(batch)
                    progress.update(1)
                agent.end_epoch(stage)
                counters["epoch"] += 1
                val_row = agent.evaluate(stage, val_inputs)
                row = {f"train/{k}": v / len(inputs) for k, v in sums.items()}
                row.update({f"val/{k}": v for k, v in val_row.items()})
                logger.log(
                    counters["samples"],
                    {
                        "epoch": counters["epoch"],
                        "stage": name,
                        "stage_epoch": stage_epoch,
                        **row,
                        "train/updates": counters["updates"],
                        "time/sps": counters["samples"] / max(time.perf_counter() - train_start, 1e-9),
                        "time/elapsed_s": time.perf_counter() - start,
                    },
                )
                logger.flush()
                progress.update(0, stage=name, **{k: round(v, 4) for k, v in val_row.items()})
                run.guard_finite(f"{name} epoch {stage_epoch}", row, agent.encoder())
                run.save("last.pt", agent, dict(counters), None)
    finally:
        progress.close()
        logger.close()
    train_time = time.perf_counter() - train_start
    run.save("best.pt", agent, dict(counters), None)  # no model selection: the final model

    run_dir = run.run_dir
    encoder_path = save_encoder(agent.encoder(), run_dir / "encoder.pt", agent.encoder_net())
    shape = tuple(train_np.shape[1:])
    plot_tiles(
        agent.filters(),
        run_dir / "filters.png",
        f"{a.name} on {cfg.env.name}: first-layer filters (RBM weights or dictionary atoms)",
        shape,
        True,
    )
    samples = agent.samples(64)
    if samples is not None:
        plot_tiles(
            samples, run_dir / "samples.png", f"{a.name} on {cfg.env.name}: model samples", shape, False
        )
    plot_tiles(
        torch.cat([agent.reconstruct(val[:16]), val[:16].reshape(-1, *shape)]),
        run_dir / "reconstructions.png",
        f"{cfg.env.name} validation frames: reconstructions (top two rows), originals (bottom two)",
        shape,
        False,
        columns=8,
    )
    plot_epoch_curves(
        run_dir / "metrics.csv",
        run_dir / "learning_curve.png",
        f"{a.name} on {cfg.env.name} (seed {cfg.seed}); epochs counted over all stages",
        [("val/recon_error", "validation reconstruction error")],
        "squared error per example",
    )
    splits = {"train": train, "val": val}
    if isinstance(cfg.env, DatasetEnvConfig):
        test = dataset_splits(cfg.env, cfg.seed)["test"].images
        splits["test"] = agent.prepare(torch.as_tensor(np.array(test)))
    figures = agent.final_figures(splits)
    net = agent.encoder_net()
    reuse = " ".join(
        f"net.{k}={v if not isinstance(v, list) else '[' + ','.join(map(str, v)) + ']'}"
        for k, v in net.items()
    ).replace("net.name=", "net=")
    return run.write_summary(
        net=net["name"],  # the encoder it wrote (this agent does not use the net group)
        total_steps=counters["samples"],
        updates=counters["updates"],
        epochs=counters["epoch"],
        train_frames=len(train),
        val_frames=len(val),
        collect_env_steps=env_steps,
        wall_time_s=round(time.perf_counter() - start, 3),
        train_time_s=round(train_time, 3),
        train_sps=round(counters["samples"] / max(train_time, 1e-9), 1),
        eval_mean_return=None,  # unsupervised pretraining has no return
        **{f"final_val_{k}": v for k, v in val_row.items()},
        **figures,
        encoder=str(encoder_path),
        reuse=f"{reuse} net.pretrained={run_dir}",
    )


def plot_tiles(
    images: torch.Tensor,
    out_png: Path,
    title: str,
    shape: tuple[int, ...],
    symmetric: bool,
    columns: int = 10,
) -> None:
    """A grid of at most 100 tiles, one per row of ``images`` in the observation ``shape``.

    Images (C, H, W) show their last channel (the newest frame of a stack); other shapes show as one strip per
    row. ``symmetric``: each tile scaled to its own [-max|w|, max|w|] (filters: grey is 0); otherwise [0, 1].
    """
    data = images.detach().float().cpu()[:100]
    if len(shape) == 3:
        tiles = data.reshape(len(data), *shape)[:, -1]
    elif len(shape) == 2:
        tiles = data.reshape(len(data), *shape)
    else:
        tiles = data.reshape(len(data), 1, -1)
    rows = math.ceil(len(tiles) / columns)
    fig, axes = subplots(rows, columns, figsize=(1.0 * columns, 1.0 * rows + 0.5), dpi=100, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(tiles):
            ax.axis("off")
            continue
        tile = tiles[i].numpy()
        if symmetric:
            bound = float(np.abs(tile).max()) or 1.0
            ax.imshow(tile, cmap="gray", vmin=-bound, vmax=bound, aspect="auto")
        else:
            ax.imshow(np.clip(tile, 0, 1), cmap="gray", vmin=0, vmax=1, aspect="auto")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)
