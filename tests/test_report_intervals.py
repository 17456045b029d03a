"""rliable aggregates in ``python -m rlcore.report`` (rlcore/intervals.py; issue 18), checked by hand."""

import json

import numpy as np
import pytest
import yaml

from rlcore.intervals import interval_estimates
from rlcore.report import aggregate, format_table, main

FINALS = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 500.0]  # one lucky seed


def make_runs(root, finals, env="CartPole", double=False):
    for seed, final in enumerate(finals):
        folder = root / f"{env}_{double}_{seed}"
        folder.mkdir(parents=True)
        config = {"env": {"name": env}, "agent": {"name": "dqn", "double": double}, "seed": seed}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        (folder / "metrics.csv").write_text(f"step,eval/mean_return\n100,{final / 2}\n200,{final}\n")
        (folder / "summary.json").write_text(
            json.dumps(
                {"env": env, "agent": "dqn", "seed": seed, "total_steps": 200, "eval_mean_return": final}
            )
        )


def test_iqm_and_mean_with_bootstrap_intervals_match_a_hand_computation(tmp_path):
    make_runs(tmp_path, FINALS)
    make_runs(tmp_path, [100.0, 200.0, 300.0, 400.0, 1000.0], double=True)
    make_runs(tmp_path, [1.0, 2.0], env="Acrobot")  # two seeds: no interval
    report = aggregate(tmp_path)
    groups = {(g["env"], g["settings"]): g for g in report["groups"]}
    eight = groups[("CartPole", "agent.double=false")]["rliable"]
    # 8 runs: the IQM drops the 2 lowest and the 2 highest and averages the middle 4
    assert eight["iqm"] == pytest.approx((30 + 40 + 50 + 60) / 4) and eight["mean"] == pytest.approx(97.5)
    five = groups[("CartPole", "agent.double=true")]["rliable"]
    # 5 runs: scipy's trim_mean cuts int(0.25 * 5) = 1 run at each end
    assert five["iqm"] == pytest.approx((200 + 300 + 400) / 3) and five["mean"] == pytest.approx(400.0)
    for record, values in ((eight, FINALS), (five, [100.0, 200.0, 300.0, 400.0, 1000.0])):
        for key in ("iqm", "mean"):
            low, high = record[f"{key}_ci"]
            assert min(values) <= low <= record[key] <= high <= max(values)
            assert high - low > 0
    assert (
        eight["mean_ci"][1] - eight["mean_ci"][0] > eight["iqm_ci"][1] - eight["iqm_ci"][0]
    )  # the lucky seed
    assert groups[("Acrobot", "")]["rliable"] is None
    table = format_table(report["groups"])
    assert "| 45.0 [" in table and "| 97.5 [" in table
    assert (tmp_path / "performance_profile.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "aggregate.json").read_text())["groups"][1]["rliable"]["n"] == 8


def test_interval_estimates_need_three_finite_seeds_and_are_reproducible():
    assert interval_estimates([1.0, 2.0, float("nan")]) is None
    first = interval_estimates(FINALS)
    np.random.seed(123)  # rliable resamples with numpy's global RNG: the report seeds it, then puts it back
    before = np.random.get_state()[1].copy()
    assert interval_estimates(FINALS) == first
    assert (np.random.get_state()[1] == before).all()


def test_report_cli_mentions_the_profile(tmp_path, capsys):
    make_runs(tmp_path, [1.0, 2.0, 3.0])
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "final eval IQM [95% CI]" in out and "performance_profile.png" in out
