"""benchmarks/atari100k.py on a tiny synthetic result set: the per-game table, human-normalised scores, the
rliable IQM/mean with stratified-bootstrap CIs across games, the learning-curve PNG and the JSON; resuming
reads finished runs instead of training them.

Named to run after tests/test_cli.py: once rliable is imported (it brings absl), a later in-process Hydra main
under capsys (test_cli's) crashed pytest itself with "lost sys.stderr"; the in-process tests run first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark

from rlcore.intervals import aggregate_across_tasks, rliable_available

bench = load_benchmark("atari100k")

SCORES = {"Breakout": [10.0, 20.0, 30.0, 40.0], "Pong": [-20.7, -20.7, 14.6, 14.6]}


def fake_runs(out: Path) -> None:
    for game, scores in SCORES.items():
        for seed, score in enumerate(scores):
            run = out / "drq" / game / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "summary.json").write_text(
                json.dumps(
                    {
                        "eval_mean_return": score,
                        "eval_std_return": 2.0,
                        "eval_episodes": 100,
                        "train_sps": 30.0,
                        "wall_time_s": 600.0,
                        "train_time_s": 480.0,
                        "train_cpu_s": 450.0,
                    }
                )
            )
            rows = ["step,rollout/episode_return,train/loss"]
            rows += [f"{step},{score * step / 100_000},0.1" for step in range(1000, 100_001, 1000)]
            rows += ["100000,,0.1"]  # a row without an episode
            (run / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_human_normalised_by_hand() -> None:
    assert bench.human_normalised(30.5, "Breakout") == pytest.approx(1.0)
    assert bench.human_normalised(1.7, "Breakout") == 0.0
    assert bench.human_normalised(16.1, "Breakout") == pytest.approx(14.4 / 28.8)
    assert bench.human_normalised(-3.05, "Pong") == pytest.approx(0.5)


def test_table_and_aggregates_on_a_synthetic_set(tmp_path: Path) -> None:
    fake_runs(tmp_path / "runs")
    results = tmp_path / "results"
    code = bench.main(
        [
            "--report-only",
            "--games",
            "Breakout",
            "Pong",
            "--seeds",
            "4",
            "--out",
            str(tmp_path / "runs"),
            "--results",
            str(results),
            "--reps",
            "300",
        ]
    )
    assert code == 0
    payload = json.loads((results / "atari100k.json").read_text())
    rows = {row["game"]: row for row in payload["per_game"]}
    assert rows["Breakout"]["mean"] == pytest.approx(25.0) and rows["Breakout"]["min"] == 10.0
    assert rows["Breakout"]["std"] == pytest.approx(np.std([10, 20, 30, 40]))
    assert rows["Breakout"]["hns_mean"] == pytest.approx((25.0 - 1.7) / 28.8)
    assert rows["Pong"]["hns_mean"] == pytest.approx(0.5)
    assert rows["Breakout"]["anchors"]["SimPLe"] == 16.4
    assert payload["runs"][0]["command"] == (
        "python train.py agent=drq env=Breakout seed=0 device=cpu threads=1 logger=csv logger.progress=false"
    )
    assert (results / "atari100k.png").stat().st_size > 0
    if not rliable_available():
        pytest.skip("rliable (the stats extra) is not installed")
    agg = payload["across_games"]["drq"]
    hns = np.array(
        [[bench.human_normalised(SCORES[g][i], g) for g in ("Breakout", "Pong")] for i in range(4)]
    )
    assert agg["runs"] == 4 and agg["tasks"] == 2 and agg["games"] == ["Breakout", "Pong"]
    assert agg["mean"] == pytest.approx(hns.mean())
    # IQM of the 8 normalised scores: the mean of the middle 4 (scipy trim_mean, 25 % cut each side)
    middle = np.sort(hns.ravel())[2:6]
    assert agg["iqm"] == pytest.approx(middle.mean())
    assert agg["iqm_ci"][0] <= agg["iqm"] <= agg["iqm_ci"][1]
    assert agg["mean_ci"][0] <= agg["mean"] <= agg["mean_ci"][1]


def test_stratified_bootstrap_keeps_each_task_and_needs_three_runs() -> None:
    if not rliable_available():
        pytest.skip("rliable (the stats extra) is not installed")
    constant = np.tile([0.1, 0.9], (5, 1))  # no spread within a task: every resample gives the same numbers
    result = aggregate_across_tasks(constant, reps=200)
    assert result is not None
    assert result["mean_ci"] == pytest.approx([0.5, 0.5]) and result["iqm"] == pytest.approx(0.5)
    assert aggregate_across_tasks(constant[:2], reps=200) is None


def recorded_results(results: Path, runs: list[dict], steps: int = 100_000) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "atari100k.json").write_text(json.dumps({"steps": steps, "runs": runs}))


def breakout_report(tmp_path: Path, *flags: str) -> dict:
    """The benchmark on Breakout seeds 0-3 with runs in ``tmp_path/runs``; the JSON it writes."""
    code = bench.main(
        [
            "--games",
            "Breakout",
            "--seeds",
            "4",
            "--out",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
            "--reps",
            "100",
            *flags,
        ]
    )
    assert code == 0
    return json.loads((tmp_path / "results" / "atari100k.json").read_text())


def test_finished_runs_are_read_not_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_runs(tmp_path / "runs")
    monkeypatch.setattr(bench, "_run", lambda *a, **k: pytest.fail("a finished run was trained again"))
    runs = breakout_report(tmp_path, "--jobs", "2")["runs"]
    assert sorted(r["score"] for r in runs) == SCORES["Breakout"]
    assert all(r["command"].startswith("python train.py agent=drq env=Breakout") for r in runs)


def test_pretraining_frames_count_against_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def fake(cmd: list[str], run_dir: Path, env: dict, resumable: bool = False) -> None:
        commands.append(cmd)
        run_dir.mkdir(parents=True)
        summary = (
            {"collect_env_steps": 8000, "wall_time_s": 2.0}
            if "agent=autoencoder" in cmd
            else {"eval_mean_return": 5.0}
        )
        (run_dir / "summary.json").write_text(json.dumps(summary))

    monkeypatch.setattr(bench, "_run", fake)
    args = bench.argparse.Namespace(
        extra=[], steps=100_000, dae_frames=8000, dae_epochs=3, checkpoint_every=10_000
    )
    record = bench.run_one("drq_dae", "Breakout", 0, tmp_path, args, "abc1234")
    dae, rl = commands
    assert "agent.noise=masking" in dae and "agent.frames=8000" in dae and "net=nature_cnn" in dae
    assert "total_steps=92000" in rl and any(a.startswith("net.pretrained=") for a in rl)
    assert f"agent.exploration_fraction={5000 / 92000:.6f}" in rl
    assert record["pretrain"]["env_steps"] == 8000 and record["score"] == 5.0


def test_the_bf16_arm_is_the_preset_with_amp_and_checkpointing_is_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], bool]] = []

    def fake(cmd: list[str], run_dir: Path, env: dict, resumable: bool = False) -> None:
        calls.append((cmd, resumable))
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"eval_mean_return": 7.0}))

    monkeypatch.setattr(bench, "_run", fake)
    args = bench.argparse.Namespace(
        extra=[], steps=100_000, dae_frames=8000, dae_epochs=3, checkpoint_every=10_000
    )
    record = bench.run_one("drq_bf16", "Breakout", 2, tmp_path, args, "abc1234")
    ((cmd, resumable),) = calls
    assert "amp=true" in cmd and "checkpoint.replay=true" in cmd and "checkpoint_every=10000" in cmd
    assert resumable
    assert record["command"] == (
        "python train.py agent=drq env=Breakout seed=2 device=cpu threads=1 logger=csv logger.progress=false amp=true"
    )
    assert record["resumed_at"] == [] and record["commits"] == ["abc1234"]


def test_recorded_runs_whose_folders_are_gone_stay_in_the_table(tmp_path: Path) -> None:
    fake_runs(tmp_path / "runs")  # Breakout seeds 0-3 in folders
    old = {"arm": "drq", "game": "Breakout", "command": "python train.py agent=drq env=Breakout seed=7"}
    recorded_results(
        tmp_path / "results",
        [
            {**old, "seed": 7, "score": 50.0, "commits": ["7e0ef48"]},  # no folder: kept, curve and all
            {**old, "seed": 0, "score": 99.0},  # its folder is read again: the folder's score wins
        ],
    )
    payload = breakout_report(tmp_path, "--report-only")
    runs = {r["seed"]: r for r in payload["runs"]}
    assert sorted(runs) == [0, 1, 2, 3, 7] and payload["seeds"] == [0, 1, 2, 3, 7]
    assert runs[7]["score"] == 50.0 and runs[7]["commits"] == ["7e0ef48"] and runs[7]["curve"] == []
    assert runs[0]["score"] == SCORES["Breakout"][0] and runs[0]["curve"]  # curves are kept in the JSON now
    (row,) = payload["per_game"]
    assert row["seeds"] == 5 and row["mean"] == pytest.approx((10 + 20 + 30 + 40 + 50) / 5)
    # the next report reads this one's records, curves included
    assert breakout_report(tmp_path, "--report-only")["runs"] == payload["runs"]


def test_each_run_keeps_what_the_published_table_shows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Score spread, the last training games, training CPU time and the final evaluation's wall time are in
    the record (a run's folder may be gone by the next report) and in the per-run table the docs paste."""
    fake_runs(tmp_path / "runs")
    recorded_results(
        tmp_path / "results",
        [{"arm": "drq", "game": "Breakout", "seed": 7, "score": 50.0, "command": "-"}],  # an older record
    )
    runs = {r["seed"]: r for r in breakout_report(tmp_path, "--report-only")["runs"]}
    # fake_runs: one episode every 1,000 steps with return score * step / 100k; the last 20 end at 81k-100k
    assert runs[1]["last_train_games"] == pytest.approx(20.0 * np.mean(np.arange(81, 101)) / 100)
    assert runs[1]["score_std"] == 2.0 and runs[1]["train_cpu_s"] == 450.0 and runs[1]["eval_wall_s"] == 120.0
    assert runs[7]["train_cpu_s"] is None and runs[7]["last_train_games"] is None
    printed = capsys.readouterr().out
    assert "| drq | Breakout | 1 | 20.00 ± 2.00 (100) | 18.10 | 7.5 min | 2.0 min | – |" in printed
    assert "| drq | Breakout | 7 | 50.00 | – | – | – | – |" in printed


