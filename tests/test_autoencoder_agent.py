"""agent=autoencoder: every variant learns, the CLI writes its files, and other agents reuse (and freeze) the encoder."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from agents.autoencoder import AutoencoderAgent, AutoencoderConfig
from agents.dqn import DQNAgent, DQNConfig
from envs.datasets import load_digits
from nets import MLP, build_extractor, save_encoder
from nets.configs import MLPConfig, NatureCNNConfig
from rlcore.base.checkpoint import load_checkpoint
from rlcore.base.errors import ConfigError, RLCoreError
from rlcore.config import register_configs
from rlcore.replay import Batch
from rlcore.run import run

ROOT = Path(__file__).resolve().parents[1]
DIGITS = gym.spaces.Box(0, 255, (1, 8, 8), np.uint8)
CPU = torch.device("cpu")

register_configs()
torch.set_num_threads(1)


def compose_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return compose(config_name="config", overrides=["logger.progress=false", "threads=1", *overrides])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", "logger.progress=false", "threads=1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def digits_images(n: int = 256) -> torch.Tensor:
    return torch.as_tensor(np.array(load_digits("train").images[:n]))


# --------------------------------------------------------------------------------- variants, in process


VARIANTS = {
    "plain": ({}, {}),
    "bce": ({"loss": "bce"}, {}),
    "sparse_l1": ({"l1_activity": 1e-3}, {}),
    "sparse_kl": ({"kl_weight": 0.1, "rho": 0.05}, {"activation": "sigmoid"}),
    "denoising_gaussian": ({"noise": "gaussian", "noise_std": 0.2}, {}),
    "denoising_masking": ({"noise": "masking", "mask_prob": 0.3}, {}),
    "weight_decay": ({"weight_decay": 1e-4}, {}),
    "l2_penalty": ({"l2_weight": 1e-4}, {}),
    "stacked": ({"stacked": True, "layerwise_epochs": 2}, {}),
    "warped": (
        {"noise": "masking", "mask_prob": 0.3, "warp_degrees": 10, "warp_scale": 0.1, "warp_shift": 1},
        {},
    ),
    "stacked_warped": ({"stacked": True, "layerwise_epochs": 2, "noise": "masking", "warp_degrees": 10}, {}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_lowers_the_loss(variant: str) -> None:
    torch.manual_seed(0)
    agent_kwargs, net_kwargs = VARIANTS[variant]
    cfg = AutoencoderConfig(lr=3e-3, batch_size=64, **agent_kwargs)
    agent = AutoencoderAgent(cfg, MLPConfig(hidden_sizes=[32, 16], **net_kwargs), DIGITS, device=CPU)
    data = digits_images()
    if cfg.stacked:
        history = agent.pretrain_layerwise(data)
        assert len(history) == 2 and all(h[-1] < h[0] for h in history)
    before = agent.validation_loss(data)
    for step in range(60):
        metrics = agent.update(data[(step * 64) % 256 :][:64])
    assert agent.validation_loss(data) < before
    expected = {"loss", "recon_loss"} | {
        k
        for k, key in (
            ("l1_activity", "l1_activity"),
            ("kl_sparsity", "kl_weight"),
            ("l2_weight", "l2_weight"),
        )
        if agent_kwargs.get(key)
    }
    assert set(metrics) == expected and all(torch.isfinite(v) for v in metrics.values())


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="agent.kl_weight"):
        AutoencoderAgent(AutoencoderConfig(kl_weight=0.1), MLPConfig(), DIGITS, device=CPU)  # relu codes
    with pytest.raises(ConfigError, match="agent.stacked"):
        AutoencoderAgent(AutoencoderConfig(stacked=True), NatureCNNConfig(padding="same"), DIGITS, device=CPU)
    with pytest.raises(ConfigError, match="agent.loss"):
        AutoencoderAgent(AutoencoderConfig(loss="bce"), MLPConfig(), gym.spaces.Box(-5, 5, (4,)), device=CPU)
    with pytest.raises(ConfigError, match="agent.noise"):
        AutoencoderConfig(noise="salt")
    with pytest.raises(ConfigError, match="agent.warp_scale"):
        AutoencoderConfig(warp_scale=1.0)
    with pytest.raises(ConfigError, match="agent.warp_shift"):
        AutoencoderConfig(warp_shift=-1)
    with pytest.raises(ConfigError, match="agent.warp_degrees/warp_scale/warp_shift.*shape \\(4,\\)"):
        AutoencoderAgent(
            AutoencoderConfig(warp_degrees=5), MLPConfig(), gym.spaces.Box(-5, 5, (4,)), device=CPU
        )
    with pytest.raises(
        ConfigError, match="agent.warp_degrees/warp_scale/warp_shift"
    ):  # as large as the 8x8 image
        AutoencoderAgent(AutoencoderConfig(warp_shift=8), MLPConfig(), DIGITS, device=CPU)
    agent = AutoencoderAgent(AutoencoderConfig(), MLPConfig(), DIGITS, device=CPU)
    with pytest.raises(RLCoreError, match="no policy; use its encoder via net.pretrained="):
        agent.act(np.zeros((1, 1, 8, 8), np.uint8))


def test_warp_corrupts_the_input_and_the_target_stays_the_original() -> None:
    agent = AutoencoderAgent(
        AutoencoderConfig(warp_degrees=15, warp_shift=1), MLPConfig(), DIGITS, device=CPU
    )
    clean = agent.model.target(digits_images(32))
    corrupted = agent.corrupt(clean)
    assert corrupted.shape == clean.shape and not torch.equal(corrupted, clean)
    reconstruction, _ = agent.model(corrupted)
    expected = torch.nn.functional.mse_loss(reconstruction, clean)
    agent.warp_generator.manual_seed(
        0
    )  # the same warps again: the loss compares them with the unwarped images
    torch.testing.assert_close(agent.losses(digits_images(32))["recon_loss"], expected)


@pytest.mark.parametrize(
    "cfg",
    [
        AutoencoderConfig(noise="masking"),
        AutoencoderConfig(noise="masking", warp_degrees=10, warp_scale=0.1, warp_shift=1),
    ],
    ids=["masking", "masking_warped"],
)
def test_state_dict_round_trip(cfg: AutoencoderConfig) -> None:
    net = MLPConfig(hidden_sizes=[16])
    a, b = (AutoencoderAgent(cfg, net, DIGITS, device=CPU, seed=s) for s in (0, 1))
    a.update(digits_images(64))
    b.load_state_dict(a.state_dict())
    batch = digits_images(32)
    torch.testing.assert_close(b.update(batch)["loss"], a.update(batch)["loss"], rtol=0, atol=0)


# ------------------------------------------------------------------------------- end to end, Digits MLP


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ae") / "digits"
    result = cli(
        "agent=autoencoder",
        "env=Digits",
        "net=mlp",
        "agent.epochs=3",
        "agent.batch_size=32",
        "agent.warp_degrees=5",
        "agent.warp_shift=1",
        f"run_dir={run_dir}",
    )  # the warp keys, from the CLI
    assert result.returncode == 0, result.stderr
    return run_dir


def test_cli_writes_the_run_files(ae_run: Path) -> None:
    for name in (
        "encoder.pt",
        "reconstructions.png",
        "learning_curve.png",
        "metrics.csv",
        "config.yaml",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (ae_run / name).is_file(), name
    with open(ae_run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [float(r["train/recon_loss"]) for r in rows]
    val = [float(r["val/recon_loss"]) for r in rows]
    assert len(rows) == 3 and train[-1] < train[0] and val[-1] < val[0]
    summary = json.loads((ae_run / "summary.json").read_text())
    assert summary["agent"] == "autoencoder" and summary["eval_mean_return"] is None
    assert summary["val_recon_loss"] == pytest.approx(val[-1], rel=1e-6)
    assert summary["final_recon_loss"] == pytest.approx(train[-1], rel=1e-6)
    assert load_checkpoint(ae_run / "checkpoints" / "best.pt")["counters"]["epoch"] == summary["best_epoch"]


def test_dqn_loads_the_encoder_and_keeps_it_frozen(ae_run: Path, tmp_path: Path) -> None:
    cfg = compose_cfg(
        "agent=dqn",
        "env=Digits",
        "net=mlp",
        f"net.pretrained={ae_run}",
        "net.freeze=true",
        "total_steps=640",
        "agent.learning_starts=64",
        "final_eval_episodes=1",
        "eval_every=0",
        f"run_dir={tmp_path / 'dqn'}",
    )
    summary = run(cfg, tmp_path / "dqn")
    assert summary["updates"] > 0
    dqn = load_checkpoint(tmp_path / "dqn" / "checkpoints" / "last.pt")["agent"]
    ae = load_checkpoint(ae_run / "checkpoints" / "best.pt")["agent"]["model"]  # encoder.pt = best epoch
    from_file = build_extractor(MLPConfig(pretrained=str(ae_run)), DIGITS)
    from_ae = build_extractor(MLPConfig(), DIGITS)
    from_ae.load_state_dict(
        {k.removeprefix("encoder."): v for k, v in ae.items() if k.startswith("encoder.")}
    )
    after_dqn = build_extractor(MLPConfig(), DIGITS)
    after_dqn.load_state_dict(
        {k.removeprefix("extractor."): v for k, v in dqn["online"].items() if k.startswith("extractor.")}
    )
    obs = digits_images(16)
    reference = from_ae(obs)[0]
    torch.testing.assert_close(from_file(obs)[0], reference, rtol=0, atol=0)
    torch.testing.assert_close(after_dqn(obs)[0], reference, rtol=0, atol=0)  # frozen through the DQN updates


def test_frozen_encoder_is_unchanged_and_in_eval_mode(tmp_path: Path) -> None:
    source = MLP(DIGITS, hidden_sizes=[32, 16], dropout=0.5)
    path = save_encoder(source, tmp_path / "enc.pt", {"name": "mlp"})
    net = MLPConfig(hidden_sizes=[32, 16], dropout=0.5, pretrained=str(path), freeze=True)
    agent = DQNAgent(DQNConfig(lr=1e-2), net, DIGITS, gym.spaces.Discrete(10), total_steps=1000, device=CPU)
    before = {k: v.clone() for k, v in agent.online.state_dict().items()}
    obs = digits_images(32)
    batch = Batch(obs, torch.randint(0, 10, (32,)), torch.rand(32), obs.flip(0), torch.zeros(32))
    for _ in range(5):
        agent.update(batch)
    after = agent.online.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("extractor."))
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert not agent.online.extractor.training and not agent.target.extractor.training  # dropout off
    torch.testing.assert_close(agent.online.extractor(obs)[0], source.eval()(obs)[0], rtol=0, atol=0)


def test_mismatched_encoder_is_a_clean_cli_error(ae_run: Path, tmp_path: Path) -> None:
    result = cli(
        "agent=dqn",
        "env=Digits",
        "net=mlp",
        "net.hidden_sizes=[32,32]",
        f"net.pretrained={ae_run}",
        "total_steps=64",
        f"run_dir={tmp_path / 'bad'}",
    )
    assert result.returncode == 2
    assert "saved shape (64, 64), expected shape (32, 64)" in result.stderr
    assert "Traceback" not in result.stderr


# -------------------------------------------------------------------------- CNN from random Breakout play


def test_cnn_autoencoder_from_breakout_frames(tmp_path: Path) -> None:
    start = time.perf_counter()
    cfg = compose_cfg(
        "agent=autoencoder",
        "env=Breakout",
        "net=nature_cnn",
        "net.features_dim=64",
        "agent.frames=192",
        "agent.epochs=1",
        "agent.batch_size=32",
        f"run_dir={tmp_path / 'ae'}",
    )
    summary = run(cfg, tmp_path / "ae")
    assert summary["train_frames"] + summary["val_frames"] == 192 and summary["updates"] == 6
    assert np.isfinite(summary["val_recon_loss"])
    assert (tmp_path / "ae" / "reconstructions.png").is_file()
    encoder = torch.load(tmp_path / "ae" / "encoder.pt", weights_only=True)
    assert encoder["class"] == "NatureCNN" and encoder["input_shape"] == [4, 84, 84]
    assert time.perf_counter() - start < 60


def test_frames_from_a_trained_policy(cli, tmp_path):
    """agent.policy=<run>: a trained agent (ε-greedy) plays to collect the frames; another env's policy is refused."""
    policy_run = tmp_path / "dqn"
    result = cli(
        "train.py",
        "total_steps=300",
        "agent.learning_starts=100",
        "eval_every=0",
        "final_eval_episodes=1",
        "logger=none",
        f"run_dir={policy_run}",
    )
    assert result.returncode == 0, result.stderr
    result = cli(
        "train.py",
        "agent=autoencoder",
        "env=CartPole",
        f"agent.policy={policy_run}",
        "agent.frames=500",
        "agent.epochs=1",
        "logger=none",
        f"run_dir={tmp_path / 'ae'}",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ae" / "encoder.pt").is_file()
    result = cli(
        "train.py",
        "agent=autoencoder",
        "env=Acrobot",
        f"agent.policy={policy_run}",
        "agent.frames=500",
        "agent.epochs=1",
        "logger=none",
        f"run_dir={tmp_path / 'ae2'}",
    )
    assert (
        result.returncode == 2
        and "config key 'agent.policy'" in result.stderr
        and "Traceback" not in result.stderr
    )
