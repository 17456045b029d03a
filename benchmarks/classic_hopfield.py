"""Hopfield memory benchmark: the classical network's capacity curve, and modern vs classical recall of MNIST digits.

    RLCORE_MNIST_DIR=/work/shared/data/mnist python benchmarks/classic_hopfield.py [--quick] [--n 500]

1. Capacity (Amit, Gutfreund & Sompolinsky 1985: retrieval breaks down at alpha_c = P/N ~ 0.138 for Hebb's
   rule): P random +-1 patterns of N units are stored with Hebb's and Storkey's (1997) rule; asynchronous
   dynamics start from each stored pattern and run to a fixed point; the curve is the mean final overlap
   m = xi . s / N against alpha. The break point is the load where the mean overlap first falls below 0.9
   (linear interpolation between grid points): the retrieval state (m ~ 0.97 near alpha_c) gives way to
   spin-glass states far from the pattern.
2. MNIST: 1,000 training digits binarised (+1 where the pixel is >= 128) are stored; each is recalled from a
   copy with 30% of its pixels flipped (exactly round(0.3 N), chosen at random), and from a copy whose lower
   half is erased (set to -1, the background). Modern Hopfield retrieval (Ramsauer et al. 2020): one step
   xi <- X^T softmax(beta X xi), then the sign; the classical nets (Hebb, Storkey) run asynchronous dynamics
   to a fixed point. Exact recall = every pixel equal to the stored digit.

Prints a table and writes benchmarks/results/classic_hopfield.json, hopfield_capacity.png and
hopfield_mnist.png (same folder). Nothing here trains by gradient descent, so the script is the natural home of
these figures (no agent=hopfield: see docs/classic_models.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envs import DatasetEnvConfig  # noqa: E402
from envs.dataset_env import dataset_splits  # noqa: E402
from nets.hopfield import (  # noqa: E402
    hebbian_weights,
    modern_retrieve,
    storkey_weights,
    update_async,
)
from rlcore.training.plots import subplots  # noqa: E402

RULES = {"hebbian": hebbian_weights, "storkey": storkey_weights}
ALPHA_C = 0.138  # Amit, Gutfreund & Sompolinsky 1985
BREAK_OVERLAP = 0.9


def random_patterns(p: int, n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (p, n), generator=generator).double() * 2 - 1


def capacity_point(rule: str, n: int, alpha: float, seed: int) -> dict:
    """Store round(alpha N) random patterns, start at each, run to a fixed point: overlaps and fixed points."""
    generator = torch.Generator().manual_seed(seed)
    p = max(1, round(alpha * n))
    patterns = random_patterns(p, n, generator)
    weights = RULES[rule](patterns)
    final, sweeps = update_async(weights, patterns, max_sweeps=50, generator=generator)
    overlap = (final * patterns).sum(dim=1) / n
    return {
        "patterns": p,
        "mean_overlap": float(overlap.mean()),
        "stable_fraction": float((final == patterns).all(dim=1).double().mean()),
        "sweeps": sweeps,
    }


def break_point(alphas: list[float], overlaps: list[float], threshold: float = BREAK_OVERLAP) -> float | None:
    """The first load where the mean overlap falls below ``threshold``, interpolated linearly (None: never)."""
    for i, (a, m) in enumerate(zip(alphas, overlaps, strict=True)):
        if m < threshold:
            if i == 0:
                return a
            a0, m0 = alphas[i - 1], overlaps[i - 1]
            return a0 + (a - a0) * (m0 - threshold) / (m0 - m)
    return None


def capacity_curves(n: int, alphas: list[float], trials: int) -> dict:
    out: dict = {}
    for rule in RULES:
        points = []
        for alpha in alphas:
            runs = [capacity_point(rule, n, alpha, seed) for seed in range(trials)]
            point = {
                "alpha": alpha,
                "patterns": runs[0]["patterns"],
                "mean_overlap": float(np.mean([r["mean_overlap"] for r in runs])),
                "overlap_std_over_trials": float(np.std([r["mean_overlap"] for r in runs])),
                "stable_fraction": float(np.mean([r["stable_fraction"] for r in runs])),
            }
            points.append(point)
            print(
                f"[capacity] {rule:8s} alpha {alpha:.3f} (P={point['patterns']}): overlap {point['mean_overlap']:.3f}, "
                f"exact fixed points {100 * point['stable_fraction']:.0f}%",
                flush=True,
            )
            if len(points) >= 2 and max(q["mean_overlap"] for q in points[-2:]) < 0.5:
                break  # two loads far past the break: the rest of the curve only costs time
        out[rule] = {
            "points": points,
            "break_alpha": break_point([p["alpha"] for p in points], [p["mean_overlap"] for p in points]),
        }
    return out


def binarised_digits(count: int, seed: int) -> torch.Tensor:
    data = dataset_splits(DatasetEnvConfig(dataset="mnist", validation_fraction=0.0), 0)["train"]
    index = np.random.default_rng(seed).choice(len(data), count, replace=False)
    images = torch.as_tensor(np.asarray(data.images[index])).flatten(1)
    return torch.where(images >= 128, 1.0, -1.0).double()


def flip(patterns: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Each row with exactly round(fraction N) of its entries, chosen at random, multiplied by -1."""
    n = patterns.shape[1]
    k = round(fraction * n)
    chosen = torch.rand(patterns.shape, generator=generator).argsort(dim=1)[:, :k]
    signs = torch.ones_like(patterns).scatter_(1, chosen, -1.0)
    return patterns * signs


