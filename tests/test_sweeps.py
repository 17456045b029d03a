"""Multirun sweeps (train.py -m, basic and joblib launchers, the SLURM config) and the aggregate report."""

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, compose_many

from rlcore.report import aggregate, aggregate_curves, find_runs, format_table, group_runs, main, mean_std
from rlcore.sweeps import explicit_run_dir, run_dir_refusal
from rlcore.training.plots import moving_average

TINY = [
    "total_steps=300",
    "agent.learning_starts=100",
    "agent.train_freq=4",
    "agent.gradient_steps=1",
    "eval_every=150",
    "eval_episodes=2",
    "final_eval_episodes=2",
    "device=cpu",
]


# ---------------------------------------------------------------- pure math, hand-computed


def test_mean_std_is_the_sample_std_across_seeds():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))  # (2.25+0.25+0.25+2.25)/3
    assert mean_std([500.0, 300.0]) == (400.0, pytest.approx(141.4213562))
    assert mean_std([7.0]) == (7.0, None)  # one seed: no spread to report
    assert mean_std([]) == (None, None)
    assert mean_std([1.0, float("nan"), None, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))


def test_aggregate_curves_per_step_across_seeds():
    curves = [
        ([0, 10, 20, 20], [1.0, 3.0, 5.0, 9.0]),  # step 20 twice (periodic + final eval): the last counts
        ([0, 10], [3.0, 5.0]),
    ]
    out = aggregate_curves(curves)
    assert out["step"] == [0, 10, 20]
    assert out["mean"] == [2.0, 4.0, 9.0]
    assert (
        out["std"][:2] == [pytest.approx(math.sqrt(2)), pytest.approx(math.sqrt(2))] and out["std"][2] is None
    )
    assert out["min"] == [1.0, 3.0, 9.0] and out["max"] == [3.0, 5.0, 9.0] and out["n"] == [2, 2, 1]


