"""The PNGs rlcore writes: every run's learning curve, and a sweep's curves across seeds (rlcore/report.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    dpi: float | None = None,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: a figure that no global registry holds and no backend switch draws
    (``Figure.savefig`` renders PNGs itself), so importing or plotting never changes the process's state."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _column(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key, "")
        if value not in ("", None):
            xs.append(float(row["step"]))
            ys.append(float(value))
    return xs, ys


def smoothing_window(n: int) -> int:
    """Episodes averaged by the learning-curve smoothing: a tenth of the episodes, at most 100."""
    return max(1, min(100, n // 10))


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start), so the curve starts at the first episode."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _evaluations(ax: Any, rows: list[dict[str, str]], **style: Any) -> list[float]:
    """Mean returns ± std of these evaluation rows as error bars; the final evaluation is labelled with its value."""
    steps, means = _column(rows, "eval/mean_return")
    if means:
        _, stds = _column(rows, "eval/std_return")
        label = style.pop("label", None) or f"final evaluation: {means[0]:.1f}"
        ax.errorbar(steps, means, yerr=stds or None, capsize=3, label=label, **style)
    return means


def plot_learning_curve(metrics_csv: Path, out_png: Path, title: str) -> None:
    """Raw episode returns against env steps (with a moving average), the periodic evaluations and the final one."""
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fig, ax = subplots(figsize=(8, 4.5), dpi=100)
    steps, returns = _column(rows, "rollout/episode_return")
    if returns:
        ax.plot(steps, returns, color="tab:blue", alpha=0.25, linewidth=0.8, label="episode return (train)")
        window = smoothing_window(len(returns))
        smooth = moving_average(returns, window)
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.6, label=f"moving average ({window})")
    # the periodic evaluations carry the exploration rate of their step; the final evaluation (last row) does not
    periodic = [r for r in rows if r.get("eval/mean_return") and r.get("rollout/epsilon")]
    final = [r for r in rows if r.get("eval/mean_return") and not r.get("rollout/epsilon")][-1:]
    eval_means = _evaluations(
        ax, periodic, color="tab:orange", marker="o", label="periodic evaluation (greedy)"
    )
    final_means = _evaluations(ax, final, color="tab:red", marker="*", markersize=14, linestyle="none")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return per episode (raw)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if returns or eval_means or final_means:
        ax.legend(loc="best")
    if steps and not any(math.isnan(s) for s in steps):
        ax.set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(out_png)


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

    with open(metrics_csv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("epoch") and r.get(series[0][0])]
    epochs = [int(r["epoch"]) for r in rows]
    fig, ax = subplots(figsize=(8, 4.5), dpi=100)
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


def plot_sweep(panels: dict[str, list[dict]], out_png: Path, band: str = "minmax") -> None:
    """One column per env: greedy evaluations (top) and smoothed training returns (bottom) against env steps.

    ``panels[env]`` holds one dict per group: ``label`` and the curves ``eval`` and ``train`` as built by
    :func:`rlcore.report.aggregate_curves` (``step``, ``mean``, ``std``, ``min``, ``max``, ``n``; may be None).
    The shaded band is min-max across seeds (``band="minmax"``) or mean ± one standard deviation (``"std"``).
    """
    envs = sorted(panels)
    fig, axes = subplots(2, len(envs), figsize=(5.5 * len(envs), 7.5), dpi=100, squeeze=False)
    rows = (("eval", "greedy evaluation: mean return"), ("train", "training episode return (smoothed)"))
    for col, env in enumerate(envs):
        for row, (key, ylabel) in enumerate(rows):
            ax = axes[row][col]
            drawn = False
            for i, group in enumerate(panels[env]):
                curve = group.get(key)
                if not curve or not curve["step"]:
                    continue
                color = f"C{i % 10}"
                ax.plot(
                    curve["step"],
                    curve["mean"],
                    color=color,
                    linewidth=1.6,
                    marker="o" if key == "eval" else None,
                    markersize=3,
                    label=f"{group['label']} (n={max(curve['n'])})",
                )
                if band == "std":
                    low = [m - (s or 0.0) for m, s in zip(curve["mean"], curve["std"], strict=True)]
                    high = [m + (s or 0.0) for m, s in zip(curve["mean"], curve["std"], strict=True)]
                else:
                    low, high = curve["min"], curve["max"]
                ax.fill_between(curve["step"], low, high, color=color, alpha=0.2, linewidth=0)
                drawn = True
            ax.set_title(f"{env}: {ylabel}", fontsize=10)
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
            if drawn:
                ax.legend(loc="best", fontsize=8)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
    shown = "min-max across seeds" if band == "minmax" else "mean ± 1 std across seeds"
    fig.suptitle(f"mean across seeds, band = {shown}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png)


def plot_study(
    numbers: list, objectives: list, importances: dict[str, float], out_png: Path, direction: str = "maximize"
) -> None:
    """An Optuna search (rlcore/tuning.py): the objective of each trial with the best so far, and, when Optuna
    could compute them, the parameter importances beside it."""
    panels = 2 if importances else 1
    fig, axes = subplots(1, panels, figsize=(6.5 * panels, 4), squeeze=False)
    fig.set_layout_engine("constrained")
    ax = axes[0][0]
    xs = [n if n is not None else i for i, n in enumerate(numbers)]
    ys = [math.nan if v is None else float(v) for v in objectives]
    ax.scatter(xs, ys, s=18, color="C0", label="trial")
    best, running = [], math.nan
    for y in ys:
        if math.isfinite(y) and (
            math.isnan(running) or (y > running if direction == "maximize" else y < running)
        ):
            running = y
        best.append(running)
    ax.step(xs, best, where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("objective (across each trial's seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if importances:
        names = list(importances)[::-1]
        axes[0][1].barh(names, [importances[n] for n in names], color="C2")
        axes[0][1].set_xlabel("importance (mean decrease in impurity)")
    fig.savefig(out_png, dpi=110)
