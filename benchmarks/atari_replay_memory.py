"""Memory and speed of a full Atari-size FrameReplayBuffer (1M transitions of 4x84x84 by default).

Fills the buffer with synthetic frame-stacked episodes (zero-padded stacks after each reset, as ale-py's
AtariVectorEnv returns them), then reports the estimate, the resident memory (peak and current) and the
time to add a transition and to sample a batch. Needs about 7.3 GB of free memory at the default size.

    python benchmarks/atari_replay_memory.py [--capacity 1000000] [--n-envs 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcore.replay.frames import FrameReplayBuffer, available_memory_bytes, estimate_bytes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "atari_replay_memory.json"


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--n-envs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2_000, help="batches timed")
    parser.add_argument("--mean-episode", type=int, default=500, help="mean synthetic episode length")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    shape = (4, 84, 84)
    n = args.n_envs
    space = gym.spaces.Box(0, 255, shape, np.uint8)
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, size=(997, 84, 84), dtype=np.uint8)  # frames to cycle through

    rss_start = rss_bytes()
    buf = FrameReplayBuffer(args.capacity, space, n_envs=n, seed=0)
    obs = np.zeros((n, *shape), np.uint8)
    obs[:, -1] = palette[:n]
    left = rng.geometric(1 / args.mean_episode, size=n)
    zeros = np.zeros(n, bool)
    actions = np.zeros(n, np.int64)
    rewards = np.zeros(n, np.float32)
    steps = buf.capacity // n
    episodes = 0
    start = time.perf_counter()
    for t in range(steps):
        next_obs = np.empty_like(obs)
        next_obs[:, :-1] = obs[:, 1:]
        next_obs[:, -1] = palette[(t * n + np.arange(n)) % len(palette)]
        left -= 1
        done = left <= 0
        buf.add(obs, next_obs, actions, rewards, done, zeros)
        obs = next_obs
        for e in np.flatnonzero(done):
            obs[e] = 0
            obs[e, -1] = palette[rng.integers(len(palette))]
            left[e] = rng.geometric(1 / args.mean_episode)
            episodes += 1
    fill_s = time.perf_counter() - start
    rss_full = rss_bytes()

    buf.sample(args.batch_size)  # warm-up
    start = time.perf_counter()
    for _ in range(args.samples):
        buf.sample(args.batch_size)
    sample_ms = (time.perf_counter() - start) / args.samples * 1e3

    result = {
        "capacity": buf.capacity,
        "n_envs": n,
        "obs_shape": list(shape),
        "episodes_started": episodes,
        "estimate_bytes": estimate_bytes(buf.capacity, shape, n),
        "array_bytes": buf.nbytes(),
        "available_bytes_at_end": available_memory_bytes(),
        "rss_before_bytes": rss_start,
        "rss_full_bytes": rss_full,
        "peak_rss_bytes": peak_rss_bytes(),
        "add_us_per_transition": fill_s / buf.capacity * 1e6,
        "fill_seconds": fill_s,
        "batch_size": args.batch_size,
        "sample_ms_mean": sample_ms,
    }
    rows = [
        ("transitions", f"{buf.capacity:,}"),
        ("estimate", f"{result['estimate_bytes'] / 1e9:.3f} GB"),
        ("arrays", f"{result['array_bytes'] / 1e9:.3f} GB"),
        ("RSS before", f"{rss_start / 1e9:.3f} GB"),
        ("RSS full", f"{rss_full / 1e9:.3f} GB"),
        ("peak RSS", f"{result['peak_rss_bytes'] / 1e9:.3f} GB"),
        ("add", f"{result['add_us_per_transition']:.1f} us/transition ({fill_s:.0f} s to fill)"),
        (f"sample({args.batch_size})", f"{sample_ms:.3f} ms mean over {args.samples}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
