"""agents/fastpath.py's flat-gradient invariant: every ``p.grad`` is a view into ``fast.flat_grad``.

Zeroing and norm clipping act on the flat buffer only; if anything replaced the ``p.grad`` views (e.g.
``optimizer.zero_grad(set_to_none=True)`` before a backward) clipping would silently stop reaching Adam, and
the gradients would accumulate across updates. Adam is nearly invariant to the gradient's scale, so a
comparison with a reference update at the default ``adam_eps`` barely sees a lost clip: these tests use a
large ``adam_eps`` (Adam's step is then about ``lr * m``, linear in the gradient), so the clipped and the
unclipped updates differ by orders of magnitude.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dqn import DQNAgent, DQNConfig
from agents.fastpath import FastPath
from nets import MLPConfig
from rlcore.replay import ReplayBuffer

OBS = gym.spaces.Box(-1, 1, (4,), np.float32)
ACT = gym.spaces.Discrete(3)
MAX_NORM = 1e-3  # far below the gradient norms of these batches, so every update clips
ADAM = {"lr": 1e-2, "eps": 1.0}


def make() -> DQNAgent:
    torch.manual_seed(0)
    cfg = DQNConfig(
        batch_size=16,
        learning_starts=0,
        target_update_interval=10_000,
        lr=ADAM["lr"],
        adam_eps=ADAM["eps"],
        max_grad_norm=MAX_NORM,
    )
    return DQNAgent(cfg, MLPConfig(hidden_sizes=[16]), OBS, ACT, total_steps=1000, device=torch.device("cpu"))


def batches(n: int) -> list:
    buffer = ReplayBuffer(256, OBS, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(100):
        buffer.add(
            rng.uniform(-1, 1, (1, 4)).astype(np.float32),
            rng.uniform(-1, 1, (1, 4)).astype(np.float32),
            rng.integers(0, 3, 1),
            rng.normal(size=1) * 10,
            (rng.random(1) < 0.1).astype(np.float32),
            np.zeros(1),
        )
    return [buffer.sample(16) for _ in range(n)]


def grads_are_views(fast: FastPath) -> bool:
    """Every gradient shares flat_grad's storage, at its own consecutive offset."""
    flat = fast.flat_grad
    offset = 0
    for p in fast.params:
        if p.grad is None or p.grad.untyped_storage().data_ptr() != flat.untyped_storage().data_ptr():
            return False
        if p.grad.storage_offset() != offset or p.grad.shape != p.shape:
            return False
        offset += p.numel()
    return offset == flat.numel()


def reference_updates(agent: DQNAgent, n: int, clip: bool) -> list[torch.Tensor]:
    """The textbook update on a copy of the online net: zero_grad, backward, clip_grad_norm_, Adam.step."""
    net = copy.deepcopy(agent.online)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, **ADAM)
    for batch in batches(n):
        with torch.no_grad():
            next_values = agent.target(batch.next_obs)[0].max(dim=1).values
            target = batch.rewards + agent.cfg.gamma * (1 - batch.terminated) * next_values
        q = net(batch.obs)[0].gather(1, batch.actions.view(-1, 1)).squeeze(1)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.smooth_l1_loss(q, target).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
        optimizer.step()
    return [p.detach().clone() for p in params]


def test_gradients_stay_views_into_the_flat_buffer_and_clipping_reaches_adam():
    agent = make()
    assert grads_are_views(agent.fast)
    clipped, unclipped = reference_updates(agent, 3, clip=True), reference_updates(agent, 3, clip=False)
    for batch in batches(
        3
    ):  # the first update goes through optimizer.step(), the later ones through adam_step
        metrics = agent.update(batch)
        assert metrics["grad_norm"].item() > 100 * MAX_NORM
        assert grads_are_views(agent.fast)
        # the gradients Adam read (the views) are the clipped ones
        grad_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in agent.fast.params]))
        assert grad_norm.item() <= MAX_NORM * (1 + 1e-5)
        assert torch.equal(grad_norm, torch.linalg.vector_norm(agent.fast.flat_grad))
    for p, p_clipped, p_unclipped in zip(agent.fast.params, clipped, unclipped, strict=True):
        torch.testing.assert_close(p.detach(), p_clipped, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(p.detach(), p_unclipped, rtol=1e-3, atol=1e-5)  # the clip mattered


def test_the_checks_catch_gradients_that_are_no_longer_views():
    # what the invariant forbids: set_to_none, then the agent's update allocates fresh gradients the clip misses
    agent = make()
    clipped = reference_updates(agent, 3, clip=True)
    agent.optimizer.zero_grad(set_to_none=True)
    for batch in batches(3):
        agent.update(batch)
    assert not grads_are_views(agent.fast)
    assert any(
        not torch.allclose(p.detach(), c, rtol=1e-5, atol=1e-7)
        for p, c in zip(agent.fast.params, clipped, strict=True)
    )


@pytest.mark.parametrize("channels_last", [False, True])
def test_views_keep_each_parameters_strides(channels_last):
    conv = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.Linear(12, 2))
    fast = FastPath(conv, device=torch.device("cpu"), lr=1e-3, adam_eps=1e-8, channels_last=channels_last)
    assert grads_are_views(fast)
    for p in fast.params:
        assert p.grad.stride() == p.stride()
    loss = conv(fast.layout(torch.randn(2, 2, 4, 4))).square().sum()
    fast.step(loss, max_grad_norm=1e-3)
    assert grads_are_views(fast)
    assert torch.linalg.vector_norm(fast.flat_grad).item() <= 1e-3 * (1 + 1e-5)
