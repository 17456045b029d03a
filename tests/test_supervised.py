"""Supervised classifier, DQN from reward only on Digits, the classification report and encoder reuse."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.supervised import EarlyStopping, SupervisedAgent, SupervisedConfig, lr_factor
from envs import DatasetEnvConfig, make_env
from envs.dataset_env import dataset_splits, per_class_subset, validation_per_class
from nets import LSTMConfig, MLPConfig
from rlcore.base.errors import ConfigError
from rlcore.training.classification_report import confusion_matrix
from rlcore.training.evaluation import evaluate
from rlcore.training.supervised import as_tensors, train_epoch

ROOT = Path(__file__).resolve().parents[1]
CLI_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """One torch thread: on a small shared machine two contending threads are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=CLI_ENV, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def supervised_digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "sup"
    run_cli(
        "train.py",
        "agent=supervised",
        "env=Digits",
        "agent.patience=10",
        f"run_dir={run_dir}",
        "threads=1",
        "logger.progress=false",
    )
    return run_dir


def digits_agent(**overrides: object) -> tuple[SupervisedAgent, dict]:
    splits = dataset_splits(DatasetEnvConfig(name="Digits", dataset="digits"), 0)
    space = gym.spaces.Box(0, 255, splits["train"].images.shape[1:], np.uint8)
    cfg = SupervisedConfig(**{"lr": 3e-3, "batch_size": 32, **overrides})
    agent = SupervisedAgent(cfg, MLPConfig(), space, gym.spaces.Discrete(10), device=torch.device("cpu"))
    return agent, splits


# ------------------------------------------------------------------------------------------- end to end


