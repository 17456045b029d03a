"""The GPU path in one script, within 8 minutes: CUDA tests, Breakout training on the GPU recipe, the 100k preset.

    python benchmarks/gpu_check.py                 # on a CUDA machine; prints one line and exits 0 without CUDA
    python benchmarks/gpu_check.py --minutes 8     # the total budget the parts share (default 8)

Parts, each a child process so that one failure (an error, an out-of-memory) is reported and the rest still run:

1. ``pytest -m cuda tests/test_cuda.py``: the CUDA-marked tests (skipped on CPU-only machines);
2. Breakout with the GPU recipe (``device=cuda replay.device=cuda``, DQN's Atari settings) four times: fp32,
   ``amp=true`` (bf16 autocast), ``compile=true``, both; together about 5 minutes, each stopped by a timer
   (SIGINT: the run saves and stops like Ctrl-C) after its share;
3. ``agent=drq env=Breakout`` (the Atari 100k preset) on the same recipe for the rest of the budget.

For every training part: env steps reached, training SPS, ms per update (CUDA-synchronised, timed on every 20th
update), peak GPU memory (``torch.cuda.max_memory_allocated``) and the error, if any. JSON:
benchmarks/results/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPE = ["device=cuda", "replay.device=cuda", "logger=none", "eval_every=0", "final_eval_episodes=1"]
# DQN's Atari settings, with learning from 2,000 steps so that a short part times updates
SHORT = ["env=Breakout", "agent.learning_starts=2000", "env.eval_max_episode_frames=2000"]
BREAKOUT = {
    "dqn fp32": SHORT,
    "dqn amp": [*SHORT, "amp=true"],
    "dqn compile": [*SHORT, "compile=true"],
    "dqn amp+compile": [*SHORT, "amp=true", "compile=true"],
}
PRESET = {"drq (Atari 100k preset)": ["agent=drq", "env=Breakout"]}
TIMED_EVERY = 20


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def child(seconds: float, overrides: list[str], out: Path) -> None:
    """One training run in this process, stopped by SIGINT after ``seconds``; writes its figures to ``out``."""
    import torch
    from hydra import compose, initialize_config_dir

    from agents.dqn import DQNAgent
    from rlcore.base.errors import TrainingInterrupted
    from rlcore.config import register_configs
    from rlcore.run import run

    register_configs()
    timings: list[float] = []
    calls = [0]
    original = DQNAgent.update

    def timed_update(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] % TIMED_EVERY:
            return original(self, *args, **kwargs)
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = original(self, *args, **kwargs)
        torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
        return result

    DQNAgent.update = timed_update  # type: ignore[method-assign]
    signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    record: dict[str, Any] = {"overrides": overrides, "error": None}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rlcore-gpu-check-") as tmp:
        run_dir = Path(tmp) / "run"
        try:
            with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
                cfg = compose("config", overrides=[*RECIPE, *overrides, f"run_dir={run_dir}"])
            signal.setitimer(signal.ITIMER_REAL, seconds)
            run(cfg, run_dir)
        except TrainingInterrupted:
            pass  # the timer: the expected way out
        except BaseException as exc:  # reported, not raised: the other parts still run
            record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        steps, sps = 0, None
        metrics = run_dir / "metrics.csv"
        if metrics.exists():
            import csv

            with open(metrics, newline="") as handle:
                for row in csv.DictReader(handle):
                    steps = int(row["step"])
                    sps = float(row["time/sps"]) if row.get("time/sps") else sps
    record.update(
        env_steps=steps,
        train_sps=sps,
        updates=calls[0],
        update_ms=round(1e3 * sum(timings) / len(timings), 2) if timings else None,
        peak_gpu_memory_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2),
        wall_s=round(time.perf_counter() - start, 1),
    )
    out.write_text(json.dumps(record))


def run_part(name: str, seconds: float, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "part.json"
        cmd = [sys.executable, __file__, "--child", str(seconds), str(out), *overrides]
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 90)
        except subprocess.TimeoutExpired:
            return {"part": name, "error": f"did not stop within {seconds + 90:.0f} s"}
        if out.exists():
            return {"part": name, **json.loads(out.read_text())}
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"part": name, "error": f"exit {done.returncode}: {tail[0]}"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=8.0, help="total budget of the check")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(float(args.child[0]), args.child[2:], Path(args.child[1]))
        return 0
    if not cuda_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check")
        return 0
    import torch

    start = time.perf_counter()
    budget = args.minutes * 60
    results: list[dict] = []
    # 1. the CUDA-marked tests (about a minute at most)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=max(60.0, budget * 0.15),
    )
    summary_line = (done.stdout.strip().splitlines() or ["no output"])[-1]
    results.append({"part": "pytest -m cuda", "returncode": done.returncode, "summary": summary_line})
    print(f"pytest -m cuda: {summary_line}", flush=True)
    # 2. and 3.: the training parts share what is left, with 30 s of slack per part for start-up and saving
    left = budget - (time.perf_counter() - start)
    parts = {**BREAKOUT, **PRESET}
    share = max(20.0, (left - 30 * len(parts)) / len(parts))
    for name, overrides in parts.items():
        seconds = share * (1.5 if name in PRESET else 1.0)
        seconds = min(seconds, budget - (time.perf_counter() - start) - 40)
        if seconds < 15:
            results.append({"part": name, "error": "skipped: the budget is spent"})
            continue
        result = run_part(name, seconds, overrides)
        results.append(result)
        print(
            f"{name:26s} steps {result.get('env_steps')}, SPS {result.get('train_sps')}, "
            f"update {result.get('update_ms')} ms, peak GPU memory {result.get('peak_gpu_memory_gb')} GB"
            + (f", ERROR {result['error']}" if result.get("error") else ""),
            flush=True,
        )
    payload = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "wall_s": round(time.perf_counter() - start, 1),
        "parts": results,
    }
    out = ROOT / "benchmarks" / "results" / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"total {payload['wall_s']} s; written to {out}")
    return 0 if all(not r.get("error") and r.get("returncode", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
