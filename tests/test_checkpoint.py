import pickle

import pytest
import torch

from rlcore.base.checkpoint import atomic_torch_save, load_checkpoint, save_checkpoint
from rlcore.base.errors import CheckpointError


class Payload:
    """A class whose pickle would run code on load: weights_only must refuse it."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_round_trip_and_versions(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"agent": {"w": torch.ones(3)}, "counters": {"env_steps": 7}})
    data = load_checkpoint(path)
    assert data["counters"]["env_steps"] == 7 and torch.equal(data["agent"]["w"], torch.ones(3))
    assert "torch" in data["versions"] and data["format"] == "rlcore-checkpoint"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"agent": {"w": torch.zeros(2)}})
    with pytest.raises((pickle.PicklingError, AttributeError)):
        atomic_torch_save({"bad": lambda: None}, path)  # torch.save fails mid-write
    assert torch.equal(load_checkpoint(path)["agent"]["w"], torch.zeros(2))
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_truncated_foreign_and_code_carrying_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"agent": {"w": torch.ones(100)}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or not a torch file"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not an rlcore checkpoint"):
        load_checkpoint(foreign)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "rlcore-checkpoint", "x": Payload()}, evil)
    with pytest.raises(CheckpointError, match="run code"):
        load_checkpoint(evil)


def test_run_directory_resolves_to_last(tmp_path):
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", {"agent": {}})
    assert load_checkpoint(tmp_path)["agent"] == {}
    with pytest.raises(CheckpointError, match="without checkpoints/last.pt"):
        load_checkpoint(tmp_path / "checkpoints")
