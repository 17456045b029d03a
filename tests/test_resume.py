"""resume=<run_dir>: exact continuation, SIGINT/SIGTERM saves, kill -9, refused changes, divergence guard."""

import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import ROOT, compose_config
from test_cli import read_metrics

from envs.state import env_state, load_env_state
from rlcore.base.checkpoint import load_checkpoint, save_checkpoint
from rlcore.base.errors import CheckpointError, ConfigError
from rlcore.replay import ReplayBuffer
from rlcore.resume_config import resume_config
from rlcore.training.resume import load_replay, write_last

# small and quick, but with every moving part: updates, target syncs, evaluations, checkpoints
TOTAL = 2000
RUN = [
    f"total_steps={TOTAL}",
    "agent.learning_starts=100",
    "agent.train_freq=4",
    "agent.gradient_steps=1",
    "agent.buffer_size=1000",
    "agent.target_update_interval=250",
    "eval_every=500",
    "eval_episodes=2",
    "final_eval_episodes=2",
    "checkpoint_every=150",
    "logger=none",
    "device=cpu",
    "net.hidden_sizes=[32,32]",
]


def start(*args, **env_vars):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", **env_vars}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_checkpoint(proc, run_dir, newer_than=0.0, timeout=120):
    """Wait until checkpoints/last.pt exists and is newer than ``newer_than`` (mtime), while ``proc`` runs."""
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if last.exists() and last.stat().st_mtime > newer_than:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended before a checkpoint: {proc.communicate()[1]}")
        time.sleep(0.02)
    raise AssertionError("no checkpoint in time")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted one must reproduce."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    proc = start(*RUN, f"run_dir={run_dir}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return run_dir


