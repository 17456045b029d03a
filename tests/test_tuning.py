"""Hyperparameter search on Hydra's Optuna sweeper (rlcore/tuning.py, configs/search/; issue 18)."""

import csv
import json
import math

import pytest
import yaml
from conftest import ROOT, compose_many
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

from rlcore.base.errors import ConfigError
from rlcore.config import register_configs, to_typed
from rlcore.tuning import objective

SEARCHES = sorted(p.stem for p in (ROOT / "configs" / "search").glob("*.yaml"))


def test_objective_is_the_chosen_statistic_of_the_seeds_and_nan_when_one_is_missing():
    assert objective([100.0, 200.0, 600.0], "mean") == 300.0
    assert objective([100.0, 200.0, 600.0], "median") == 200.0
    assert objective([100.0, 200.0, 600.0], "min") == 100.0
    assert (
        objective([100.0, 200.0, 300.0, 500.0], "q25") == 175.0
    )  # numpy's linear quantile: 200 - 0.25 * 100
    assert math.isnan(objective([100.0, None], "mean"))  # a diverged seed: Optuna marks the trial failed


@pytest.mark.parametrize(
    "override, message",
    [("tune.seeds=0", "'tune.seeds': must be >= 1"), ("tune.statistic=best", "'tune.statistic': got 'best'")],
)
def test_tune_keys_reject_nonsense(override, message):
    with pytest.raises(ConfigError, match=message):
        to_typed(compose_many([[override]])[0])


def test_every_search_space_composes_and_parses_as_an_optuna_space():
    assert {"dqn_CartPole", "dqn_Acrobot", "supervised_MNIST"} <= set(SEARCHES)
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        sweepers = [
            compose("config", overrides=[f"+search={n}"], return_hydra_config=True).hydra.sweeper
            for n in SEARCHES
        ]
    for name, sweeper, cfg in zip(
        SEARCHES, sweepers, compose_many([[f"+search={n}"] for n in SEARCHES]), strict=True
    ):
        assert "optuna" in sweeper._target_ and sweeper.direction == "maximize", name
        space, fixed = create_params_from_overrides([f"{k}={v}" for k, v in sweeper.params.items()])
        assert len(space) >= 3 and not fixed, name  # every entry is searched
        typed = to_typed(cfg)
        assert f"{typed.agent.name}_{typed.env.name}" == name
        assert typed.tune.seeds >= 3  # a robust objective by default
    assert to_typed(compose_many([["+search=supervised_MNIST"]])[0]).net.name == "lenet5"


def test_two_trial_two_seed_search_end_to_end_writes_the_table_plot_and_tuned_file(cli, tmp_path):
    sweep = tmp_path / "search"
    result = cli(
        "train.py",
        "-m",
        "+search=dqn_CartPole",
        "hydra.sweeper.n_trials=2",
        "tune.seeds=2",
        "total_steps=300",
        "agent.learning_starts=100",
        "eval_every=0",
        "final_eval_episodes=2",
        f"hydra.sweep.dir={sweep}",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    trials = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/trial.json"))]
    assert [t["trial"] for t in trials] == [0, 1] and all(t["seeds"] == [0, 1] for t in trials)
    for path, trial in zip(sorted(sweep.glob("*/trial.json")), trials, strict=True):
        finals = [
            json.loads((path.parent / run / "summary.json").read_text())["eval_mean_return"]
            for run in trial["runs"]
        ]
        assert trial["values"] == finals and trial["objective"] == pytest.approx(sum(finals) / 2)
    with open(sweep / "study.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert (
        [int(r["trial"]) for r in rows] == [0, 1] and "agent.lr" in rows[0] and "total_steps" not in rows[0]
    )
    best = max(trials, key=lambda t: t["objective"])
    tuned_text = (sweep / "tuned_dqn_CartPole.yaml").read_text()
    assert tuned_text.startswith("# @package _global_")
    tuned = yaml.safe_load(tuned_text)
    assert tuned["agent"]["lr"] == best["params"]["agent.lr"]
    assert tuned["agent"]["learning_starts"] == 100  # fixed on the command line: as the trial ran it
    assert tuned["agent"]["train_freq"] == 256  # not searched: configs/tuned/dqn_CartPole.yaml's, as run
    typed = to_typed(compose_many([[f"agent.{k}={v}" for k, v in tuned["agent"].items()]])[0])
    assert typed.agent.lr == pytest.approx(best["params"]["agent.lr"])  # a valid config
    assert (sweep / "study.png").stat().st_size > 5_000 and "(best)" in (sweep / "study.md").read_text()
    assert "best: trial" in result.stdout and "tuned_dqn_CartPole.yaml" in result.stdout
    report = json.loads((sweep / "aggregate.json").read_text())
    assert report["skipped"] == [] and len(report["groups"]) == 2  # a trial's job folder is no run of its own


def test_a_search_without_multirun_is_refused_in_one_line(cli, tmp_path):
    result = cli("train.py", "+search=dqn_CartPole", f"run_dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "run it with -m" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "seed0").exists()