def test_recorded_runs_of_another_budget_or_forgotten_ones_are_left_out(tmp_path: Path) -> None:
    fake_runs(tmp_path / "runs")
    recorded_results(
        tmp_path / "results",
        [{"arm": "drq", "game": "Breakout", "seed": 7, "score": 50.0, "command": "-"}],
        steps=2000,  # a smoke run never joins a 100k table
    )
    assert sorted(r["seed"] for r in breakout_report(tmp_path, "--report-only")["runs"]) == [0, 1, 2, 3]
    recorded_results(
        tmp_path / "results", [{"arm": "drq", "game": "Breakout", "seed": 7, "score": 50.0, "command": "-"}]
    )
    forgotten = breakout_report(tmp_path, "--report-only", "--forget-recorded")
    assert sorted(r["seed"] for r in forgotten["runs"]) == [0, 1, 2, 3]


class FakeProcesses:
    """Stands in for subprocess.run: records each command, fails the ones named, and 'trains' the others."""

    def __init__(self, fail_resume: bool = False) -> None:
        self.commands: list[list[str]] = []
        self.fail_resume = fail_resume

    def __call__(self, cmd: list[str], **kwargs: object) -> object:
        self.commands.append(cmd)
        resume = next((a for a in cmd if a.startswith("resume=")), None)
        if resume and self.fail_resume:
            return bench.subprocess.CompletedProcess(cmd, 2, "", "resume refused")
        run_dir = Path(resume[len("resume=") :]) if resume else Path(cmd[-1][len("run_dir=") :])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").write_text("{}")
        return bench.subprocess.CompletedProcess(cmd, 0, "", "")


