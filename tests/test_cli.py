"""train.py and evaluate.py end to end, as a user runs them.

Each subprocess pays ~8 s of imports, so real processes are kept where the process itself is under test
(exit codes and stderr of a run, of an error of each kind, of a refused run dir, the W&B environment,
evaluate.py on a run); one command-line run is shared by the tests that read its folder, and the rest call train.py's
run (Hydra's compose + rlcore.run.run) or run the scripts as __main__ in this process (runpy).
"""

import csv
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import ROOT, compose_config, run_cli

SHORT = [
    "total_steps=600",
    "agent.learning_starts=100",
    "agent.train_freq=4",
    "agent.gradient_steps=1",
    "eval_every=300",
    "eval_episodes=2",
    "final_eval_episodes=3",
    "logger=none",
    "device=cpu",
]
SUMMARY_KEYS = {
    "env",
    "agent",
    "seed",
    "total_steps",
    "wall_time_s",
    "train_sps",
    "eval_mean_return",
    "eval_std_return",
    "eval_episodes",
    "checkpoint",
}


def read_metrics(path, drop_time=True):
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if not (drop_time and k.startswith("time/"))} for row in rows]


def train_in_process(*args: str) -> dict:
    """train.py's run without its process: Hydra's compose of the same overrides and rlcore.run.run."""
    from rlcore.run import run

    cfg = compose_config(list(args))
    return run(cfg, Path(cfg.run_dir), list(args))


