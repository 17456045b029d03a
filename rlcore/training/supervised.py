"""The supervised training loop: epochs of shuffled mini-batches straight from the dataset arrays.

The "batched form" of a dataset env: the train/validation/test arrays of :func:`envs.dataset_env.dataset_splits`
become tensors once (uint8 images, scaled inside the net), and each step indexes a mini-batch out of them,
so no Python runs per image. The run directory has the same files as an off-policy run (config.yaml,
metrics.csv, checkpoints/{last,best}.pt, summary.json, learning_curve.png), so ``evaluate.py`` and
:func:`rlcore.policy.load_agent` work on it. ``best.pt`` holds the weights of the best validation accuracy;
with early stopping those weights are restored before the final test evaluation.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents.supervised import EarlyStopping, SupervisedAgent, SupervisedConfig
from envs import DatasetEnvConfig, make_env
from envs.dataset_env import dataset_splits
from envs.datasets import ImageDataset
from rlcore.base.errors import ConfigError
from rlcore.base.seeding import EVAL_SEED_OFFSET
from rlcore.training.context import RunContext
from rlcore.training.evaluation import evaluate
from rlcore.training.loggers import Progress
from rlcore.training.plots import plot_epoch_curves

FIELDS = (
    "epoch",
    "train/loss",
    "train/accuracy",
    "train/lr",
    "val/accuracy",
    "eval/mean_return",
    "eval/std_return",
    "test/accuracy",
    "time/epoch_s",
    "time/sps",
    "time/elapsed_s",
)


@dataclass
class Counters:
    env_steps: int = 0
    epochs: int = 0
    updates: int = 0
    best_epoch: int = -1
    best_step: int = -1  # the training samples seen when best.pt was saved
    best_val_accuracy: float = float("nan")


def as_tensors(dataset: ImageDataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and int64 labels on ``device``, copied once (the dataset arrays are read-only)."""
    return torch.from_numpy(np.array(dataset.images)).to(device), torch.from_numpy(
        np.array(dataset.labels)
    ).to(device)