def unfinished_run(tmp_path: Path, step: int | None) -> tuple[list[str], Path]:
    import torch

    run_dir = tmp_path / "drq" / "Breakout" / "seed0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "metrics.csv").write_text("step\n")
    if step is not None:
        torch.save({"counters": {"env_steps": step}}, run_dir / "checkpoints" / "last.pt")
    return bench.rl_command(
        "Breakout", 0, run_dir, ["checkpoint.replay=true", "checkpoint_every=10000"]
    ), run_dir


def test_an_unfinished_run_goes_on_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd, run_dir = unfinished_run(tmp_path, step=30_000)
    fake = FakeProcesses()
    monkeypatch.setattr(bench.subprocess, "run", fake)
    bench._run(cmd, run_dir, {}, resumable=True)
    (resume,) = fake.commands
    assert resume[:3] == ["nice", "-n", "10"] and f"resume={run_dir}" in resume
    assert (run_dir / "metrics.csv").exists()  # continued in place, not removed
    assert json.loads((run_dir / "resumed_at.json").read_text()) == [30_000]


def test_a_run_that_cannot_resume_is_kept_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd, run_dir = unfinished_run(tmp_path, step=30_000)
    fake = FakeProcesses(fail_resume=True)
    monkeypatch.setattr(bench.subprocess, "run", fake)
    with pytest.raises(RuntimeError, match=r"stopped at step 30000\); remove .*seed0 to train it again"):
        bench._run(cmd, run_dir, {}, resumable=True)
    assert len(fake.commands) == 1 and (run_dir / "checkpoints" / "last.pt").exists()


