"""agent=gan: the losses on hand-computed numbers, the Fréchet distance, one step, conditional labels, the CLI run
(files, save -> load, the discriminator reused through net.pretrained=) and refused options."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.configs import GAN_LOSSES, GANConfig
from agents.gan import GANAgent
from nets import build_extractor
from nets.configs import LeNet5Config, LSTMConfig, MLPConfig, VGGConfig
from nets.gan import (
    GENERATOR_LOSSES,
    Discriminator,
    Generator,
    discriminator_loss,
    frechet_distance,
    gaussian_stats,
    generator_loss,
)
from rlcore.base.errors import ConfigError
from rlcore.policy import load_agent

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
MNIST_SPACE = gym.spaces.Box(0, 255, (1, 28, 28), np.uint8)
TOY_SPACE = gym.spaces.Box(0, 255, (1, 4, 4), np.uint8)
torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------- the losses


def test_discriminator_loss_on_hand_computed_numbers() -> None:
    zero = torch.zeros(1)
    # D = 1/2 on both: -log(1/2) - log(1 - 1/2) = 2 log 2
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    # softplus(-2) = log(1 + e^-2) = 0.126928; softplus(-1) = log(1 + e^-1) = 0.313262
    assert discriminator_loss(real, fake).item() == pytest.approx(0.126928 + 0.313262, abs=1e-6)
    # one-sided smoothing to 0.9: 0.9 softplus(-2) + 0.1 softplus(2) = 0.114235 + 0.212693
    assert discriminator_loss(real, fake, 0.9).item() == pytest.approx(
        0.114235 + 0.212693 + 0.313262, abs=1e-6
    )


def test_generator_losses_on_hand_computed_numbers() -> None:
    fake = torch.tensor([-1.0, 1.0])
    # non-saturating: mean(softplus(1), softplus(-1)) = (1.313262 + 0.313262) / 2
    assert generator_loss(fake).item() == pytest.approx((1.313262 + 0.313262) / 2, abs=1e-6)
    # minimax: mean(log(1 - D)) = -mean(softplus(-1), softplus(1))
    assert generator_loss(fake, "minimax").item() == pytest.approx(-(0.313262 + 1.313262) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="unknown generator loss"):
        generator_loss(fake, "wasserstein")
    assert tuple(GENERATOR_LOSSES) == tuple(GAN_LOSSES)  # the torch-free schema offers what the math has


def test_the_non_saturating_loss_keeps_its_gradient_when_d_wins() -> None:
    """Goodfellow et al. 2014 sec. 3: at D(G(z)) ~ 0 the minimax gradient vanishes, the non-saturating one does not."""
    grads = {}
    for kind in ("non_saturating", "minimax"):
        logit = torch.tensor([-10.0], requires_grad=True)
        generator_loss(logit, kind).backward()
        grads[kind] = logit.grad.item()  # type: ignore[union-attr]
    assert grads["non_saturating"] == pytest.approx(-1 / (1 + math.exp(-10)), rel=1e-6)  # -sigmoid(10)
    assert grads["minimax"] == pytest.approx(-1 / (1 + math.exp(10)), rel=1e-6)  # -sigmoid(-10) ~ -4.5e-5


def test_frechet_distance_on_hand_computed_gaussians() -> None:
    one = torch.ones(1, 1)
    # 1-D: (0 - 1)^2 + 4 + 1 - 2 sqrt(4 * 1) = 2
    assert frechet_distance(torch.zeros(1), 4 * one, torch.ones(1), one) == pytest.approx(2.0)
    # diagonal 2-D: |(1, 2)|^2 + (1 + 4) + (4 + 1) - 2 (sqrt(4) + sqrt(4)) = 5 + 10 - 8 = 7
    s1, s2 = torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([4.0, 1.0]))
    assert frechet_distance(torch.zeros(2), s1, torch.tensor([1.0, 2.0]), s2) == pytest.approx(7.0)
    features = torch.randn(500, 3, generator=torch.Generator().manual_seed(0))
    mu, sigma = gaussian_stats(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    assert torch.allclose(sigma, torch.cov(features.double().T))


# ------------------------------------------------------------------------------------------- the modules


@pytest.mark.parametrize(
    "net_cfg",
    [
        VGGConfig(channels=[8, 16], convs_per_block=1, features_dim=32),
        LeNet5Config(padding="valid"),
        MLPConfig(hidden_sizes=[32]),
    ],
    ids=["vgg", "lenet5", "mlp"],
)
def test_generator_mirrors_the_discriminator_and_outputs_pixels(net_cfg: object) -> None:
    extractor = build_extractor(net_cfg, MNIST_SPACE)
    generator, discriminator = Generator(extractor, z_dim=16, n_classes=10), Discriminator(extractor, 10)
    labels = torch.arange(6) % 10
    with torch.no_grad():
        images = generator(torch.randn(6, 16), labels)
    assert images.shape == (6, 1, 28, 28)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert discriminator(images, labels).shape == (6,)
    assert any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) for m in generator.modules())
    with pytest.raises(ValueError, match="needs the class"):
        generator(torch.randn(2, 16))


def test_one_step_on_tiny_data_moves_both_nets_and_repeats_with_the_seed() -> None:
    images = torch.randint(
        0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    net = VGGConfig(channels=[4, 8], convs_per_block=1, features_dim=16)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        agent = GANAgent(GANConfig(batch_size=8), net, MNIST_SPACE, None, device=CPU, seed=3)
        g0 = [p.detach().clone() for p in agent.generator.parameters()]
        d0 = [p.detach().clone() for p in agent.discriminator.parameters()]
        metrics = agent.update(images)
        assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
        assert all(math.isfinite(v.item()) for v in metrics.values())
        assert any(not torch.equal(a, p) for a, p in zip(g0, agent.generator.parameters(), strict=True))
        assert any(not torch.equal(a, p) for a, p in zip(d0, agent.discriminator.parameters(), strict=True))
        runs.append({k: v.item() for k, v in metrics.items()})
    assert runs[0] == runs[1]


def test_conditional_gan_learns_which_class_is_which() -> None:
    """Toy data: class 0 is dark 4x4 images, class 1 bright ones; after training, each label gives its kind."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (512,), generator=gen)
    base = torch.where(labels[:, None, None, None] == 1, 220.0, 30.0)
    images = (base + 20 * torch.randn(512, 1, 4, 4, generator=gen)).clamp(0, 255).to(torch.uint8)
    torch.manual_seed(0)
    cfg = GANConfig(conditional=True, z_dim=4, batch_size=64, lr=2e-3, lr_d=2e-3)
    agent = GANAgent(cfg, MLPConfig(hidden_sizes=[32]), TOY_SPACE, gym.spaces.Discrete(2), device=CPU, seed=0)
    for step in range(300):
        index = torch.arange(step * 64, (step + 1) * 64) % 512
        agent.update(images[index], labels[index])
    for label, low, high in ((0, 0.0, 0.3), (1, 0.7, 1.0)):
        samples, given = agent.sample(200, torch.full((200,), label))
        assert given is not None and bool((given == label).all())
        assert low <= samples.mean().item() <= high, (label, samples.mean().item())
    with pytest.raises(ValueError, match="needs the labels"):
        agent.update(images[:8])


