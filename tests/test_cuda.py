"""The CUDA path (marked ``cuda``; skipped without a CUDA device; ``benchmarks/gpu_check.py`` runs them on a GPU
machine): the DQN/DrQ update on the GPU matches the CPU's, the frame replay stored on the GPU returns what the host
one does, and bf16 autocast and the augmentation run there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dqn import DQNAgent, DQNConfig
from nets import NatureCNNConfig
from rlcore.base.batches import Batch
from rlcore.replay.frames import FrameReplayBuffer

ROOT = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def agent(device: str, amp: bool = False, shift: int = 0) -> DQNAgent:
    torch.manual_seed(0)
    cfg = DQNConfig(double=True, dueling=True, augment_shift=shift, batch_size=32)
    return DQNAgent(
        cfg,
        NatureCNNConfig(),
        SPACE,
        gym.spaces.Discrete(4),
        total_steps=100,
        device=torch.device(device),
        amp=amp,
    )


def batch(device: str) -> Batch:
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (32, 5, 84, 84), dtype=torch.uint8, generator=g)
    cpu = Batch(
        frames[:, :-1].contiguous(),
        torch.randint(0, 4, (32,), generator=g),
        torch.randn(32, generator=g),
        frames[:, 1:].contiguous(),
        torch.zeros(32),
    )
    return Batch(*(t.to(device) if isinstance(t, torch.Tensor) else t for t in cpu))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("shift", [0, 4])
def test_update_on_cuda_matches_cpu(shift: int) -> None:
    cpu, gpu = agent("cpu", shift=shift), agent("cuda", shift=shift)
    gpu.online.load_state_dict(cpu.online.state_dict())
    gpu.target.load_state_dict(cpu.target.state_dict())
    m_cpu, m_gpu = cpu.update(batch("cpu")), gpu.update(batch("cuda"))  # same generator seed: same shifts
    assert float(m_gpu["loss"]) == pytest.approx(float(m_cpu["loss"]), rel=1e-3)
    for a, b in zip(cpu.online.parameters(), gpu.online.parameters(), strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-5)


@pytest.mark.cuda
@needs_cuda
def test_bf16_update_on_cuda_is_finite() -> None:
    learner = agent("cuda", amp=True, shift=4)
    for _ in range(3):
        metrics = learner.update(batch("cuda"))
    assert torch.isfinite(metrics["loss"]).item()


@pytest.mark.cuda
@needs_cuda
def test_frame_replay_on_cuda_matches_host() -> None:
    space = gym.spaces.Box(0, 255, (4, 6, 5), np.uint8)
    host = FrameReplayBuffer(100, space, seed=0, n_step=3)
    device = FrameReplayBuffer(100, space, seed=0, n_step=3, storage="torch", device="cuda")
    rng = np.random.default_rng(0)
    stack = np.zeros((1, 4, 6, 5), np.uint8)
    for t in range(60):
        nxt = np.concatenate([stack[:, 1:], rng.integers(0, 256, (1, 1, 6, 5), dtype=np.uint8)], axis=1)
        args = (
            stack,
            nxt,
            rng.integers(0, 4, 1),
            rng.normal(size=1),
            np.array([t % 17 == 16]),
            np.zeros(1, bool),
        )
        host.add(*args)
        device.add(*args)
        stack = nxt
    idx = np.arange(len(host))
    a, b = host.gather(idx), device.gather(idx)
    for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
        torch.testing.assert_close(getattr(b, name).cpu(), getattr(a, name))


def test_gpu_check_says_one_line_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would run for minutes")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and not done.stderr.strip()
