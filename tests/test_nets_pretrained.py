"""save_encoder / load_pretrained round trips, freezing, and mismatch errors."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from nets import MLP, LeNet5, build_extractor, load_pretrained, save_encoder
from nets.configs import GRUConfig, LeNet5Config, MLPConfig
from rlcore.base.errors import CheckpointError

SPACE = gym.spaces.Box(0, 255, (1, 28, 28), np.uint8)


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = LeNet5Config(batch_norm=True)
    source = build_extractor(cfg, SPACE)
    source.train()
    source(torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8))  # move the BN running statistics
    path = save_encoder(source, tmp_path / "enc.pt", asdict(cfg))
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "rlcore-encoder" and payload["net"]["name"] == "lenet5"

    torch.manual_seed(1)
    target = build_extractor(LeNet5Config(batch_norm=True, pretrained=str(path)), SPACE)
    obs = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    source.eval()
    target.eval()
    torch.testing.assert_close(target(obs)[0], source(obs)[0], rtol=0, atol=0)


def test_run_directory_with_encoder_pt(tmp_path: Path) -> None:
    source = MLP((5,), hidden_sizes=[7])
    save_encoder(source, tmp_path, {"name": "mlp"})  # a directory gets encoder.pt
    assert (tmp_path / "encoder.pt").is_file()
    target = load_pretrained(MLP((5,), hidden_sizes=[7]), tmp_path)
    x = torch.randn(3, 5)
    torch.testing.assert_close(target(x)[0], source(x)[0])


def test_freeze_really_freezes(tmp_path: Path) -> None:
    path = save_encoder(MLP((5,), hidden_sizes=[7]), tmp_path / "e.pt", {"name": "mlp"})
    net = build_extractor(MLPConfig(hidden_sizes=[7], pretrained=str(path), freeze=True), (5,))
    head = torch.nn.Linear(7, 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=1.0)
    loss = head(net(torch.randn(4, 5))[0]).pow(2).sum()
    loss.backward()
    optimizer.step()
    assert all(not p.requires_grad and p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert head.weight.grad is not None


def test_freeze_without_pretrained_gives_fixed_random_features() -> None:
    net = build_extractor(GRUConfig(hidden_size=4, freeze=True), (3,))
    assert not any(p.requires_grad for p in net.parameters())


def test_shape_mismatch_names_key_and_both_shapes(tmp_path: Path) -> None:
    path = save_encoder(MLP((5,), hidden_sizes=[7]), tmp_path / "e.pt", {"name": "mlp"})
    with pytest.raises(CheckpointError) as info:
        load_pretrained(MLP((6,), hidden_sizes=[7]), path)
    message = str(info.value)
    assert "layers.1.0.weight" in message
    assert "saved shape (7, 5)" in message and "expected shape (7, 6)" in message


def test_architecture_mismatch_lists_missing_and_unexpected(tmp_path: Path) -> None:
    path = save_encoder(MLP((5,), hidden_sizes=[7]), tmp_path / "e.pt", {"name": "mlp"})
    with pytest.raises(CheckpointError, match=r"missing from the file: layers\.2\.0\.bias"):
        load_pretrained(MLP((5,), hidden_sizes=[7, 3]), path)
    with pytest.raises(CheckpointError, match="not in this net"):
        load_pretrained(LeNet5((1, 28, 28)), path)


def test_missing_foreign_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no pretrained encoder"):
        load_pretrained(MLP((5,)), tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an rlcore encoder"):
        load_pretrained(MLP((5,)), tmp_path / "foreign.pt")
    good = save_encoder(MLP((5,)), tmp_path / "good.pt", {"name": "mlp"})
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_pretrained(MLP((5,)), tmp_path / "cut.pt")
