"""TensorBoard output, combined loggers, and the media and sync line W&B gets (issue 18)."""

import csv
import os
import sys

import pytest
from conftest import ROOT, compose_config, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlcore.base.errors import ConfigError
from rlcore.config import to_typed
from rlcore.schema import LoggerConfig
from rlcore.training.loggers import RunLogger

TINY = [
    "total_steps=400",
    "agent.learning_starts=100",
    "agent.train_freq=4",
    "agent.gradient_steps=1",
    "eval_every=200",
    "eval_episodes=2",
    "final_eval_episodes=2",
    "device=cpu",
]


def events(logdir) -> EventAccumulator:
    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def csv_column(path, key):
    with open(path, newline="") as handle:
        return [(int(row["step"]), float(row[key])) for row in csv.DictReader(handle) if row.get(key)]


def test_tensorboard_event_files_hold_the_logged_scalars(tmp_path):
    logger = RunLogger(
        tmp_path,
        ["train/loss", "eval/mean_return"],
        LoggerConfig(tensorboard=True),
        {"agent": {"name": "dqn", "lr": 1e-3}, "net": {"hidden_sizes": [64, 64]}},
        run_name="t",
    )
    logger.log(10, {"train/loss": 0.5})
    logger.log(20, {"train/loss": 0.25, "eval/mean_return": 12.0})
    logger.log(30, {"train/loss": float("nan")})
    (tmp_path / "summary.json").write_text('{"eval_mean_return": 12.0}')
    logger.close()
    tb = events(tmp_path / "tensorboard")
    assert [(e.step, e.value) for e in tb.Scalars("train/loss")][:2] == [(10, 0.5), (20, 0.25)]
    assert [(e.step, e.value) for e in tb.Scalars("eval/mean_return")] == [(20, 12.0)]
    assert [e.value for e in tb.Scalars("hparam/eval_mean_return")] == [12.0]  # the config went in as hparams
    assert csv_column(tmp_path / "metrics.csv", "eval/mean_return") == [(20, 12.0)]  # metrics.csv as always


def test_missing_tensorboard_package_and_video_on_a_dataset_env_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"'logger.video': env=Digits is a dataset env"):
        RunLogger(
            tmp_path, [], LoggerConfig(video=True), {"env": {"name": "Digits", "correct_reward": 1.0}}, "t"
        )
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"'logger.tensorboard': the tensorboard package is not installed"):
        RunLogger(tmp_path / "b", [], LoggerConfig(tensorboard=True), {}, "t")


def test_logger_options_combine_as_a_hydra_list():
    both = to_typed(compose_config(["logger=[wandb,tensorboard]"])).logger
    assert both.wandb and both.tensorboard and both.progress
    quiet = to_typed(compose_config(["logger=[none,tensorboard]"])).logger
    assert quiet.tensorboard and not quiet.wandb and not quiet.progress
    assert not to_typed(compose_config(["logger=wandb"])).logger.tensorboard


def test_combined_wandb_offline_and_tensorboard_run_writes_both_with_curve_and_video(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(home), WANDB_SILENT="true", WANDB_MODE="offline", SDL_VIDEODRIVER="dummy")
    result = run_cli(
        "train.py",
        *TINY,
        "logger=[none,wandb,tensorboard]",
        "logger.video=true",
        f"run_dir={run_dir}",
        timeout=180,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    # W&B: the offline run's folder and the exact command that uploads it, and the media inside that folder
    [offline] = (run_dir / "wandb").glob("offline-run-*")
    assert f"the run is in {offline}. Upload it with: wandb sync {offline}" in result.stdout
    assert list((offline / "files" / "media" / "videos").rglob("*.mp4")), (
        "the evaluation video is in the offline run"
    )
    assert list((offline / "files" / "media" / "images").rglob("learning_curve*.png"))
    # TensorBoard: the same scalars as metrics.csv, the learning curve and the video
    tb = events(run_dir / "tensorboard")
    logged = [(e.step, e.value) for e in tb.Scalars("eval/mean_return")]
    assert logged == csv_column(run_dir / "metrics.csv", "eval/mean_return") and len(logged) == 3
    assert {"learning_curve", "eval/video"} <= set(tb.Tags()["images"])
    assert tb.Images("eval/video")[0].encoded_image_string[:3] == b"GIF"
    assert (run_dir / "eval_video.mp4").stat().st_size > 0


def test_wandb_groups_the_runs_of_a_sweep_by_its_folder(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from rlcore.config import register_configs
    from rlcore.training.loggers import sweep_group

    assert sweep_group() is None  # a single run outside Hydra: no group unless logger.group says one
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    try:
        assert sweep_group() == str(tmp_path / "sweep")
    finally:
        HydraConfig.instance().cfg = None


def test_an_empty_or_unknown_wandb_mode_variable_gets_one_line(tmp_path, cli):
    """`export WANDB_MODE=` (meant as unset) runs offline; a value W&B does not know is refused at start-up in
    one line, not with W&B's validation traceback."""
    args = [
        "logger=wandb",
        "logger.mode=offline",
        "total_steps=300",
        "agent.learning_starts=100",
        "eval_every=0",
    ]
    args += ["final_eval_episodes=1", "logger.progress=false", "device=cpu"]
    empty = cli("train.py", *args, f"run_dir={tmp_path}/empty", env={**os.environ, "WANDB_MODE": ""})
    assert empty.returncode == 0, empty.stderr[-2000:]
    assert list((tmp_path / "empty" / "wandb").glob("offline-run-*"))
    typo = cli("train.py", *args, f"run_dir={tmp_path}/typo", env={**os.environ, "WANDB_MODE": "ofline"})
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert "WANDB_MODE='ofline' is not a W&B mode" in typo.stderr
    assert not (tmp_path / "typo").exists()