def main_in_process(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """A script's main() in this process: (exit code, stdout, stderr); Hydra's and logging's process-wide
    state is put back afterwards, so later tests see none of it."""
    import logging

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return 0 if code is None else int(code), out, err


def script(name: str):
    """A function of argv that runs the script as ``python <name> argv...`` does, in this process (runpy:
    as ``__main__``, so Hydra finds configs/ beside it)."""
    import runpy

    def call(argv: list[str]) -> None:
        saved = sys.argv
        sys.argv = [str(ROOT / name), *argv]
        try:
            runpy.run_path(str(ROOT / name), run_name="__main__")
        finally:
            sys.argv = saved

    return call


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short run through the real command line, shared by the tests that read or reuse its folder."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = run_cli("train.py", *SHORT, "seed=7", f"run_dir={run_dir}")
    assert result.returncode == 0, result.stderr
    return run_dir


def test_train_then_evaluate(cli, trained_run):
    run_dir = trained_run
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "learning_curve.png",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS and summary["total_steps"] == 600 and summary["eval_episodes"] == 3
    rows = read_metrics(run_dir / "metrics.csv")
    assert {"step", "rollout/episode_return", "train/loss", "train/q", "rollout/epsilon"} <= set(rows[0])
    assert sum(1 for r in rows if r["eval/mean_return"]) == 3  # two periodic evaluations and the final one
    assert "run_dir: " + str(run_dir) in (run_dir / "config.yaml").read_text()

    result = cli("evaluate.py", f"run={run_dir}", "episodes=4")
    assert result.returncode == 0, result.stderr
    assert "mean return" in result.stdout
    evaluation = json.loads((run_dir / "checkpoints" / "eval.json").read_text())
    assert evaluation["episodes"] == 4 and len(evaluation["returns"]) == 4


def test_same_seed_twice_gives_identical_metrics(trained_run, tmp_path):
    # the command-line run (another process) and this process's, with the same seed: the same metrics
    train_in_process(*SHORT, "seed=7", f"run_dir={tmp_path / 'b'}")
    a, b = read_metrics(trained_run / "metrics.csv"), read_metrics(tmp_path / "b" / "metrics.csv")
    assert len(a) > 10 and a == b
    train_in_process(*SHORT, "seed=8", f"run_dir={tmp_path / 'c'}")
    assert read_metrics(tmp_path / "c" / "metrics.csv") != a


def test_learns_cartpole(tmp_path):
    """A learning test with a threshold: the default settings (configs/tuned/dqn_CartPole.yaml) over 15,000
    steps, a periodic greedy evaluation reaches 300 (345 on seed 0)."""
    run_dir = tmp_path / "run"
    train_in_process(
        "total_steps=15000",
        "eval_every=2000",
        "eval_episodes=5",
        "final_eval_episodes=5",
        "logger=none",
        "device=cpu",
        f"run_dir={run_dir}",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_eval_mean_return"] >= 300, summary


BAD_INPUT = [
    (["agent.lr=-0.1"], "config key 'agent.lr': must be > 0"),
    (["agent.batch_size=64", "agent.buffer_size=10"], "larger than agent.buffer_size=10"),
    (["agent.gamma=2"], "config key 'agent.gamma': must be in [0, 1]"),
    (["env=Nope"], "Could not find 'env/Nope'"),
    (["agent=nope"], "Could not find 'agent/nope'"),
    (["agent.lr=fast"], "could not be converted to Float"),
    (["agent.foo=1"], "config key 'agent.foo' is not a setting of agent=dqn (DQNConfig)"),
    (["device=cuda"] if not __import__("torch").cuda.is_available() else ["device=tpu"], "device"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_clear_message(tmp_path, capsys, args, message):
    # train.py's main (Hydra's command-line parsing and error report included) in this process
    code, _, err = main_in_process(
        script("train.py"), [*args, f"run_dir={tmp_path / 'run'}", "logger=none"], capsys
    )
    assert code == 2  # rlcore's and Hydra's refusals alike (README: exit codes)
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_bad_input_end_to_end(cli, tmp_path):
    # the same through a real process, for both kinds of error: Hydra's (composition) and rlcore's (validation)
    for args, message in [BAD_INPUT[3], BAD_INPUT[0]]:
        result = cli("train.py", *args, f"run_dir={tmp_path / 'run'}", "logger=none")
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "run" / "metrics.csv").exists()


def test_existing_run_is_never_overwritten(cli, trained_run):
    before = (trained_run / "checkpoints" / "last.pt").read_bytes()
    result = cli("train.py", *SHORT, f"run_dir={trained_run}")
    assert result.returncode == 2 and "already holds a run" in result.stderr
    assert "Traceback" not in result.stderr
    assert (trained_run / "checkpoints" / "last.pt").read_bytes() == before


def test_evaluate_rejects_bad_files_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for args, message in [
        ([f"checkpoint={bad}"], "truncated or not a torch file"),
        ([f"run={tmp_path / 'missing'}"], "does not exist"),
        (["episodes=0", f"checkpoint={bad}"], "episodes must be > 0"),
        (["colour=blue"], "Key 'colour' not in 'EvaluateConfig'"),
    ]:
        code, _, err = main_in_process(script("evaluate.py"), args, capsys)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_help_lists_groups_and_options(capsys):
    code, stdout, _ = main_in_process(script("train.py"), ["--help"], capsys)
    assert code == 0
    groups_section = stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    lines = {line.split(":")[0]: line for line in groups_section.splitlines() if ":" in line}
    for group, option in [
        ("agent", "dqn"),
        ("agent", "supervised"),
        ("agent", "autoencoder"),
        ("env", "CartPole"),
        ("env", "Breakout"),
        ("env", "MNIST"),
        ("net", "lenet5"),
        ("logger", "wandb"),
    ]:
        assert option in lines[group], (group, option)
    assert "evaluate.py" in stdout


def test_wandb_offline_without_an_account_never_prompts(cli, tmp_path):
    env_home = tmp_path / "home"
    env_home.mkdir()
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(env_home), WANDB_SILENT="true")  # no API key, no netrc: logger.mode=auto -> offline
    result = cli("train.py", *SHORT, "logger=wandb", f"run_dir={run_dir}", timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    assert list((run_dir / "wandb").glob("offline-run-*")), "an offline W&B run is written in the run dir"


def test_wandb_online_without_a_key_is_refused_not_prompted(cli, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path))
    result = cli(
        "train.py",
        *SHORT,
        "logger=wandb",
        "logger.mode=online",
        f"run_dir={tmp_path / 'run'}",
        timeout=120,
        env=env,
    )
    assert result.returncode == 2 and "needs a W&B API key" in result.stderr