def dataset_accuracy(
    agent: SupervisedAgent, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> float:
    """Fraction of ``images`` whose predicted class is the label, in eval-mode batches."""
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    for start in range(0, len(labels), batch_size):
        logits = agent.logits(images[start : start + batch_size])
        correct += (logits.argmax(dim=1) == labels[start : start + batch_size]).sum()
    return correct.item() / len(labels)


def reward_stats(accuracy: float, correct_reward: float, wrong_reward: float) -> tuple[float, float]:
    """Mean and std of one-step returns when a fraction ``accuracy`` of answers earn ``correct_reward``."""
    mean = accuracy * correct_reward + (1 - accuracy) * wrong_reward
    return mean, abs(correct_reward - wrong_reward) * float(np.sqrt(accuracy * (1 - accuracy)))


def train_epoch(
    agent: SupervisedAgent,
    images: torch.Tensor,
    labels: torch.Tensor,
    epoch: int,
    generator: torch.Generator,
    steps_left: int | None = None,
) -> tuple[dict[str, float], int]:
    """One shuffled pass (or ``steps_left`` steps of it); returns (mean loss/accuracy, samples seen)."""
    batch_size = agent.cfg.batch_size
    n = len(labels)
    order = torch.randperm(n, generator=generator).to(labels.device)
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    seen = 0
    for step, start in enumerate(range(0, n, batch_size)):
        if steps_left is not None and step >= steps_left:
            break
        index = order[start : start + batch_size]
        agent.advance(epoch + start / n)
        metrics = agent.update((images[index], labels[index]))
        loss_sum += metrics["loss"] * len(index)
        correct += metrics["correct"]
        seen += len(index)
    return {
        "train/loss": loss_sum.item() / max(seen, 1),
        "train/accuracy": correct.item() / max(seen, 1),
    }, seen


def train_supervised(run: RunContext, resume: dict | None = None) -> dict:
    """Train a classifier on the env's labelled arrays and write the run's files; returns the summary."""
    cfg = run.cfg
    if not isinstance(cfg.env, DatasetEnvConfig):
        raise ConfigError(
            f"config key 'env': agent=supervised needs a dataset env (MNIST, Digits), got {cfg.env.name}"
        )
    a: SupervisedConfig = cfg.agent
    run.begin()
    device, checkpoints = run.device, run.checkpoints
    splits = dataset_splits(cfg.env, cfg.seed)
    x_train, y_train = as_tensors(splits["train"], device)
    x_test, y_test = as_tensors(splits["test"], device)
    val_split = splits["val"]
    x_val, y_val = as_tensors(val_split, device) if val_split is not None else (None, None)
    eval_env = make_env(cfg.env, cfg.seed + EVAL_SEED_OFFSET, evaluation=True, n_envs=a.eval_batch_size)
    agent: SupervisedAgent = run.build_agent(eval_env.single_observation_space, eval_env.single_action_space)
    logger = run.logger(FIELDS)
    run.announce(
        f"supervised on {cfg.env.name} | {len(y_train)} train / {0 if y_val is None else len(y_val)} val / "
        f"{len(y_test)} test images",
        agent.model,
        eval_env.single_observation_space,
    )

    counters = Counters()

    def checkpoint(name: str, eval_mean: float | None) -> None:
        run.save(name, agent, asdict(counters), eval_mean)

    generator = torch.Generator().manual_seed(cfg.seed)
    stopper = EarlyStopping(a.patience)
    best_state: dict | None = None
    progress = Progress(a.epochs, enabled=cfg.logger.progress, desc="epochs")
    start = time.perf_counter()
    train_time = 0.0
    try:
        for epoch in range(a.epochs):
            steps_left = a.max_steps - agent.updates if a.max_steps else None
            if steps_left is not None and steps_left <= 0:
                break
            epoch_start = time.perf_counter()
            metrics, seen = train_epoch(agent, x_train, y_train, epoch, generator, steps_left)
            epoch_s = time.perf_counter() - epoch_start
            train_time += epoch_s
            counters.env_steps += seen
            counters.epochs = epoch + 1
            counters.updates = agent.updates
            test_acc = dataset_accuracy(agent, x_test, y_test, a.eval_batch_size)
            val_acc = (
                dataset_accuracy(agent, x_val, y_val, a.eval_batch_size)
                if x_val is not None and y_val is not None
                else test_acc
            )
            mean, std = reward_stats(test_acc, cfg.env.correct_reward, cfg.env.wrong_reward)
            logger.log(
                counters.env_steps,
                {
                    "epoch": epoch + 1,
                    **metrics,
                    "train/lr": agent.lr,
                    "val/accuracy": val_acc,
                    "eval/mean_return": mean,
                    "eval/std_return": std,
                    "test/accuracy": test_acc,
                    "time/epoch_s": epoch_s,
                    "time/sps": seen / max(epoch_s, 1e-9),
                    "time/elapsed_s": time.perf_counter() - start,
                },
            )
            logger.flush()
            run.guard_finite(f"epoch {epoch + 1}", metrics, agent.model)
            if stopper.update(val_acc, epoch):  # selection on validation only; the test set never chooses
                counters.best_epoch, counters.best_val_accuracy = epoch + 1, val_acc
                counters.best_step = counters.env_steps
                best_state = copy.deepcopy(agent.model.state_dict())
                checkpoint("best.pt", mean)
            checkpoint("last.pt", mean)
            progress.update(1, loss=metrics["train/loss"], val=val_acc, test=test_acc)
            if stopper.stop:
                if cfg.logger.progress:
                    progress.bar.write(
                        f"[early stop] no better validation accuracy for {a.patience} epochs; "
                        f"restoring epoch {counters.best_epoch}"
                    )
                break
    finally:
        progress.close()
        logger.flush()

    if best_state is not None and a.patience > 0:
        agent.model.load_state_dict(best_state)
    final_returns, _ = evaluate(
        agent, eval_env, cfg.final_eval_episodes
    )  # every test image once, via the env
    eval_env.close()
    test_accuracy = float(np.mean(final_returns == cfg.env.correct_reward))
    final_mean, final_std = float(final_returns.mean()), float(final_returns.std())
    checkpoint("last.pt", final_mean)
    if not (checkpoints / "best.pt").exists():
        counters.best_step = counters.env_steps
        checkpoint("best.pt", final_mean)
    logger.log(
        counters.env_steps,
        {
            "epoch": counters.epochs,
            "eval/mean_return": final_mean,
            "eval/std_return": final_std,
            "test/accuracy": test_accuracy,
            "time/elapsed_s": time.perf_counter() - start,
        },
    )

    summary = run.write_summary(
        total_steps=counters.env_steps,
        epochs=counters.epochs,
        updates=agent.updates,
        wall_time_s=round(time.perf_counter() - start, 3),
        train_time_s=round(train_time, 3),
        train_sps=round(counters.env_steps / max(train_time, 1e-9), 1),
        epoch_time_s=round(train_time / max(counters.epochs, 1), 3),
        eval_mean_return=final_mean,
        eval_std_return=final_std,
        eval_episodes=len(final_returns),
        test_accuracy=test_accuracy,
        best_epoch=counters.best_epoch,
        best_checkpoint_step=counters.best_step,
        best_val_accuracy=counters.best_val_accuracy,
    )
    logger.flush()  # the final test row is on disk before the curve is drawn from it
    plot_accuracy_curve(
        run.run_dir / "metrics.csv",
        run.run_dir / "learning_curve.png",
        f"supervised {cfg.net.name} on {cfg.env.name} (seed {cfg.seed})",
    )
    logger.close(curve=run.run_dir / "learning_curve.png")  # W&B and TensorBoard get the curve
    return summary


def plot_accuracy_curve(metrics_csv: Path, out_png: Path, title: str) -> None:
    """Train / validation / test accuracy against epochs."""
    series = [("train/accuracy", "train"), ("val/accuracy", "validation"), ("test/accuracy", "test")]
    plot_epoch_curves(metrics_csv, out_png, title, series, "accuracy (%)", scale=100.0)