def test_sigint_saves_and_resume_matches_uninterrupted_run(reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = start(*RUN, f"run_dir={run_dir}")
    wait_for_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"resume with: python train.py resume={run_dir}" in err and "Traceback" not in err
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert 0 < saved["counters"]["env_steps"] < TOTAL
    assert not (run_dir / "summary.json").exists()

    proc = start(f"resume={run_dir}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert read_metrics(run_dir / "metrics.csv") == read_metrics(reference / "metrics.csv")
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (run_dir, reference))
    for key in ("total_steps", "episodes", "updates", "eval_mean_return", "best_eval_mean_return"):
        assert ours[key] == theirs[key], key
    replays = sorted(p.name for p in (run_dir / "checkpoints").glob("replay-*.pt"))
    assert replays == [f"replay-{TOTAL}.pt"], "only the replay last.pt names is kept"
    assert f"total_steps={TOTAL}" in (run_dir / ".hydra" / "overrides.yaml").read_text(), (
        "Hydra's record is kept"
    )
    assert list((run_dir / ".hydra").glob("resume-*/overrides.yaml")), "the resume's own record is beside it"


def test_sigterm_saves_and_exits_143(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(*RUN, f"run_dir={run_dir}")
    wait_for_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM received: saved" in err and f"resume with: python train.py resume={run_dir}" in err
    load_checkpoint(run_dir / "checkpoints" / "last.pt")


def test_incompatible_changes_are_refused_harmless_ones_allowed(reference):
    for override, key in [
        ("env=Acrobot", "env."),
        ("net.hidden_sizes=[64,64]", "net.hidden_sizes"),
        ("agent.lr=0.5", "agent.lr"),
        ("seed=3", "seed"),
        ("agent.buffer_size=5000", "agent.buffer_size"),
    ]:
        cfg = compose_config([f"resume={reference}", override])
        with pytest.raises(ConfigError, match=f"config key '{key}.*cannot change it"):
            resume_config(cfg, [f"resume={reference}", override])
    overrides = [
        f"resume={reference}",
        "total_steps=4000",
        "eval_every=1000",
        "logger=csv",
        "checkpoint_every=0",
    ]
    typed, config, ckpt = resume_config(compose_config(overrides), overrides)
    assert (typed.total_steps, typed.eval_every, typed.checkpoint_every) == (4000, 1000, 0)
    assert typed.agent.lr == ckpt["config"]["agent"]["lr"] and typed.run_dir == str(reference)
    assert typed.net.hidden_sizes == [32, 32], "the saved net, not this checkout's default"
    from rlcore.policy import load_agent

    agent, _, _ = load_agent(
        reference / "checkpoints" / "last.pt", device="cpu"
    )  # evaluate.py reads it as before
    assert agent.act(np.zeros((1, 4), np.float32), explore=False).shape == (1,)
    with pytest.raises(ConfigError, match="continues in its own folder"):
        resume_config(compose_config([f"resume={reference}", "run_dir=/elsewhere"]), [])


@pytest.mark.parametrize(
    "switches",
    [
        ["net.hidden_sizes=[16]"],
        ["agent=rainbow_lite", "agent.per_beta0=1.0", "net.hidden_sizes=[16]"],
        [
            "env=CartPoleNoVel",
            "net=lstm",
            "net.hidden_size=8",
            "agent.sequence_length=4",
            "agent.burn_in=2",
            "agent.stored_state=true",
            "agent.batch_size=8",
        ],
        [
            "env=CartPoleNoVel",
            "net=lstm",
            "agent=rainbow_lite",
            "agent.per_beta0=1.0",
            "net.hidden_size=8",
            "agent.sequence_length=4",
            "agent.burn_in=2",
            "agent.stored_state=true",
            "agent.batch_size=8",
        ],
    ],
    ids=["dqn", "rainbow_lite", "drqn", "drqn_rainbow_lite"],
)
def test_finished_run_continues_with_a_larger_total_steps(tmp_path, switches):
    """With ε, lr (and PER's β) constant (no schedule over total_steps), 600 steps then a resume to 900 equal 900
    steps; rainbow_lite also carries the sum-tree's priorities and the n-step replay across the resume, DRQN its
    sequence replay (with stored states) and the actors' hidden states, DRQN with rainbow_lite the sequence
    replay's priorities over training starts and its n-step lookahead."""
    from rlcore.run import run

    common = [
        *switches,
        "agent.learning_starts=100",
        "agent.train_freq=4",
        "agent.gradient_steps=1",
        "agent.buffer_size=1000",
        "agent.exploration_fraction=0",
        "agent.lr_final=null",
        "agent.target_update_interval=100",
        "eval_every=300",
        "eval_episodes=2",
        "final_eval_episodes=2",
        "logger=none",
        "device=cpu",
    ]
    whole, run_dir = tmp_path / "whole", tmp_path / "run"
    run(compose_config(o := [*common, "total_steps=900", f"run_dir={whole}"]), whole, o)
    run(compose_config(o := [*common, "total_steps=600", f"run_dir={run_dir}"]), run_dir, o)
    with pytest.raises(ConfigError, match="already finished at step 600"):
        run(compose_config([f"resume={run_dir}"]), run_dir, [f"resume={run_dir}"])
    overrides = [f"resume={run_dir}", "total_steps=900"]
    summary = run(compose_config(overrides), run_dir, overrides)
    assert summary["total_steps"] == 900
    # the final evaluation row of the 600-step run is dropped; the rest is the 900-step run exactly
    assert read_metrics(run_dir / "metrics.csv") == read_metrics(whole / "metrics.csv")
    assert "total_steps: 900" in (run_dir / "config.yaml").read_text()


def test_divergence_stops_with_step_and_keeps_the_last_good_checkpoint(tmp_path, cli):
    run_dir = tmp_path / "run"
    result = cli(
        "train.py",
        "total_steps=2000",
        "agent.learning_starts=400",
        "agent.lr=1e30",
        "agent.loss=mse",
        "checkpoint_every=100",
        "eval_every=0",
        "logger=none",
        "device=cpu",
        f"run_dir={run_dir}",
    )
    assert result.returncode == 2, result.stderr
    assert "training diverged at step" in result.stderr and "Last metrics: step=" in result.stderr
    assert "Traceback" not in result.stderr
    kept = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in kept["agent"]["online"].values())
    assert kept["counters"]["env_steps"] == 300, (
        "the checkpoint at 400 (after the first update) is not written"
    )
    assert (
        "Last good checkpoint: " + str(run_dir / "checkpoints" / "last.pt") + " from step 300"
        in result.stderr
    )
    assert int(read_metrics(run_dir / "metrics.csv")[-1]["step"]) > 300, (
        "rows after the checkpoint are flushed"
    )
    assert not (run_dir / "checkpoints" / "best.pt").exists() and not (run_dir / "summary.json").exists()


def test_weights_only_checkpoints_are_refused_with_a_clear_message(tmp_path):
    save_checkpoint(
        tmp_path / "checkpoints" / "last.pt", {"config": {"agent": {"name": "supervised"}}, "agent": {}}
    )
    with pytest.raises(CheckpointError, match="holds weights only \\(agent supervised\\)"):
        resume_config(compose_config([f"resume={tmp_path}"]), [])
    with pytest.raises(CheckpointError, match="no checkpoints/last.pt"):
        resume_config(compose_config([f"resume={tmp_path / 'nope'}"]), [])


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
def test_env_snapshot_continues_exactly(env_id):
    def make():
        envs = gym.vector.SyncVectorEnv(
            [lambda: gym.make(env_id) for _ in range(2)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        envs.reset(seed=5)
        return envs

    actions = np.random.default_rng(0).integers(0, 2, size=(400, 2))
    a = make()
    for act in actions[:150]:
        a.step(act)
    b = make()
    load_env_state(b, env_state(a))
    for act in actions[150:]:  # through several autoresets (CartPole) and time limits
        for x, y in zip(a.step(act)[:4], b.step(act)[:4], strict=True):
            np.testing.assert_array_equal(x, y)


def test_replay_file_pairs_with_last_pt_through_a_kill_between_writes(tmp_path):
    space = gym.spaces.Box(-1, 1, (3,), np.float32)
    replay = ReplayBuffer(50, space, seed=1)
    for i in range(30):
        replay.add(
            np.full((1, 3), i, np.float32),
            np.full((1, 3), i + 1, np.float32),
            np.array([i % 2]),
            np.array([1.0]),
            np.array([0.0]),
            np.array([0.0]),
        )
    payload = {"config": {}, "counters": {"env_steps": 30}, "train": {}}
    write_last(tmp_path, payload, replay, 30)
    expected = replay.sample_indices(8)
    torch.save({"step": 31, "replay": {}}, tmp_path / "replay-31.pt")  # a kill after the next replay write
    restored = ReplayBuffer(50, space, seed=99)
    assert load_replay(tmp_path, load_checkpoint(tmp_path / "last.pt"), restored)
    assert len(restored) == 30 and np.array_equal(restored.obs[:30], replay.obs[:30])
    assert np.array_equal(restored.sample_indices(8), expected), "the generator continues where it was saved"
    write_last(tmp_path, {**payload, "counters": {"env_steps": 32}}, replay, 32)
    assert sorted(p.name for p in tmp_path.glob("replay-*.pt")) == ["replay-32.pt"]
    torch.save({"step": 31, "replay": {}}, tmp_path / "replay-32.pt")
    with pytest.raises(CheckpointError, match="from step 31, last.pt from step 32"):
        load_replay(tmp_path, load_checkpoint(tmp_path / "last.pt"), restored)


def test_dataset_env_snapshot_continues_exactly():
    from envs.dataset_env import DatasetVectorEnv
    from envs.datasets import ImageDataset

    rng = np.random.default_rng(0)
    data = ImageDataset("toy", rng.integers(0, 255, (37, 1, 4, 4), dtype=np.uint8), rng.integers(0, 3, 37), 3)

    def make():
        envs = DatasetVectorEnv(data, 5, seed=2)
        envs.reset(seed=2)
        return envs

    a = make()
    for _ in range(11):  # into the second epoch's shuffled order
        a.step(np.zeros(5, dtype=np.int64))
    b = DatasetVectorEnv(data, 5, seed=2)  # as make_env returns it: not reset yet
    load_env_state(b, env_state(a))
    for _ in range(20):
        acts = rng.integers(0, 3, 5)
        (xa, ra, *_, ia), (xb, rb, *_, ib) = a.step(acts), b.step(acts)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ia["index"], ib["index"])


def test_divergence_in_a_logged_row_names_the_metric(tmp_path):
    from rlcore.base.errors import DivergenceError
    from rlcore.run import run

    run_dir = tmp_path / "run"
    overrides = [
        "total_steps=1500",
        "agent.learning_starts=100",
        "agent.lr=1e30",
        "agent.loss=mse",
        "checkpoint_every=0",
        "eval_every=0",
        "logger=none",
        "device=cpu",
        f"run_dir={run_dir}",
    ]
    with pytest.raises(DivergenceError, match=r"diverged at step \d+: train/loss.* became non-finite"):
        run(compose_config(overrides), run_dir, overrides)
    rows = read_metrics(run_dir / "metrics.csv")
    assert rows[-1]["train/loss"] in ("nan", "inf"), "the diverged row is in metrics.csv, flushed"
    assert not (run_dir / "checkpoints" / "last.pt").exists()


def test_resume_without_a_saved_replay_waits_learning_starts(tmp_path):
    from rlcore.run import run

    run_dir = tmp_path / "run"
    first = [
        "total_steps=400",
        "agent.learning_starts=100",
        "agent.train_freq=4",
        "agent.gradient_steps=1",
        "agent.buffer_size=1000",
        "checkpoint.replay=false",
        "eval_every=0",
        "final_eval_episodes=1",
        "logger=none",
        "device=cpu",
        "net.hidden_sizes=[16]",
        f"run_dir={run_dir}",
    ]
    assert run(compose_config(first), run_dir, first)["updates"] == 76  # steps 100, 104, ..., 400
    assert not list((run_dir / "checkpoints").glob("replay-*.pt"))
    again = [f"resume={run_dir}", "total_steps=800"]
    summary = run(compose_config(again), run_dir, again)
    assert summary["updates"] == 76 + 76, (
        "an empty replay refills for learning_starts steps: 500, 504, ..., 800"
    )