def test_supervised_digits_cli_reaches_90_percent_and_writes_run_files(supervised_digits_run: Path) -> None:
    summary = json.loads((supervised_digits_run / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.88  # ~91% with configs/tuned/supervised_Digits.yaml
    assert summary["eval_episodes"] == 359  # every Digits test image once
    assert summary["eval_mean_return"] == pytest.approx(summary["test_accuracy"])
    assert summary["total_steps"] == summary["epochs"] * 1294  # samples seen: whole epochs of the train part
    for name in (
        "config.yaml",
        "metrics.csv",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "learning_curve.png",
    ):
        assert (supervised_digits_run / name).exists(), name
    header = (supervised_digits_run / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in (
        "train/loss",
        "train/accuracy",
        "val/accuracy",
        "eval/mean_return",
        "time/epoch_s",
        "time/sps",
    ):
        assert key in header


def test_evaluate_cli_prints_accuracy_and_writes_confusion_png(supervised_digits_run: Path) -> None:
    done = run_cli("evaluate.py", f"run={supervised_digits_run}", "which=last")
    assert "test accuracy:" in done.stdout
    result = json.loads((supervised_digits_run / "checkpoints" / "eval.json").read_text())
    assert result["episodes"] == 359
    assert result["test_accuracy"] == pytest.approx(result["mean_return"])
    assert Path(result["confusion_png"]).stat().st_size > 0
    assert Path(result["misclassified_png"]).stat().st_size > 0
    assert sum(map(sum, result["confusion_matrix"])) == 359


def test_dqn_learns_digits_from_reward_alone(tmp_path: Path) -> None:
    run_dir = tmp_path / "dqn"
    run_cli(
        "train.py",
        "agent=dqn",
        "env=Digits",
        "total_steps=12000",
        "eval_every=0",
        f"run_dir={run_dir}",
        "threads=1",
        "logger.progress=false",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.5  # chance is 10%; the tuned 30k-step run reaches ~94%
    assert summary["eval_episodes"] == 359


# ------------------------------------------------------------------------------------------- evaluation


def test_evaluation_answers_each_test_image_exactly_once() -> None:
    env = make_env(DatasetEnvConfig(name="Digits", dataset="digits"), 0, evaluation=True, n_envs=50)
    seen: list[int] = []

    class Recorder:
        def act(
            self, obs: np.ndarray, explore: bool = True, epsilon: float | None = None, rng=None
        ) -> np.ndarray:
            return np.zeros(len(obs), dtype=np.int64)

    original_step = env.step

    def step(actions: np.ndarray):  # noqa: ANN202 - wraps the env's step
        out = original_step(actions)
        seen.extend(out[4]["index"][out[4]["first_pass"]].tolist())
        return out

    env.step = step  # type: ignore[method-assign]
    returns, _ = evaluate(Recorder(), env, episodes=5)
    assert len(returns) == len(env.labels) == 359
    assert sorted(seen) == list(range(359))
    assert returns.mean() == pytest.approx(np.mean(env.labels == 0))


def test_confusion_matrix_counts() -> None:
    counts = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


# ------------------------------------------------------------------------------------------- the math


def test_lr_schedules() -> None:
    assert lr_factor("none", 3.7, 10) == 1.0
    assert lr_factor("step", 0.99, 10, step_epochs=1, gamma=0.1) == 1.0
    assert lr_factor("step", 2.5, 10, step_epochs=1, gamma=0.1) == pytest.approx(0.01)
    assert lr_factor("step", 3.0, 10, step_epochs=2, gamma=0.5) == pytest.approx(0.5)
    assert lr_factor("exponential", 2.0, 10, gamma=0.5) == pytest.approx(0.25)
    assert lr_factor("cosine", 0.0, 10) == pytest.approx(1.0)
    assert lr_factor("cosine", 5.0, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 10.0, 10) == pytest.approx(0.0)
    assert lr_factor("cosine", 10.0, 10, min_fraction=0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        lr_factor("linear", 1.0, 10)


def test_agent_applies_schedule_to_optimizer() -> None:
    agent, _ = digits_agent(lr=0.1, lr_schedule="cosine", epochs=4)
    agent.advance(2.0)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_early_stopping_tracks_best_and_patience() -> None:
    stopper = EarlyStopping(patience=2)
    assert [stopper.update(s, e) for e, s in enumerate([0.5, 0.7, 0.6, 0.7])] == [True, True, False, False]
    assert stopper.stop and stopper.best == 0.7 and stopper.best_epoch == 1
    assert not EarlyStopping(patience=0).stop


def test_early_stopping_restores_best_weights(supervised_digits_run: Path) -> None:
    """With patience > 0 the run ends with the best-validation weights, whatever the last epochs did."""
    from rlcore.policy import load_agent

    summary = json.loads((supervised_digits_run / "summary.json").read_text())
    last, _, _ = load_agent(supervised_digits_run / "checkpoints" / "last.pt", "cpu")
    best, _, ckpt = load_agent(supervised_digits_run / "checkpoints" / "best.pt", "cpu")
    for a, b in zip(last.model.state_dict().values(), best.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the final weights are the best-validation weights
    assert ckpt["counters"]["best_epoch"] == summary["best_epoch"] <= summary["epochs"]


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="agent.nesterov"):
        SupervisedConfig(optimizer="adam", nesterov=True)
    with pytest.raises(ConfigError, match="agent.lr_schedule"):
        SupervisedConfig(lr_schedule="linear")


# ------------------------------------------------------------------------------------------- reuse


def test_save_load_gives_identical_predictions(tmp_path: Path) -> None:
    agent, splits = digits_agent(optimizer="sgd", nesterov=True, max_grad_norm=1.0)
    x, y = as_tensors(splits["train"], torch.device("cpu"))
    train_epoch(agent, x, y, 0, torch.Generator().manual_seed(0))
    torch.save(agent.state_dict(), tmp_path / "agent.pt")
    other, _ = digits_agent(optimizer="sgd", nesterov=True, max_grad_norm=1.0)
    other.load_state_dict(torch.load(tmp_path / "agent.pt", weights_only=True))
    test = splits["test"].images
    assert np.array_equal(agent.act(test), other.act(test))
    assert torch.equal(agent.logits(test), other.logits(test))


def test_load_encoder_features_feed_sklearn(supervised_digits_run: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from rlcore.policy import load_encoder

    encoder = load_encoder(supervised_digits_run)
    assert isinstance(encoder, torch.nn.Module) and not encoder.training
    splits = dataset_splits(DatasetEnvConfig(name="Digits", dataset="digits"), 0)
    with torch.no_grad():
        train_features, _ = encoder(torch.from_numpy(np.array(splits["train"].images)))
        test_features, _ = encoder(torch.from_numpy(np.array(splits["test"].images)))
    with threadpool_limits(1):
        clf = LogisticRegression(max_iter=2000).fit(train_features.numpy(), splits["train"].labels)
    assert clf.score(test_features.numpy(), splits["test"].labels) >= 0.8  # chance: 0.1


def test_encoder_module_names_match_dqn() -> None:
    from nets.q_network import QNetwork

    agent, _ = digits_agent()
    q = QNetwork(agent.model.extractor, 10)
    assert set(q.state_dict()) == set(agent.model.state_dict())


# ------------------------------------------------------------------------------------------- nets and data


def test_lstm_over_rows_is_a_stateless_extractor() -> None:
    from nets import build_extractor

    net = build_extractor(
        LSTMConfig(rows=True, encoder_kwargs={"hidden_sizes": []}, hidden_size=16), (1, 28, 28)
    )
    assert not net.is_recurrent and net.features_dim == 16
    features, state = net(torch.randint(0, 255, (3, 1, 28, 28), dtype=torch.uint8))
    assert features.shape == (3, 16) and state is None
    assert net.rows.encoder.input_shape == (28,)


def test_labels_per_class_subset() -> None:
    train = dataset_splits(DatasetEnvConfig(name="Digits", dataset="digits"), 0)["train"]
    small = per_class_subset(train, 5, seed=1)
    assert len(small) == 50 and np.bincount(small.labels).tolist() == [5] * 10
    splits = dataset_splits(DatasetEnvConfig(name="Digits", dataset="digits", labels_per_class=5), 0)
    assert len(splits["train"]) == 50
    env = make_env(DatasetEnvConfig(name="Digits", dataset="digits", labels_per_class=5), 0)
    assert len(env.labels) == 50


def test_limited_labels_get_a_budget_sized_validation_split() -> None:
    full = dataset_splits(DatasetEnvConfig(name="Digits", dataset="digits", validation_fraction=0.2), 0)
    few = dataset_splits(
        DatasetEnvConfig(name="Digits", dataset="digits", validation_fraction=0.2, labels_per_class=8), 0
    )
    assert (
        validation_per_class(8, 0.2) == 2
        and validation_per_class(100, 0.1) == 11
        and validation_per_class(1, 0.1) == 1
    )
    assert np.bincount(few["val"].labels).tolist() == [2] * 10  # not the 288 of the full validation split
    assert len(full["val"]) > 250
    # drawn from the full split's validation part (disjoint from training), and the training part is unchanged
    assert {r.tobytes() for r in few["val"].images} <= {r.tobytes() for r in full["val"].images}
    assert np.array_equal(few["train"].images, per_class_subset(full["train"], 8, 0).images)


@pytest.mark.skipif(
    not os.environ.get("RLCORE_MNIST_DIR"), reason="set RLCORE_MNIST_DIR to run on real MNIST"
)
def test_mnist_one_supervised_epoch_beats_90_percent(tmp_path: Path) -> None:
    run_dir = tmp_path / "mnist"
    run_cli(
        "train.py",
        "agent=supervised",
        "env=MNIST",
        "net=mlp",
        "agent.epochs=1",
        "agent.batch_size=128",
        f"run_dir={run_dir}",
        "threads=1",
        "logger.progress=false",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.9 and summary["eval_episodes"] == 10_000  # default 64-64 MLP: ~93%
    assert not math.isnan(summary["train_sps"])
