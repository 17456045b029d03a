"""A round of updates with one target pass (DQNAgent.update_round) equals one update per batch, and the loop
uses it; the flat gradient buffer equals per-tensor zero_grad + clip_grad_norm_; the training loop flushes
denormals when asked and reports its CPU time."""

import copy
import csv

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dqn import DQNAgent, DQNConfig
from agents.fastpath import clip_flat_grad_
from nets import MLPConfig
from rlcore.replay import ReplayBuffer
from rlcore.run import launch
from rlcore.training.learner import Learner, UpdateMetrics
from tests.conftest import compose_config

OBS = gym.spaces.Box(-1, 1, (4,), np.float32)
ACT = gym.spaces.Discrete(3)


def make(double: bool = False, dropout: float = 0.0) -> DQNAgent:
    torch.manual_seed(0)
    cfg = DQNConfig(batch_size=16, learning_starts=0, target_update_interval=10_000, double=double, lr=1e-2)
    return DQNAgent(
        cfg,
        MLPConfig(hidden_sizes=[32, 32], dropout=dropout),
        OBS,
        ACT,
        total_steps=1000,
        device=torch.device("cpu"),
        seed=0,
    )


def batches(n: int, seed: int = 0) -> list:
    buffer = ReplayBuffer(256, OBS, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(200):
        obs = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        buffer.add(
            obs,
            rng.uniform(-1, 1, (1, 4)).astype(np.float32),
            rng.integers(0, 3, 1),
            rng.normal(size=1),
            (rng.random(1) < 0.1).astype(np.float32),
            np.zeros(1),
        )
    return [buffer.sample(16) for _ in range(n)]


@pytest.mark.parametrize("double", [False, True])
def test_round_equals_one_update_per_batch(double):
    per_batch, per_round = make(double), make(double)
    warmup = batches(5, seed=1)
    for agent in (per_batch, per_round):  # the online net moves away from the (unsynced) target first
        for batch in warmup:
            agent.update(batch)
    assert not torch.equal(per_round.online.head.weight, per_round.target.head.weight)
    round_batches = batches(8)
    expected = [per_batch.update(batch) for batch in round_batches]
    got = per_round.update_round(round_batches)
    assert len(got) == len(expected) == 8
    for e, g in zip(expected, got, strict=True):
        for key in ("loss", "q", "grad_norm"):
            assert g[key].item() == pytest.approx(e[key].item(), rel=1e-6, abs=1e-6)
    for p_e, p_g in zip(per_batch.online.parameters(), per_round.online.parameters(), strict=True):
        torch.testing.assert_close(p_g, p_e, rtol=1e-6, atol=1e-6)


def test_round_uses_the_target_net_not_the_online_net():
    agent = make()
    for batch in batches(5, seed=1):
        agent.update(batch)
    round_batches = batches(3)
    online_as_target = make()
    online_as_target.load_state_dict(agent.state_dict())
    online_as_target.target.load_state_dict(online_as_target.online.state_dict())
    a, b = agent.update_round(round_batches), online_as_target.update_round(round_batches)
    assert a[0]["loss"].item() != pytest.approx(b[0]["loss"].item(), rel=1e-4)


def test_batch_dependent_target_falls_back_to_one_pass_per_batch():
    assert make().round_targets
    agent = make(dropout=0.5)  # active dropout: a sample's target output depends on chance
    assert not agent.round_targets
    calls = []
    agent.fast.forward_target = lambda obs: (calls.append(len(obs)), agent.target(obs))[1]
    agent.update_round(batches(3))
    assert calls == [16, 16, 16]


def test_learner_hands_the_whole_round_to_the_agent():
    agent = make()
    calls = []
    original = agent.fast.forward_target
    agent.fast.forward_target = lambda obs: (calls.append(len(obs)), original(obs))[1]
    metrics = UpdateMetrics()
    Learner(agent, metrics, overlap=False).submit(iter(batches(4)).__next__, 4)
    assert calls == [64]  # one target pass over the 4 x 16 next observations
    assert len(metrics.items["loss"]) == 4 and "td_errors" not in metrics.items


@pytest.mark.parametrize("flush", [True, False])
def test_training_loop_sets_flush_denormal(flush, tmp_path, monkeypatch):
    """The run flushes denormals as flush_denormal says while it trains, and puts the default back after."""
    from rlcore.config import to_typed
    from rlcore.training import offpolicy

    cfg = to_typed(
        compose_config(
            [
                "total_steps=300",
                "eval_every=0",
                "final_eval_episodes=1",
                "logger=none",
                "device=cpu",
                f"flush_denormal={flush}",
                f"run_dir={tmp_path}",
                "agent.learning_starts=100",
                "agent.train_freq=100",
                "agent.gradient_steps=2",
            ]
        )
    )
    flushed_in_run = []

    def evaluate(*args, **kwargs):  # the final evaluation runs inside the run's settings
        flushed_in_run.append((torch.tensor([1e-39]) * 1.0).item() == 0.0)
        return original(*args, **kwargs)

    original = offpolicy.evaluate
    monkeypatch.setattr(offpolicy, "evaluate", evaluate)
    try:
        summary = launch(cfg, tmp_path, {})
        assert summary["train_cpu_s"] > 0  # the CPU-time SPS of benchmarks/cartpole_vs_sb3.py
        assert flushed_in_run == [flush]
        assert (torch.tensor([1e-39]) * 1.0).item() != 0.0  # nothing outlives the run
    finally:
        torch.set_flush_denormal(False)


def test_clip_flat_grad_on_hand_computed_numbers():
    grad = torch.tensor([3.0, 0.0, 4.0])  # norm 5
    norm = clip_flat_grad_(grad, 1.0)
    assert norm.item() == pytest.approx(5.0)
    torch.testing.assert_close(grad, torch.tensor([0.6, 0.0, 0.8]), rtol=1e-5, atol=1e-6)
    small = torch.tensor([0.3, 0.4])
    clip_flat_grad_(small, 1.0)  # norm 0.5 < 1: unchanged
    torch.testing.assert_close(small, torch.tensor([0.3, 0.4]))


def test_flat_gradient_update_equals_per_tensor_zero_grad_and_clip():
    """The agent's step (flat gradient buffer) against the textbook one: zero_grad, backward, clip_grad_norm_."""
    agent = make()
    agent.cfg.max_grad_norm = 0.01  # small enough that clipping acts
    reference = copy.deepcopy(agent.online)
    params = [p for p in reference.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=agent.cfg.lr, eps=agent.cfg.adam_eps)
    for batch in batches(6):
        with torch.no_grad():
            next_values = agent.target(batch.next_obs)[0].max(dim=1).values
            target = batch.rewards + agent.cfg.gamma * (1 - batch.terminated) * next_values
        q = reference(batch.obs)[0].gather(1, batch.actions.view(-1, 1)).squeeze(1)
        loss = torch.nn.functional.smooth_l1_loss(q, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 0.01)
        optimizer.step()
        metrics = agent.update(batch)
        assert metrics["grad_norm"].item() == pytest.approx(norm.item(), rel=1e-5)
        assert norm.item() > 0.01
    for p_ref, p in zip(reference.parameters(), agent.online.parameters(), strict=True):
        torch.testing.assert_close(p, p_ref, rtol=1e-5, atol=1e-6)
    start, end = (
        agent.fast.flat_grad.data_ptr(),
        agent.fast.flat_grad.data_ptr() + agent.fast.flat_grad.numel() * 4,
    )
    assert all(start <= p.grad.data_ptr() < end for p in agent.fast.params)  # still views after the updates


def test_adam_step_gives_the_numbers_of_optimizer_step():
    from agents.fastpath import adam_step

    torch.manual_seed(0)
    nets_ = [
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)) for _ in range(2)
    ]
    nets_[1].load_state_dict(nets_[0].state_dict())
    initial = copy.deepcopy(nets_[0])
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2, eps=1e-5, weight_decay=1e-3, fused=True) for n in nets_]
    x = torch.randn(16, 4)
    for step in range(5):
        for net, opt, fast in zip(nets_, opts, (False, True), strict=True):
            opt.zero_grad()
            net(x).square().mean().backward()
            for group in opt.param_groups:
                group["lr"] = 1e-2 / (step + 1)  # a schedule: the functional step must read the group's lr
            adam_step(opt) if fast else opt.step()
    for p_ref, p_fast in zip(nets_[0].parameters(), nets_[1].parameters(), strict=True):
        assert torch.equal(p_ref, p_fast)
    for s_ref, s_fast in zip(opts[0].state.values(), opts[1].state.values(), strict=True):
        assert all(torch.equal(s_ref[k], s_fast[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    assert not torch.equal(nets_[1][0].weight, initial[0].weight)  # the steps did move the weights


def test_sample_round_is_one_draw_split_into_batches():
    from rlcore.replay.sum_tree import PrioritizedSampler

    def filled(**kwargs) -> ReplayBuffer:
        buffer = ReplayBuffer(64, OBS, seed=3, **kwargs)
        rng = np.random.default_rng(0)
        for _ in range(50):
            obs = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
            buffer.add(
                obs,
                obs + 1,
                rng.integers(0, 3, 1),
                rng.normal(size=1),
                rng.random(1) < 0.2,
                rng.random(1) < 0.1,
            )
        return buffer

    for kwargs in ({}, {"n_step": 3, "gamma": 0.9}):
        a, b = filled(**kwargs), filled(**kwargs)
        got = a.sample_round(8, 4)
        whole = b.gather(b.rng.integers(0, b.size, size=32))
        assert len(got) == 4
        for i, batch in enumerate(got):
            for name, value in batch._asdict().items():
                ref = getattr(whole, name)
                assert (value is None) == (ref is None), name
                if value is not None:
                    assert torch.equal(value, ref[8 * i : 8 * (i + 1)]), name
    with pytest.raises(RuntimeError, match="one batch at a time"):
        filled(sampler=PrioritizedSampler(64, 0.6)).sample_round(8, 2)


def test_round_with_n_step_discounts_equals_one_update_per_batch():
    buffer = ReplayBuffer(256, OBS, seed=0, n_step=3, gamma=0.9)
    rng = np.random.default_rng(0)
    for _ in range(200):
        obs = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        buffer.add(
            obs,
            obs * 0.5,
            rng.integers(0, 3, 1),
            rng.normal(size=1),
            rng.random(1) < 0.1,
            rng.random(1) < 0.05,
        )
    round_batches = buffer.sample_round(16, 6)
    assert round_batches[0].discounts is not None
    per_batch, per_round = make(), make()
    per_round.target.head.bias.data += 1.0  # a target that differs from the online net
    per_batch.target.head.bias.data += 1.0
    expected = [per_batch.update(batch)["loss"].item() for batch in round_batches]
    got = [m["loss"].item() for m in per_round.update_round(round_batches)]
    assert got == pytest.approx(expected, rel=1e-6)


def test_a_round_in_flight_defers_the_lr_change_and_the_target_sync():
    torch.manual_seed(0)
    cfg = DQNConfig(batch_size=16, target_update_interval=10, lr=1e-2, lr_final=0.0)
    agent = DQNAgent(cfg, MLPConfig(hidden_sizes=[8]), OBS, ACT, total_steps=1000, device=torch.device("cpu"))
    agent.update(batches(1)[0])  # online now differs from the target
    agent.advance(20, round_in_flight=True)
    assert not torch.equal(agent.target.head.weight, agent.online.head.weight)
    assert agent.optimizer.param_groups[0]["lr"] == 1e-2 and agent.target_syncs == 0
    assert agent.target_sync_due(20)
    agent.begin_round()  # what Learner.wait does when the round ends
    assert torch.equal(agent.target.head.weight, agent.online.head.weight) and agent.target_syncs == 2
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * (1 - 20 / 1000))


def test_overlap_on_cartpole_is_deterministic_and_syncs_between_rounds(tmp_path):
    """With overlap the loop does not wait for the round at every target sync (CartPole syncs every 10
    steps, trains every 64 here); the runs stay exactly reproducible."""
    from rlcore.config import to_typed

    rows = []
    for name in ("a", "b"):
        cfg = to_typed(
            compose_config(
                [
                    "total_steps=640",
                    "eval_every=320",
                    "eval_episodes=2",
                    "final_eval_episodes=2",
                    "logger=none",
                    "device=cpu",
                    "overlap=true",
                    f"run_dir={tmp_path / name}",
                    "agent.learning_starts=128",
                    "agent.train_freq=64",
                    "agent.gradient_steps=16",
                    "agent.target_update_interval=10",
                    "agent.lr_final=0.0",
                    "threads=1",
                ]
            )
        )
        (tmp_path / name).mkdir()
        summary = launch(cfg, tmp_path / name, {})
        assert summary["updates"] == (640 - 128) // 64 * 16 + 16
        state = torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)["agent"]
        assert state["target_syncs"] == 64  # the sync due at the end was applied when the last round ended
        with open(tmp_path / name / "metrics.csv") as handle:
            rows.append(
                [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(handle)]
            )
    assert rows[0] == rows[1] and any(r["train/loss"] for r in rows[0])
