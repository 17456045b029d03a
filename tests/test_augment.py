"""Random-shift and random-affine augmentation (agents.augment) and the supervised agent's agent.augment_shift key."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.augment import affine_warp, random_affine, random_shift
from agents.supervised import SupervisedAgent, SupervisedConfig
from envs import DatasetEnvConfig
from envs.dataset_env import dataset_splits
from nets import MLPConfig
from rlcore.base.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference: ``image`` (C, H, W) moved down by dy and right by dx pixels, zeros shifted in (slow, by slicing)."""
    out = torch.zeros_like(image)
    _, h, w = image.shape
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def which_shift(original: torch.Tensor, out: torch.Tensor, pixels: int) -> tuple[int, int] | None:
    """The (dy, dx) within ±pixels that turns ``original`` into ``out``, or None."""
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            if torch.equal(shifted(original, dy, dx), out):
                return dy, dx
    return None


def test_reference_shift_by_hand() -> None:
    image = torch.tensor([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=torch.uint8)
    assert shifted(image, 1, 1).tolist() == [[[0, 0, 0], [0, 1, 2], [0, 4, 5]]]
    assert shifted(image, -1, 0).tolist() == [[[4, 5, 6], [7, 8, 9], [0, 0, 0]]]
    assert shifted(image, 0, -2).tolist() == [[[3, 0, 0], [6, 0, 0], [9, 0, 0]]]


@pytest.mark.parametrize("pixels", [1, 2])
def test_each_image_is_translated_by_its_own_offset_within_bounds(pixels: int) -> None:
    images = torch.randint(
        1, 256, (400, 2, 6, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    out = random_shift(images, pixels, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8 and out.device == images.device
    offsets = [which_shift(a, b, pixels) for a, b in zip(images, out, strict=True)]
    assert (
        None not in offsets
    )  # every output is its own input shifted by at most ±pixels (both channels alike)
    # all (2p+1)^2 offsets occur (400 draws), the extremes included: the shift is per image, not per batch
    assert set(offsets) == {
        (dy, dx) for dy in range(-pixels, pixels + 1) for dx in range(-pixels, pixels + 1)
    }


def test_float_batches_and_the_same_seed_give_the_same_shifts() -> None:
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a = random_shift(images, 2, torch.Generator().manual_seed(7))
    b = random_shift(images, 2, torch.Generator().manual_seed(7))
    c = random_shift(images, 2, torch.Generator().manual_seed(8))
    assert a.dtype == torch.float32 and torch.equal(a, b) and not torch.equal(a, c)


def test_zero_shift_is_the_identity_and_draws_nothing() -> None:
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(3)
    before = generator.get_state()
    assert random_shift(images, 0, generator) is images
    assert torch.equal(generator.get_state(), before)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        random_shift(torch.zeros(1, 1, 4, 4), -1)
    with pytest.raises(ValueError, match="N, C, H, W"):
        random_shift(torch.zeros(4, 4), 1)


# ------------------------------------------------------------------------------------------ affine warps


def warp(
    images: torch.Tensor, angle: float = 0.0, scale: float = 1.0, offset: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    n = images.shape[0]
    return affine_warp(images, torch.full((n,), angle), torch.full((n,), scale), torch.tensor([offset] * n))


def test_affine_warp_by_hand() -> None:
    images = torch.randint(
        0, 256, (3, 2, 7, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(warp(images), images)  # the identity samples every pixel at its own centre
    assert torch.equal(warp(images, angle=math.pi / 2), torch.rot90(images, 1, (-2, -1)))
    assert torch.equal(warp(images, angle=math.pi), torch.rot90(images, 2, (-2, -1)))
    for ox, oy in [(1, 0), (0, 2), (-2, 1)]:  # whole-pixel offsets move the content by -offset, zeros come in
        assert torch.equal(warp(images, offset=(ox, oy)), torch.stack([shifted(i, -oy, -ox) for i in images]))
    blob = torch.zeros(1, 1, 8, 8)
    blob[0, 0, 3:5, 3:5] = 1.0  # a 2x2 blob at the centre, zoomed x2: output pixel x samples the input at x/2
    # bilinearly, per axis at centred x = -3.5..3.5 -> x/2 = -1.75..1.75 over input pixels at ±0.5 (1), ±1.5 (0)
    profile = torch.tensor([0, 0.25, 0.75, 1, 1, 0.75, 0.25, 0])
    zoomed = warp(blob, scale=2.0)
    assert zoomed.dtype == torch.float32 and torch.equal(zoomed[0, 0], torch.outer(profile, profile))


def test_random_affine_draws_per_image_and_repeats_with_the_seed() -> None:
    images = torch.randint(
        0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    a = random_affine(images, 10, 0.1, 2, torch.Generator().manual_seed(7))
    b = random_affine(images, 10, 0.1, 2, torch.Generator().manual_seed(7))
    c = random_affine(images, 10, 0.1, 2, torch.Generator().manual_seed(8))
    assert a.dtype == torch.uint8 and a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert len({bytes(image.numpy()) for image in a - images}) == 64  # each image gets its own warp
    only_shifts = random_affine(images, 0, 0.0, 2, torch.Generator().manual_seed(1))
    assert all(which_shift(i, o, 2) is not None for i, o in zip(images, only_shifts, strict=True))
    generator = torch.Generator().manual_seed(3)
    before = generator.get_state()
    assert random_affine(images, 0, 0.0, 0, generator) is images and torch.equal(
        generator.get_state(), before
    )
    with pytest.raises(ValueError, match="degrees >= 0"):
        random_affine(images, 10, 1.0, 2)
    with pytest.raises(ValueError, match="N, C, H, W"):
        random_affine(images[0], 10, 0.1, 2)


# ------------------------------------------------------------------------------------------- the agent key


def digits_agent(**overrides: object) -> tuple[SupervisedAgent, dict]:
    torch.manual_seed(0)
    splits = dataset_splits(DatasetEnvConfig(name="Digits", dataset="digits"), 0)
    space = gym.spaces.Box(0, 255, splits["train"].images.shape[1:], np.uint8)
    agent = SupervisedAgent(
        SupervisedConfig(**overrides), MLPConfig(), space, gym.spaces.Discrete(10), device=torch.device("cpu")
    )
    return agent, splits


def batch(splits: dict, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.array(splits["train"].images[:n])), torch.from_numpy(
        np.array(splits["train"].labels[:n])
    )


def test_augment_shift_is_validated() -> None:
    with pytest.raises(ConfigError, match="agent.augment_shift"):
        SupervisedConfig(augment_shift=-1)
    with pytest.raises(ConfigError, match="agent.augment_shift"):  # as large as the 8x8 Digits images
        digits_agent(augment_shift=8)
    vector = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    with pytest.raises(ConfigError, match="agent.augment_shift"):
        SupervisedAgent(
            SupervisedConfig(augment_shift=1),
            MLPConfig(),
            vector,
            gym.spaces.Discrete(2),
            device=torch.device("cpu"),
        )


def test_augmentation_changes_training_steps_only() -> None:
    plain, splits = digits_agent()
    augmented, _ = digits_agent(augment_shift=1)
    test = splits["test"].images
    assert torch.equal(plain.logits(test), augmented.logits(test))  # same init; scoring never shifts
    plain.update(batch(splits))
    augmented.update(batch(splits))
    assert not torch.equal(plain.logits(test), augmented.logits(test))  # the step saw shifted images


def test_state_dict_carries_the_augmentation_stream(tmp_path: Path) -> None:
    agent, splits = digits_agent(augment_shift=2)
    agent.update(batch(splits))
    torch.save(agent.state_dict(), tmp_path / "agent.pt")
    agent.update(batch(splits))
    other, _ = digits_agent(augment_shift=2)
    other.load_state_dict(torch.load(tmp_path / "agent.pt", weights_only=True))
    other.update(batch(splits))
    test = splits["test"].images
    assert torch.equal(agent.logits(test), other.logits(test))  # same weights, same next shifts


def test_cli_rejects_a_negative_shift_with_one_message() -> None:
    done = subprocess.run(
        [sys.executable, "train.py", "agent=supervised", "env=Digits", "agent.augment_shift=-2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "agent.augment_shift" in done.stderr and "Traceback" not in done.stderr
