"""Prioritized replay's sum-tree at Atari scale: sample 32 and update 32 on a 1,000,000-leaf tree.

    python benchmarks/sum_tree.py                  # 1M leaves, 2,000 timed repeats of each operation
    python benchmarks/sum_tree.py --leaves 100000 --repeats 500

Times (median and 90th percentile, µs) for: stratified sampling of a batch (``PrioritizedSampler
.sample_indices``: 20 levels of vectorised descent), importance weights for it, a priority update from 32
TD errors (``update_priorities``), and adding one new transition at max priority (``on_add``). The tree is
full with random priorities first. The issue's target: sampling 32 well under a millisecond. Writes JSON
to benchmarks/results/sum_tree.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlcore.replay.sum_tree import PrioritizedSampler  # noqa: E402


def timed(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    return {"median_us": round(statistics.median(times), 1), "p90_us": round(times[int(0.9 * len(times))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sum_tree.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sampler = PrioritizedSampler(args.leaves, alpha=0.6, beta0=0.4, total_steps=10_000_000, seed=0)
    start = time.perf_counter()
    sampler.on_add(np.arange(args.leaves))
    sampler.update_priorities(np.arange(args.leaves), rng.exponential(size=args.leaves))
    fill_s = time.perf_counter() - start
    indices = sampler.sample_indices(args.batch, args.leaves)
    new_position = iter(rng.integers(0, args.leaves, size=args.repeats + 10))
    rows = {
        f"sample {args.batch}": timed(lambda: sampler.sample_indices(args.batch, args.leaves), args.repeats),
        f"weights of {args.batch}": timed(lambda: sampler.weights(indices, args.leaves), args.repeats),
        f"update {args.batch} priorities": timed(
            lambda: sampler.update_priorities(
                rng.integers(0, args.leaves, args.batch), rng.normal(size=args.batch)
            ),
            args.repeats,
        ),
        "add 1 (max priority)": timed(lambda: sampler.on_add(np.array([next(new_position)])), args.repeats),
    }
    print(f"sum-tree of {args.leaves:,} leaves (filled in {fill_s:.2f} s), {args.repeats} repeats each\n")
    print(f"{'operation':<24} {'median µs':>10} {'p90 µs':>10}")
    for name, row in rows.items():
        print(f"{name:<24} {row['median_us']:>10.1f} {row['p90_us']:>10.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "leaves": args.leaves,
                "batch": args.batch,
                "repeats": args.repeats,
                "fill_s": round(fill_s, 2),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