# ------------------------------------------------------------------------------------------- the CLI


def train(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", "logger.progress=false", "threads=1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**__import__("os").environ, "WANDB_MODE": "disabled"},
    )


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("gan") / "run"
    result = train(
        "agent=gan",
        "env=Digits",
        "net=mlp",
        "net.hidden_sizes=[32]",
        "agent.conditional=true",
        "agent.epochs=2",
        "agent.grid_size=4",
        f"run_dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def test_cli_writes_a_normal_run_directory(gan_run: Path) -> None:
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "learning_curve.png",
        "samples.png",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
        "encoder.pt",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (gan_run / name).is_file(), name
    summary = json.loads((gan_run / "summary.json").read_text())
    assert summary["agent"] == "gan" and summary["conditional"] is True and summary["epochs"] == 2
    assert summary["eval_mean_return"] is None and math.isfinite(summary["final_d_loss"])
    assert len((gan_run / "metrics.csv").read_text().strip().splitlines()) == 3  # header + one row per epoch


def test_save_then_load_gives_the_same_generator(gan_run: Path) -> None:
    agent, cfg, ckpt = load_agent(gan_run / "checkpoints" / "last.pt", "cpu")
    assert isinstance(agent, GANAgent) and cfg.agent.conditional and agent.n_classes == 10
    again, _, _ = load_agent(gan_run / "checkpoints" / "last.pt", "cpu")
    z, labels = torch.randn(5, cfg.agent.z_dim), torch.arange(5)
    first, _ = agent.sample(5, labels, z)
    second, _ = again.sample(5, labels, z)
    assert torch.equal(first, second)
    assert ckpt["counters"]["epoch"] == 2


def test_the_discriminator_is_reused_through_net_pretrained(gan_run: Path) -> None:
    agent, _, _ = load_agent(gan_run / "checkpoints" / "last.pt", "cpu")
    reused = build_extractor(
        MLPConfig(hidden_sizes=[32], pretrained=str(gan_run)), gym.spaces.Box(0, 255, (1, 8, 8), np.uint8)
    )
    for key, value in agent.encoder.state_dict().items():
        assert torch.equal(reused.state_dict()[key], value), key


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["agent.loss=wasserstein"], "agent.loss"),
        (["agent.z_dim=0"], "agent.z_dim"),
        (["agent.real_target=0.2"], "agent.real_target"),
        (["env=CartPole"], "env"),
        (["agent.batch_size=100000"], "agent.batch_size"),
        (["net=lstm"], "net.name"),
    ],
)
def test_bad_options_are_refused_in_one_line_naming_the_key(
    args: list[str], key: str, tmp_path: Path
) -> None:
    if args == ["net=lstm"]:  # the check is in the agent: in process, no subprocess needed
        with pytest.raises(ConfigError, match=f"config key '{key}'"):
            GANAgent(GANConfig(), LSTMConfig(), TOY_SPACE, None, device=CPU)
        return
    env = [] if any(a.startswith("env=") for a in args) else ["env=Digits", "net=mlp"]
    result = train("agent=gan", *env, *args, f"run_dir={tmp_path / 'refused'}", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and f"'{key}'" in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "refused").exists()
