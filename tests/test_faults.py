"""Faults lose nothing: a signal in the final evaluation, a second process on the same run directory, a folder
whose run stopped before its first checkpoint."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from rlcore.base.errors import CheckpointError, RLCoreError, TrainingInterrupted
from rlcore.base.rundir import PID_FILE, hold_run_dir
from rlcore.run import run
from rlcore.training import offpolicy
from tests.conftest import ROOT, compose_config

TINY = [
    "total_steps=400",
    "agent.learning_starts=100",
    "eval_every=0",
    "final_eval_episodes=2",
    "logger.progress=false",
    "device=cpu",
]


def _rows(path):
    with open(path) as handle:
        return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in csv.DictReader(handle)]


def test_a_signal_in_the_final_evaluation_keeps_the_training_and_resume_finishes_the_run(
    tmp_path, monkeypatch
):
    reference = tmp_path / "reference"
    run(compose_config([f"run_dir={reference}", *TINY]), reference)

    interrupted = tmp_path / "interrupted"
    original = offpolicy.evaluate

    def evaluate_then_sigterm(*args, **kwargs):  # SIGTERM arrives while the final evaluation plays
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(offpolicy, "evaluate", evaluate_then_sigterm)
    with pytest.raises(TrainingInterrupted, match="final evaluation did not finish") as caught:
        run(compose_config([f"run_dir={interrupted}", *TINY]), interrupted)
    assert caught.value.exit_code == 143
    assert (interrupted / "checkpoints" / "last.pt").exists() and not (interrupted / "summary.json").exists()
    monkeypatch.setattr(offpolicy, "evaluate", original)

    overrides = [f"resume={interrupted}", "logger.progress=false"]
    summary = run(compose_config(overrides), interrupted, overrides)
    assert summary["total_steps"] == 400
    assert _rows(interrupted / "metrics.csv") == _rows(reference / "metrics.csv")  # as if never interrupted


def test_a_second_process_on_the_same_run_dir_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom rlcore.base.rundir import hold_run_dir\n"
            f"with hold_run_dir({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RLCoreError, match=f"in use by another rlcore process \\(PID {holder.pid}\\)"):
            run(compose_config([f"run_dir={tmp_path}", *TINY]), tmp_path)
        with pytest.raises(RLCoreError, match=f"PID {holder.pid}"):
            run(compose_config([f"resume={tmp_path}"]), tmp_path)
        assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "metrics.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with hold_run_dir(tmp_path):  # the kernel dropped the dead holder's lock
        assert (tmp_path / PID_FILE).read_text().strip() == str(os.getpid())


def test_a_run_that_stopped_before_its_first_checkpoint_can_be_started_again(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,rollout/episode\n10,1\n")  # e.g. kill -9 before any save
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(CheckpointError, match="stopped before its first checkpoint.*run_dir="):
        run(compose_config([f"resume={tmp_path}"]), tmp_path)
    summary = run(compose_config([f"run_dir={tmp_path}", *TINY]), tmp_path)
    assert summary["total_steps"] == 400
    assert _rows(tmp_path / "metrics.csv")[0]["step"] != "10"  # a fresh metrics.csv, not appended to


@pytest.mark.parametrize("agent", ["supervised", "autoencoder"])
def test_the_epoch_loops_stop_on_divergence_and_keep_no_nan_weights(agent, tmp_path):
    import torch

    from rlcore.base.checkpoint import load_checkpoint
    from rlcore.base.errors import DivergenceError

    overrides = [
        f"agent={agent}",
        "env=Digits",
        "net=mlp",
        "agent.lr=1e30",
        "agent.epochs=3",
        f"run_dir={tmp_path}",
        "logger.progress=false",
        "device=cpu",
    ]
    with pytest.raises(DivergenceError, match="training diverged at epoch 1: .*non-finite.*Lower agent.lr"):
        run(compose_config(overrides), tmp_path)
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "encoder.pt").exists()
    for name in ("last.pt", "best.pt"):
        path = tmp_path / "checkpoints" / name
        if path.exists():  # whatever was saved before the divergence is finite
            state = load_checkpoint(path)["agent"]
            tensors = [t for t in state["model"].values() if t.is_floating_point()]
            assert all(bool(torch.isfinite(t).all()) for t in tensors)


@pytest.mark.parametrize("damage", ["corrupt", "deleted", "foreign"])
def test_a_damaged_replay_file_is_one_clear_error_with_a_way_forward(damage, tmp_path):
    import torch

    run(compose_config([f"run_dir={tmp_path}", *TINY]), tmp_path)
    (replay_file,) = (tmp_path / "checkpoints").glob("replay-*.pt")
    if damage == "corrupt":
        replay_file.write_bytes(replay_file.read_bytes()[:1000])
    elif damage == "deleted":
        replay_file.unlink()
    else:
        torch.save({"step": 400, "replay": {"capacity": 3}}, replay_file)
    resume = [f"resume={tmp_path}", "total_steps=600", "logger.progress=false"]
    with pytest.raises(CheckpointError, match="checkpoint.replay=false") as caught:
        run(compose_config(resume), tmp_path, resume)
    assert "\n" not in str(caught.value) and "weights_only" not in str(caught.value)
    forward = [*resume, "checkpoint.replay=false"]
    summary = run(compose_config(forward), tmp_path, forward)  # the way forward works
    assert summary["total_steps"] == 600


def test_bad_combinations_are_one_config_error(tmp_path):
    from rlcore.base.errors import ConfigError

    cases = [
        (["net=lenet5"], "config key 'net': LeNet5 needs .*env=CartPole.*net=mlp"),
        (["net=nature_cnn"], "config key 'net': .*env=CartPole"),
        (
            ["agent=supervised", "env=Digits", "net=mlp", "total_steps=100"],
            "config key 'total_steps': agent=supervised trains for agent.epochs",
        ),
        (
            ["agent=autoencoder", "env=Digits", "net=mlp", "total_steps=100"],
            "config key 'total_steps': agent=autoencoder",
        ),
    ]
    for i, (overrides, message) in enumerate(cases):
        run_dir = tmp_path / str(i)
        every = [*overrides, f"run_dir={run_dir}", "logger.progress=false", "device=cpu"]
        with pytest.raises(ConfigError, match=message):
            run(compose_config(every), run_dir, every)


def test_resume_below_the_current_step_is_refused_and_a_run_without_updates_warns(tmp_path, capsys):
    from rlcore.base.errors import ConfigError

    run(compose_config([f"run_dir={tmp_path}", *TINY, "agent.learning_starts=1000"]), tmp_path)
    assert "this run makes no update" in capsys.readouterr().err
    (tmp_path / "summary.json").unlink()  # as if stopped after its last save (last.pt is at step 400)
    overrides = [f"resume={tmp_path}", "total_steps=300"]
    with pytest.raises(
        ConfigError, match="is at step 400, past total_steps=300; pass total_steps=400 or more"
    ):
        run(compose_config(overrides), tmp_path, overrides)


def test_evaluate_with_a_run_folder_as_checkpoint_writes_beside_its_checkpoints(tmp_path):
    import evaluate

    run(compose_config([f"run_dir={tmp_path / 'run'}", *TINY]), tmp_path / "run")
    assert evaluate.main([f"checkpoint={tmp_path / 'run'}", "episodes=1"]) == 0
    assert (tmp_path / "run" / "checkpoints" / "eval.json").exists() and not (tmp_path / "eval.json").exists()


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_resume_refuses_a_metrics_file_that_lost_rows(damage, tmp_path):
    run(compose_config([f"run_dir={tmp_path}", *TINY]), tmp_path)
    metrics = tmp_path / "metrics.csv"
    if damage == "deleted":
        metrics.unlink()
    else:
        metrics.write_text(metrics.read_text()[:40])
    overrides = [f"resume={tmp_path}", "total_steps=600"]
    with pytest.raises(CheckpointError, match="metrics.csv (is missing|has 40 bytes)"):
        run(compose_config(overrides), tmp_path, overrides)
    assert not metrics.exists() or len(metrics.read_text()) == 40  # nothing written over it


def test_a_missing_mandatory_value_is_one_line(tmp_path):
    from rlcore.base.errors import ConfigError
    from rlcore.config import to_typed

    with pytest.raises(
        ConfigError,
        match=r"^config key 'env.game' has no value; set it on the command line \(env.game=\.\.\.\)$",
    ):
        to_typed(compose_config(["env=atari"]))


def test_refused_invocations_leave_no_folder_and_do_not_touch_an_existing_runs_record(tmp_path, cli):
    import hashlib

    result = cli("train.py", "agent.lr=-1", f"hydra.run.dir={tmp_path}/runs/new")  # a new folder, refused
    assert result.returncode == 2 and "config key 'agent.lr'" in result.stderr
    assert not (tmp_path / "runs" / "new").exists()

    existing = tmp_path / "existing"
    first = cli("train.py", f"run_dir={existing}", *TINY)
    assert first.returncode == 0, first.stderr[-2000:]

    def record() -> dict:
        return {
            p.relative_to(existing).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(existing.rglob("*"))
            if p.is_file() and p.name != "train.log"
        }

    before = record()
    again = cli("train.py", f"run_dir={existing}", "agent.lr=5", *TINY)
    assert again.returncode == 2 and "already holds a run" in again.stderr and "Traceback" not in again.stderr
    assert record() == before  # .hydra/ and every file of the run as they were


def test_a_refused_run_leaves_a_folder_it_did_not_make_as_it_was(tmp_path, cli):
    """run_dir= a folder that is not a run: a user's files, or another app's .hydra/ record. A refused run deletes
    nothing of it, overwrites nothing and leaves nothing behind (it used to delete the whole folder)."""

    def listing(folder):
        return {
            p.relative_to(folder).as_posix(): p.read_text() if p.is_file() else None
            for p in folder.rglob("*")
        }

    users = tmp_path / "users_folder"
    (users / "sub").mkdir(parents=True)
    (users / "notes.txt").write_text("precious")
    result = cli("train.py", "agent.lr=-1", f"run_dir={users}")
    assert result.returncode == 2 and "config key 'agent.lr'" in result.stderr
    assert listing(users) == {"sub": None, "notes.txt": "precious"}

    other_app = tmp_path / "other_app"
    (other_app / ".hydra").mkdir(parents=True)
    (other_app / ".hydra" / "config.yaml").write_text("keep")
    (other_app / "train.log").write_text("")
    before = listing(other_app)
    result = cli("train.py", "agent.lr=-1", f"run_dir={other_app}")
    assert result.returncode == 2 and "config key 'agent.lr'" in result.stderr
    assert listing(other_app) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agnet.lr=1"], "config key 'agnet.lr' is unknown: there is no 'agnet'; did you mean 'agent'"),
        (
            ["agent.lrr=1"],
            "config key 'agent.lrr' is not a setting of agent=dqn (DQNConfig); did you mean 'lr'?",
        ),
        (
            ["agent=supervised", "env=Digits", "agent.epocs=3"],
            "not a setting of agent=supervised (SupervisedConfig); did you mean 'epochs'?",
        ),
        (
            ["net.hiden_sizes=[8]"],
            "config key 'net.hiden_sizes' is unknown: no net option has it; did you mean 'hidden_sizes'",
        ),
        (["tune.seed=3"], "config key 'tune.seed' is unknown: no tune option has it; did you mean 'seeds'?"),
        (["env=Nope"], "Could not find 'env/Nope'"),  # Hydra's own refusal: exit 2 as well
    ],
)
def test_a_misspelt_key_is_one_line_naming_the_close_ones_and_exits_2(args, message, cli, tmp_path):
    result = cli("train.py", *args, f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "+agent" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_full_disk_while_checkpointing_is_one_error_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    import errno

    import torch

    from rlcore.base import checkpoint

    overrides = [f"run_dir={tmp_path}", *TINY, "checkpoint_every=200"]
    real_save, calls = torch.save, []

    def save_until_the_disk_fills(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) > 2:  # the first last.pt (and its replay) fit; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_the_disk_fills)
    with pytest.raises(
        CheckpointError,
        match="could not write .*replay-400.pt: No space left on device; .*last.pt is kept as it was",
    ):
        run(compose_config(overrides), tmp_path, overrides)
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert checkpoint.load_checkpoint(tmp_path / "checkpoints" / "last.pt")["counters"]["env_steps"] == 200
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))  # no torn temporary file left behind


def test_a_run_dir_that_cannot_exist_is_one_line(tmp_path, cli):
    (tmp_path / "a_file").write_text("not a folder")
    for run_dir in ("/proc/rlcore-test", str(tmp_path / "a_file" / "run")):
        result = cli("train.py", f"run_dir={run_dir}")
        assert result.returncode == 2, result.stderr
        assert (
            f"config key 'run_dir': {run_dir} cannot be created" in result.stderr
            and "Traceback" not in result.stderr
        )


def test_images_without_pixels_are_refused_in_one_line(tmp_path):
    import numpy as np

    from envs.idx import DatasetError, read_image_label_pair, write_idx

    write_idx(tmp_path / "images", np.zeros((5, 0, 0), np.uint8))
    write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(
        DatasetError, match="images are 0x0 pixels; an image needs at least one pixel per side"
    ):
        read_image_label_pair(tmp_path / "images", tmp_path / "labels")


@pytest.mark.parametrize("agent", ["dqn", "supervised"])
def test_summary_says_the_step_best_pt_came_from(agent, tmp_path):
    from rlcore.base.checkpoint import load_checkpoint

    overrides = [f"run_dir={tmp_path}", "logger.progress=false", "device=cpu"]
    if agent == "dqn":
        overrides += [
            "total_steps=600",
            "agent.learning_starts=100",
            "eval_every=200",
            "eval_episodes=2",
            "final_eval_episodes=2",
        ]
    else:
        overrides += ["agent=supervised", "env=Digits", "net=mlp", "agent.epochs=3"]
    summary = run(compose_config(overrides), tmp_path)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")["counters"]
    saved_at = best["env_steps"]
    assert summary["best_checkpoint_step"] == saved_at >= 0


def test_the_learning_curve_is_drawn_from_a_metrics_file_with_the_final_evaluation(tmp_path, monkeypatch):
    seen = []
    original = offpolicy.plot_learning_curve

    def plot(metrics_csv, out_png, title):
        seen.append(_rows(metrics_csv)[-1])
        return original(metrics_csv, out_png, title)

    monkeypatch.setattr(offpolicy, "plot_learning_curve", plot)
    summary = run(compose_config([f"run_dir={tmp_path}", *TINY]), tmp_path)
    (last,) = seen
    assert float(last["eval/mean_return"]) == summary["eval_mean_return"] and last["rollout/epsilon"] == ""


def test_wandb_with_a_key_but_no_network_falls_back_to_offline_within_the_timeout(tmp_path, cli):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        HOME=str(tmp_path),
        WANDB_SILENT="true",
        WANDB_API_KEY="0123456789abcdef" * 2 + "01234567",
        WANDB_BASE_URL="http://127.0.0.1:9",
    )  # a key, and a server that cannot be reached
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    result = cli(
        "train.py",
        *TINY,
        "logger=wandb",
        "logger.mode=online",
        "logger.timeout=5",
        f"run_dir={run_dir}",
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "W&B could not be reached within 5 s" in result.stderr and "Traceback" not in result.stderr
    [offline] = (run_dir / "wandb").glob("offline-run-*")
    assert f"Upload it with: wandb sync {offline}" in result.stdout
    assert (run_dir / "summary.json").exists() and time.perf_counter() - started < 200
