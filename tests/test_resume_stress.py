"""kill -9 at random moments, 20 times, then resume to the end: every checkpoint loads, the metrics are exact.

Slow: 22 interpreter starts and two 30,000-step runs; measured 1,017 s on the shared 2-core machine at a load
average of 11-15 (other jobs running), so expect minutes on an idle one. Run with ``pytest -m slow``.
"""

import json
import signal
import time

import numpy as np
import pytest
import torch
from test_cli import read_metrics
from test_resume import start, wait_for_checkpoint

from rlcore.base.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

TOTAL = 30000
RUN = [
    f"total_steps={TOTAL}",
    "agent.learning_starts=100",
    "agent.train_freq=4",
    "agent.gradient_steps=1",
    "agent.buffer_size=2000",
    "agent.target_update_interval=250",
    "eval_every=5000",
    "eval_episodes=2",
    "final_eval_episodes=2",
    "logger=none",
    "device=cpu",
    "net.hidden_sizes=[32,32]",
]
KILLS = 20


def test_kill_9_at_random_times_always_leaves_a_loadable_checkpoint(tmp_path):
    reference = tmp_path / "reference"
    proc = start(*RUN, "checkpoint_every=0", f"run_dir={reference}")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err

    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    rng = np.random.default_rng()
    steps, killed_at = [], 0.0
    for kill in range(KILLS):
        args = [*RUN, "checkpoint_every=25", f"run_dir={run_dir}"] if kill == 0 else [f"resume={run_dir}"]
        proc = start(*args)
        wait_for_checkpoint(proc, run_dir, newer_than=killed_at)  # this process has written at least once
        time.sleep(rng.uniform(0.0, 0.3))
        assert proc.poll() is None, "the run ended before it was killed; raise TOTAL"
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        killed_at = time.time()
        ckpt = load_checkpoint(checkpoints / "last.pt")  # never torn
        replay = torch.load(checkpoints / ckpt["train"]["replay_file"], weights_only=True)
        assert replay["step"] == ckpt["counters"]["env_steps"], "last.pt and its replay file belong together"
        steps.append(ckpt["counters"]["env_steps"])
    assert steps == sorted(steps) and steps[-1] < TOTAL, steps

    proc = start(f"resume={run_dir}")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert read_metrics(run_dir / "metrics.csv") == read_metrics(reference / "metrics.csv")
    assert not list(checkpoints.glob(".*.tmp")), "torn temporary files are cleaned up on resume"


def test_wandb_resumes_the_same_run_id(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    offline = {"HOME": str(home), "WANDB_MODE": "offline"}  # no API key: offline runs in the run dir
    run_dir = tmp_path / "run"
    proc = start(*RUN, "logger=wandb", "checkpoint_every=25", f"run_dir={run_dir}", **offline)
    wait_for_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_id = load_checkpoint(run_dir / "checkpoints" / "last.pt")["train"]["wandb_id"]
    assert run_id
    proc = start(f"resume={run_dir}", f"total_steps={TOTAL // 4}", **offline)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(run_id) for r in runs), runs
    assert json.loads((run_dir / "summary.json").read_text())["total_steps"] == TOTAL // 4