def test_a_folder_a_live_run_holds_is_not_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlcore.base.errors import RLCoreError
    from rlcore.base.rundir import hold_run_dir

    cmd, run_dir = unfinished_run(tmp_path, step=None)
    monkeypatch.setattr(bench.subprocess, "run", FakeProcesses())
    with hold_run_dir(run_dir), pytest.raises(RLCoreError, match="in use by another rlcore process"):
        bench._run(cmd, run_dir, {}, resumable=True)
    assert (run_dir / "metrics.csv").exists()


def test_a_run_without_a_checkpoint_starts_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd, run_dir = unfinished_run(tmp_path, step=None)
    fake = FakeProcesses()
    monkeypatch.setattr(bench.subprocess, "run", fake)
    bench._run(cmd, run_dir, {}, resumable=True)
    (fresh,) = fake.commands
    assert fresh[3:] == cmd and not (run_dir / "metrics.csv").exists()


def test_a_negative_checkpoint_interval_gets_one_line(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--checkpoint-every", "-5", "--report-only"])
    assert exit_info.value.code == 2 and "--checkpoint-every must be >= 0" in capsys.readouterr().err


def test_the_bf16_arm_is_refused_on_a_cpu_without_bf16_kernels(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlcore.base import seeding

    monkeypatch.setattr(seeding, "native_bf16_on_cpu", lambda: False)
    monkeypatch.setattr(bench, "_run", lambda *a, **k: pytest.fail("a run started"))
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--arms", "drq", "drq_bf16", "--steps", "2000"])
    assert exit_info.value.code == 2 and "no oneDNN bf16 support" in capsys.readouterr().err