def erase_lower_half(patterns: torch.Tensor, side: int = 28) -> torch.Tensor:
    out = patterns.clone().view(-1, side, side)
    out[:, side // 2 :, :] = -1.0
    return out.view(patterns.shape)


def exact(recalled: torch.Tensor, patterns: torch.Tensor) -> float:
    return float((recalled == patterns).all(dim=1).double().mean())


def mnist_recall(count: int, betas: list[float], seed: int, classical_queries: int) -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(seed)
    digits = binarised_digits(count, seed)
    queries = {"flip30": flip(digits, 0.3, generator), "lower_half_erased": erase_lower_half(digits)}
    results: dict = {"patterns": count, "units": digits.shape[1], "load_alpha": count / digits.shape[1]}
    shown: dict = {"digits": digits[:8], **{k: q[:8] for k, q in queries.items()}}
    for name, query in queries.items():
        row: dict = {"modern": {}}
        for beta in betas:
            recalled = torch.sign(modern_retrieve(digits, query, beta))
            row["modern"][str(beta)] = exact(recalled, digits)
            if beta == betas[-1]:
                shown[f"{name}_modern"] = recalled[:8]
        for rule, build in RULES.items():
            start = time.perf_counter()
            # all ``count`` digits are stored; the (slow) dynamics run from the first ``classical_queries`` queries
            k = classical_queries
            final, sweeps = update_async(build(digits), query[:k], max_sweeps=20, generator=generator)
            row[rule] = {
                "queries": k,
                "exact_recall": exact(final, digits[:k]),
                "mean_overlap": float(((final * digits[:k]).sum(dim=1) / digits.shape[1]).mean()),
                "sweeps": sweeps,
                "seconds": round(time.perf_counter() - start, 1),
            }
            shown[f"{name}_{rule}"] = final[:8]
        results[name] = row
        print(f"[mnist] {name}: {json.dumps(row)}", flush=True)
    return results, shown


def plot_capacity(curves: dict, n: int, out_png: Path) -> None:
    fig, ax = subplots(figsize=(7, 4.2), dpi=100)
    for rule, curve in curves.items():
        alphas = [p["alpha"] for p in curve["points"]]
        ax.errorbar(
            alphas,
            [p["mean_overlap"] for p in curve["points"]],
            yerr=[p["overlap_std_over_trials"] for p in curve["points"]],
            marker="o",
            ms=3,
            capsize=2,
            label=f"{rule} (break at alpha = {curve['break_alpha']:.3f})" if curve["break_alpha"] else rule,
        )
    ax.axvline(ALPHA_C, color="k", ls="--", lw=1, label="alpha_c = 0.138 (Amit et al. 1985)")
    ax.axhline(BREAK_OVERLAP, color="grey", ls=":", lw=1)
    ax.set_xlabel("load alpha = P / N")
    ax.set_ylabel("mean overlap at the fixed point")
    ax.set_title(f"Hopfield capacity, N = {n} units, starting at each stored pattern")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png)


