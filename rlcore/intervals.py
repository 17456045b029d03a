"""Across-seed statistics with intervals (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"),
through their ``rliable`` library: the report's IQM, mean and 95 % stratified-bootstrap confidence intervals of
the final evaluations, and performance profiles, for every group with at least :data:`MIN_SEEDS` seeds.

The IQM (interquartile mean) is the mean of the middle 50 % of the runs (``scipy.stats.trim_mean`` with 25 %
cut at each end): less thrown by one lucky or one collapsed seed than the mean, less wasteful than the median.
Scores are the raw final returns of one env (one task), so groups are compared within an env only.
``rliable`` is an extra (``pip install -e ".[stats]"``); without it the report leaves these columns out.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

MIN_SEEDS = 3
BOOTSTRAP_REPS = 2000  # resamples per interval (rliable's default for profiles): about 0.5 s per group
PROFILE_REPS = 500  # resamples per point of a profile's band: 51 points x 2000 would take seconds per group
PROFILE_MAX_GROUPS = 10  # an env with more groups (e.g. an Optuna search's trials) gets no profile panel
CONFIDENCE = 0.95


def rliable_available() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from rliable import library, metrics  # noqa: F401
    except Exception:  # not installed, or its dependency arch does not import (arch < 7 with pandas >= 3)
        return False
    return True


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """rliable 1.2 draws its bootstrap resamples from numpy's global RNG (``np.random.choice``), whatever
    ``random_state`` it is given: seed that for the call and put its state back, so a report is reproducible
    and the caller's RNG untouched. Also silences arch's FutureWarning about RandomState."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float)


def interval_estimates(
    values: Sequence[float | None], reps: int = BOOTSTRAP_REPS, seed: int = 0
) -> dict | None:
    """IQM and mean of one group's final evaluations with their 95 % bootstrap CIs; None below MIN_SEEDS runs."""
    scores = _finite(values)
    if scores.size < MIN_SEEDS or not rliable_available():
        return None
    from rliable import library, metrics

    with _seeded(seed):
        points, intervals = library.get_interval_estimates(
            {"group": scores[:, None]},
            lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
            reps=reps,
            confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )
    (iqm, mean), ((iqm_lo, mean_lo), (iqm_hi, mean_hi)) = points["group"], intervals["group"]
    return {
        "n": int(scores.size),
        "iqm": float(iqm),
        "iqm_ci": [float(iqm_lo), float(iqm_hi)],
        "mean": float(mean),
        "mean_ci": [float(mean_lo), float(mean_hi)],
        "ci": f"{int(100 * CONFIDENCE)}% stratified bootstrap (percentile), {reps} resamples",
    }


def performance_profiles(
    panels: Mapping[str, Mapping[str, Sequence[float | None]]],
    out_png: Path,
    reps: int = PROFILE_REPS,
    seed: int = 0,
) -> bool:
    """One panel per env: for each group, the fraction of its runs whose final evaluation exceeds tau, with a 95 %
    bootstrap band. Groups with fewer than MIN_SEEDS runs, and envs with more than PROFILE_MAX_GROUPS groups
    (unreadable), are left out; returns False when nothing is left."""
    if not rliable_available():
        return False
    from rliable import library

    from rlcore.training.plots import subplots

    kept = {
        env: {label: _finite(v)[:, None] for label, v in groups.items() if _finite(v).size >= MIN_SEEDS}
        for env, groups in panels.items()
    }
    kept = {env: groups for env, groups in kept.items() if 0 < len(groups) <= PROFILE_MAX_GROUPS}
    if not kept:
        return False
    fig, axes = subplots(1, len(kept), figsize=(6 * len(kept), 5), squeeze=False)
    fig.set_layout_engine("constrained")
    for ax, (env, groups) in zip(axes[0], kept.items(), strict=True):
        everything = np.concatenate([s.ravel() for s in groups.values()])
        low, high = float(everything.min()), float(everything.max())
        taus = np.linspace(low - 0.05 * (high - low + 1e-9), high, 51)
        with _seeded(seed):
            points, bands = library.create_performance_profile(groups, taus, reps=reps)
        lines = []
        for i, label in enumerate(groups):
            lines += ax.plot(taus, points[label], color=f"C{i % 10}")
            ax.fill_between(taus, bands[label][0], bands[label][1], color=f"C{i % 10}", alpha=0.15)
        ax.set_title(env)
        ax.set_xlabel(r"final evaluation return $\tau$")
        ax.set_ylabel(r"fraction of runs with return > $\tau$")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(
            lines,
            [textwrap.fill(label, 70) for label in groups],
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
        )  # below the axes: a group's label lists its settings
    fig.savefig(out_png, dpi=110)
    return True


def format_interval(record: Mapping[str, Any] | None, key: str = "iqm") -> str:
    if not record:
        return "–"
    low, high = record[f"{key}_ci"]
    return f"{record[key]:.1f} [{low:.1f}, {high:.1f}]"


def aggregate_across_tasks(scores: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict | None:
    """IQM and mean of a (runs x tasks) matrix of normalised scores (e.g. human-normalised Atari scores) with
    their 95 % stratified-bootstrap CIs: rliable resamples the runs of each task independently (Agarwal et al.
    2021, the Atari 100k reporting standard). None below MIN_SEEDS runs per task or without rliable."""
    matrix = np.asarray(scores, dtype=float)
    if (
        matrix.ndim != 2
        or matrix.shape[0] < MIN_SEEDS
        or not np.isfinite(matrix).all()
        or not rliable_available()
    ):
        return None
    from rliable import library, metrics

    with _seeded(seed):
        points, intervals = library.get_interval_estimates(
            {"arm": matrix},
            lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
            reps=reps,
            confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )
    (iqm, mean), ((iqm_lo, mean_lo), (iqm_hi, mean_hi)) = points["arm"], intervals["arm"]
    return {
        "runs": int(matrix.shape[0]),
        "tasks": int(matrix.shape[1]),
        "iqm": float(iqm),
        "iqm_ci": [float(iqm_lo), float(iqm_hi)],
        "mean": float(mean),
        "mean_ci": [float(mean_lo), float(mean_hi)],
        "ci": f"{int(100 * CONFIDENCE)}% stratified bootstrap (percentile), {reps} resamples",
    }
