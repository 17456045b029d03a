"""The learning-curve PNG written at the end of every run."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _column(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key, "")
        if value not in ("", None):
            xs.append(float(row["step"]))
            ys.append(float(value))
    return xs, ys


def plot_learning_curve(metrics_csv: Path, out_png: Path, title: str) -> None:
    """Raw episode returns against env steps (with a moving average), and the periodic evaluations."""
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps, returns = _column(rows, "rollout/episode_return")
    if returns:
        ax.plot(steps, returns, color="tab:blue", alpha=0.25, linewidth=0.8, label="episode return (train)")
        window = max(1, min(100, len(returns) // 10))
        smooth = [sum(returns[max(0, i - window + 1) : i + 1]) / (i - max(0, i - window + 1) + 1) for i in range(len(returns))]
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.6, label=f"moving average ({window})")
    eval_steps, eval_means = _column(rows, "eval/mean_return")
    if eval_means:
        _, eval_stds = _column(rows, "eval/std_return")
        ax.errorbar(eval_steps, eval_means, yerr=eval_stds or None, color="tab:orange", marker="o", capsize=3, label="evaluation (greedy)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return per episode (raw)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if returns or eval_means:
        ax.legend(loc="best")
    if steps and not any(math.isnan(s) for s in steps):
        ax.set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def plot_epoch_curves(
    metrics_csv: Path,
    out_png: Path,
    title: str,
    series: list[tuple[str, str]],
    ylabel: str,
    *,
    scale: float = 1.0,
    log_y: bool = False,
) -> None:
    """One line per ``(csv column, label)`` against the ``epoch`` column (rows where the first column is set)."""
    from matplotlib.ticker import MaxNLocator

    with open(metrics_csv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("epoch") and r.get(series[0][0])]
    epochs = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key, label in series:
        ax.plot(epochs, [scale * float(r[key]) for r in rows], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