def plot_mnist(shown: dict, out_png: Path) -> None:
    keys = [k for k in shown]
    fig, axes = subplots(len(keys), 8, figsize=(8, 1.05 * len(keys)), dpi=100, squeeze=False)
    for r, key in enumerate(keys):
        for c in range(8):
            axes[r, c].imshow(shown[key][c].view(28, 28).numpy(), cmap="gray", vmin=-1, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(key.replace("_", " "), fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("1,000 stored binarised MNIST digits: queries and recalls", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small N, few loads: a smoke test")
    parser.add_argument("--n", type=int, default=500, help="units of the capacity experiment")
    parser.add_argument("--trials", type=int, default=3, help="random pattern sets per load")
    parser.add_argument("--digits", type=int, default=1000, help="MNIST digits stored")
    parser.add_argument(
        "--classical-queries",
        type=int,
        default=200,
        help="queries the classical nets recall (all digits stored)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "classic_hopfield.json"))
    args = parser.parse_args()
    if not os.environ.get("RLCORE_MNIST_DIR"):
        sys.exit("set RLCORE_MNIST_DIR to the folder with MNIST's IDX files")
    torch.set_num_threads(1)
    n = 100 if args.quick else args.n
    alphas = [round(0.02 * k, 3) for k in range(1, 8 if args.quick else 16)]
    alphas += [] if args.quick else [round(0.3 + 0.05 * k, 3) for k in range(1, 15)]  # up to 1.0 (Storkey)
    betas = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    start = time.perf_counter()
    curves = capacity_curves(n, alphas, 1 if args.quick else args.trials)
    queries = min(args.classical_queries, 100) if args.quick else args.classical_queries
    mnist, shown = mnist_recall(100 if args.quick else args.digits, betas, 0, queries)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_capacity(curves, n, out.parent / "hopfield_capacity.png")
    plot_mnist(shown, out.parent / "hopfield_mnist.png")
    hebb = curves["hebbian"]["break_alpha"]
    results = {
        "quick": args.quick,
        "torch": torch.__version__,
        "capacity": {"units": n, "trials": args.trials, "break_overlap": BREAK_OVERLAP, **curves},
        "hebbian_break_vs_theory": None if hebb is None else hebb / ALPHA_C,
        "mnist": mnist,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    out.write_text(json.dumps(results, indent=2) + "\n")
    storkey = curves["storkey"]["break_alpha"]
    print("\n| figure | measured | target / anchor |\n|---|---|---|")
    print(
        f"| Hebbian break point alpha (N={n}) | {hebb if hebb is None else f'{hebb:.3f}'} | "
        f"0.138 +- 20% = [0.110, 0.166] (Amit et al. 1985) |"
    )
    print(
        f"| Storkey break point alpha (N={n}) | {storkey if storkey is None else f'{storkey:.3f}'} | above Hebb's |"
    )
    for name in ("flip30", "lower_half_erased"):
        row = mnist[name]
        best_beta = max(row["modern"], key=row["modern"].get)
        print(
            f"| {name}: modern exact recall (beta={best_beta}; all betas {row['modern']}) | "
            f"{100 * row['modern'][best_beta]:.1f}% | {'>= 95%' if name == 'flip30' else 'no target'} |"
        )
        for rule in RULES:
            print(
                f"| {name}: classical {rule} exact recall | {100 * row[rule]['exact_recall']:.1f}% | fails at alpha = {mnist['load_alpha']:.2f} |"
            )
    print(f"\nwritten to {out} in {results['wall_time_s']} s")


if __name__ == "__main__":
    main()