def test_moving_average_is_a_trailing_mean():
    assert moving_average([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert moving_average([4.0, 0.0, 2.0], 5) == [4.0, 2.0, 2.0]


def test_explicit_run_dir_is_found_in_any_override_form():
    assert explicit_run_dir(["seed=0,1", "run_dir=runs/x"]) == "runs/x"
    assert explicit_run_dir(["++run_dir=/tmp/y", "seed=1"]) == "/tmp/y"
    assert explicit_run_dir(["hydra.run.dir=z", "seed=0,1", "env.name=run_dir"]) is None
    assert "hydra.sweep.dir=runs/x" in run_dir_refusal(["run_dir=runs/x"])


# ---------------------------------------------------------------- the report on hand-made runs


def make_run(
    folder: Path,
    *,
    env="CartPole",
    agent="dqn",
    seed=0,
    final=None,
    best=None,
    steps=1000,
    config=None,
    finished=True,
    curve=((500, 10.0), (1000, 20.0)),
):
    folder.mkdir(parents=True)
    cfg = {
        "env": {"name": env},
        "agent": {"name": agent, "lr": 1e-3, "double": False},
        "net": {"name": "mlp", "hidden_sizes": [64, 64]},
        "logger": {"name": "none", "progress": False},
        "seed": seed,
        "run_dir": str(folder),
        "total_steps": steps,
    }
    for key, value in (config or {}).items():
        group, _, name = key.rpartition(".")
        (cfg[group] if group else cfg)[name] = value
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = ["step,rollout/episode_return,eval/mean_return"]
    rows += [f"{s},{10 + seed},{''}" for s in (100, 300, 700, 900)] + [f"{s},,{v + seed}" for s, v in curve]
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    if finished:
        summary = {
            "env": env,
            "agent": agent,
            "seed": seed,
            "total_steps": steps,
            "eval_mean_return": final,
            "best_eval_mean_return": best if best is not None else final,
            "train_sps": 100.0,
        }
        (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def runs_folder(tmp_path):
    root = tmp_path / "sweep"
    make_run(root / "0", seed=0, final=500.0, best=500.0)
    make_run(
        root / "1", seed=1, final=300.0, best=450.0, config={"logger.name": "csv", "logger.progress": True}
    )
    make_run(root / "2", seed=0, final=100.0, config={"agent.double": True})
    make_run(root / "3", seed=1, final=200.0, config={"agent.double": True})
    make_run(root / "nested" / "4", env="Acrobot", seed=0, final=-90.0, config={"agent.lr": 6.3e-4})
    make_run(root / "nested" / "8", env="Acrobot", seed=1, final=-110.0, config={"agent.lr": 6.3e-4})
    with open(root / "nested" / "8" / "metrics.csv", "a") as handle:
        handle.write("1100,oops,\n")  # damaged: the run stays in the table, out of the curves
    make_run(root / "5", seed=2, finished=False)  # still running, or crashed
    (root / "9").mkdir()
    (root / "9" / "train.log").write_text("")  # a job stopped by a config error: Hydra's log only
    make_run(root / "6", seed=3, final=1.0)
    (root / "6" / "summary.json").write_text("{truncated")
    (root / ".submitit" / "7").mkdir(parents=True)
    (root / ".submitit" / "7" / "metrics.csv").write_text("step\n")  # below a dot-folder: not a run
    return root


def test_groups_by_env_agent_and_differing_settings_not_seed_nor_logger(runs_folder):
    runs, skipped = find_runs(runs_folder)
    assert sorted(r.path.name for r in runs) == ["0", "1", "2", "3", "4", "8"]
    assert [(p.name, reason.split(":")[0]) for p, reason in skipped] == [
        ("5", "no summary.json"),
        ("6", "unreadable summary.json or config.yaml (JSONDecodeError)"),
        ("9", "no summary.json"),
    ]
    groups = group_runs(runs)
    assert [(g.env, g.agent, g.variant, [r.seed for r in g.runs]) for g in groups] == [
        ("Acrobot", "dqn", {}, [0, 1]),
        ("CartPole", "dqn", {"agent.double": False}, [0, 1]),  # logger.* differs between these two: ignored
        ("CartPole", "dqn", {"agent.double": True}, [0, 1]),
    ]
    assert groups[2].label == "dqn agent.double=true"


def test_report_table_json_and_png(runs_folder, tmp_path):
    report = aggregate(runs_folder, tmp_path / "out")
    by_label = {(g["env"], g["settings"]): g for g in report["groups"]}
    plain = by_label[("CartPole", "agent.double=false")]
    assert plain["final_eval"]["mean"] == 400.0 and plain["final_eval"]["std"] == pytest.approx(141.4213562)
    assert plain["best_eval"]["mean"] == 475.0 and plain["final_eval"]["values"] == [500.0, 300.0]
    assert plain["curves"]["eval"] == {
        "step": [500.0, 1000.0],
        "mean": [10.5, 20.5],
        "std": [pytest.approx(math.sqrt(0.5))] * 2,
        "min": [10.0, 20.0],
        "max": [11.0, 21.0],
        "n": [2, 2],
    }
    train = plain["curves"]["train"]
    assert train["step"][0] == 100.0 and train["step"][-1] == 900.0 and train["mean"][0] == 10.5
    acrobot = by_label[("Acrobot", "")]
    assert acrobot["final_eval"] == {
        "mean": -100.0,
        "std": pytest.approx(math.sqrt(200)),
        "values": [-90.0, -110.0],
    }
    assert acrobot["curves"]["eval"]["n"] == [1, 1]  # the damaged metrics.csv is left out of the curves
    assert [s["run"] for s in report["skipped"]] == ["5", "6", "9"]
    assert json.loads((tmp_path / "out" / "aggregate.json").read_text())["groups"][1]["n_runs"] == 2
    assert (tmp_path / "out" / "aggregate.png").stat().st_size > 10_000
    table = format_table(report["groups"])
    assert "| CartPole | dqn | agent.double=false | 2 | 400.0 ± 141.4 | 475.0 ± 35.4 | 1,000 |" in table
    assert "| CartPole | dqn | agent.double=true | 2 | 150.0 ± 70.7 |" in table
    assert "| Acrobot | dqn | – | 2 | -100.0 ± 14.1 |" in table
    one_seed = format_table(
        [{**acrobot, "n_runs": 1, "seeds": [0], "final_eval": {"mean": -90.0, "std": None}}]
    )
    assert "| Acrobot | dqn | – | 1 | -90.0 ± – |" in one_seed


def test_report_cli_messages(runs_folder, tmp_path, capsys):
    assert main([str(runs_folder), "--band", "std"]) == 0
    out = capsys.readouterr().out
    assert (
        "skipped 3 run folder(s)" in out
        and "5: no summary.json: still running, or stopped by an error" in out
    )
    assert (runs_folder / "aggregate.png").is_file() and (runs_folder / "aggregate.json").is_file()
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "error: no finished run" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------- train.py -m end to end


def run_dirs(sweep: Path) -> list[str]:
    return sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def final_evals(sweep: Path) -> dict[tuple[int, bool], float]:
    """(seed, agent.double) -> the run's final evaluation, for every run of a sweep."""
    out = {}
    for path in sweep.glob("*/summary.json"):
        double = yaml.safe_load((path.parent / "config.yaml").read_text())["agent"]["double"]
        summary = json.loads(path.read_text())
        out[(summary["seed"], double)] = summary["eval_mean_return"]
    return out


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory):
    from conftest import run_cli

    sweep = tmp_path_factory.mktemp("basic") / "sweep"
    result = run_cli(
        "train.py",
        "-m",
        "seed=0,1",
        "agent.double=false,true",
        *TINY,
        "logger=none",
        f"hydra.sweep.dir={sweep}",
    )
    return sweep, result


def test_multirun_basic_launcher_writes_one_folder_per_job_and_the_aggregate(basic_sweep):
    sweep, result = basic_sweep
    assert result.returncode == 0, result.stderr
    assert run_dirs(sweep) == [
        "0_CartPole_dqn_seed0",
        "1_CartPole_dqn_seed0",
        "2_CartPole_dqn_seed1",
        "3_CartPole_dqn_seed1",
    ]
    for name in run_dirs(sweep):
        assert (sweep / name / "summary.json").is_file() and (sweep / name / "metrics.csv").is_file()
    report = json.loads((sweep / "aggregate.json").read_text())
    assert [(g["settings"], g["seeds"]) for g in report["groups"]] == [
        ("agent.double=false", [0, 1]),
        ("agent.double=true", [0, 1]),
    ]
    assert (sweep / "aggregate.png").is_file() and report["skipped"] == []
    assert report["command"].startswith("python train.py -m seed=0,1 agent.double=false,true total_steps=300")
    evals = final_evals(sweep)
    mean = (evals[(0, False)] + evals[(1, False)]) / 2
    assert report["groups"][0]["final_eval"]["mean"] == pytest.approx(mean)
    assert re.search(rf"\| CartPole \| dqn \| agent.double=false \| 2 \| {mean:.1f} ± ", result.stdout), (
        result.stdout
    )


def test_multirun_joblib_runs_seeds_in_parallel_with_the_same_results(basic_sweep, cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli(
        "train.py",
        "-m",
        "seed=0,1",
        *TINY,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
    )  # logger=csv: the bars are turned off for parallel jobs
    assert result.returncode == 0, result.stderr
    assert run_dirs(sweep) == ["0_CartPole_dqn_seed0", "1_CartPole_dqn_seed1"]
    assert "n_jobs=2" in result.stdout + result.stderr
    assert result.stdout.count("[rlcore] done: CartPole dqn seed") == 2
    assert "step/s" not in result.stderr and "train:" not in result.stderr  # no tqdm bars interleaving
    assert final_evals(sweep) == {k: v for k, v in final_evals(basic_sweep[0]).items() if not k[1]}
    command = json.loads((sweep / "aggregate.json").read_text())["command"]
    assert command.endswith("hydra/launcher=joblib hydra.launcher.n_jobs=2")  # hydra.sweep.dir left out


def test_multirun_refuses_one_run_dir_for_all_jobs(cli, tmp_path):
    result = cli(
        "train.py",
        "-m",
        "seed=0,1",
        *TINY,
        f"run_dir={tmp_path / 'one'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert result.returncode == 2
    assert f"pass hydra.sweep.dir={tmp_path / 'one'} in place of run_dir=" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "one").exists() and not (tmp_path / "sweep").exists()


# ---------------------------------------------------------------- launcher configs


def test_joblib_launcher_composes_and_slurm_config_is_shipped():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    compose_many([[]])  # registers rlcore's schemas
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "config", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], return_hydra_config=True
        )
        assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 3
        assert cfg.hydra.callbacks.sweeps._target_ == "rlcore.sweeps.SweepCallback"
        slurm = yaml.safe_load((ROOT / "configs" / "hydra" / "launcher" / "slurm.yaml").read_text())
        assert slurm["defaults"] == ["submitit_slurm", "_self_"]
        assert slurm["cpus_per_task"] == 1 and {
            "timeout_min",
            "mem_gb",
            "partition",
            "array_parallelism",
        } <= set(slurm)
        try:
            import hydra_plugins.hydra_submitit_launcher  # noqa: F401  (the "slurm" extra)
        except ImportError:  # without the plugin only this option fails, naming what is missing
            with pytest.raises(Exception, match="submitit_slurm"):
                compose("config", ["hydra/launcher=slurm"], return_hydra_config=True)
        else:
            cfg = compose("config", ["hydra/launcher=slurm"], return_hydra_config=True)
            assert (
                cfg.hydra.launcher._target_.endswith("SlurmLauncher")
                and cfg.hydra.launcher.cpus_per_task == 1
            )
