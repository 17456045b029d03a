"""DQN's switches: dueling math, weighted loss, TD errors to priorities, and every combination from the CLI."""

from __future__ import annotations

import itertools
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import ROOT, compose_config, compose_many

from agents.dqn import DQNAgent, DQNConfig
from agents.q_learning import q_loss
from envs import make_env
from nets import MLPConfig, build_extractor
from nets.q_network import QNetwork, dueling_q
from rlcore.base.errors import ConfigError
from rlcore.config import to_typed
from rlcore.replay import ReplayBuffer, make_replay
from rlcore.replay.sum_tree import PrioritizedSampler
from rlcore.run import launch
from rlcore.training.learner import Learner, UpdateMetrics
from tests.conftest import build_agent

OBS = gym.spaces.Box(-1, 1, (4,), np.float32)
SWITCHES = {
    "agent.double": ["false", "true"],
    "agent.dueling": ["false", "true"],
    "agent.n_step": ["1", "3"],
    "agent.prioritized": ["false", "true"],
}


def test_dueling_combines_value_and_mean_subtracted_advantages_on_hand_values():
    value = torch.tensor([[1.0], [2.0]])
    advantages = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]])
    assert dueling_q(value, advantages).tolist() == [[0.0, 1.0, 2.0], [1.0, 1.0, 4.0]]


def test_dueling_network_output_is_v_plus_a_minus_mean_a():
    torch.manual_seed(0)
    net = QNetwork(build_extractor(MLPConfig(hidden_sizes=[8]), OBS), 3, dueling=True)
    obs = torch.rand(5, 4)
    q, _ = net(obs)
    features, _ = net.extractor(obs, None)
    v, a = net.value(features), net.head(features)
    torch.testing.assert_close(q, v + a - a.mean(dim=1, keepdim=True))
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), v)  # identifiability: mean_a Q = V
    plain = QNetwork(build_extractor(MLPConfig(hidden_sizes=[8]), OBS), 3)
    assert "value.weight" in net.state_dict() and not any(k.startswith("value") for k in plain.state_dict())


def test_importance_weights_scale_each_sample_loss_on_hand_values():
    q, target, weights = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]), torch.tensor([0.5, 1.0])
    assert q_loss(q, target, "mse", weights).item() == pytest.approx((0.5 * 1 + 1.0 * 4) / 2)
    assert q_loss(q, target, "huber", weights).item() == pytest.approx((0.5 * 0.5 + 1.0 * 1.5) / 2)


def test_update_reports_the_td_errors_that_become_priorities():
    torch.manual_seed(0)
    cfg = DQNConfig(
        batch_size=16, n_step=3, prioritized=True, per_alpha=0.5, per_eps=0.01, dueling=True, double=True
    )
    agent = DQNAgent(
        cfg,
        MLPConfig(hidden_sizes=[16]),
        OBS,
        gym.spaces.Discrete(3),
        total_steps=1000,
        device=torch.device("cpu"),
    )
    buffer = ReplayBuffer(128, OBS, n_step=3, gamma=cfg.gamma, sampler=PrioritizedSampler(128, 0.5, eps=0.01))
    rng = np.random.default_rng(0)
    for _ in range(64):
        obs = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        buffer.add(
            obs, obs * 0.9, rng.integers(0, 3, 1), rng.normal(size=1), rng.random(1) < 0.1, np.zeros(1)
        )
    events = []

    def sample():
        events.append(("sample", None, None))
        return buffer.sample(16)

    def update_priorities(indices, td_errors):
        events.append(("priorities", indices, td_errors.clone()))
        buffer.update_priorities(indices, td_errors)

    batch = buffer.sample(16)
    with torch.no_grad():  # the TD error the update sees, computed by hand before its step
        q = agent.online(batch.obs)[0].gather(1, batch.actions.view(-1, 1)).squeeze(1)
        best = agent.online(batch.next_obs)[0].argmax(1, keepdim=True)
        next_v = agent.target(batch.next_obs)[0].gather(1, best).squeeze(1)
        expected = batch.rewards + batch.discounts * (1 - batch.terminated) * next_v - q
    torch.testing.assert_close(agent.update(batch)["td_errors"], expected)
    learner = Learner(agent, UpdateMetrics(), overlap=False, update_priorities=update_priorities)
    learner.submit(sample, 2)
    # inline: each batch is sampled after the previous update's priorities are in the tree (as SB3 samples)
    assert [e[0] for e in events] == ["sample", "priorities", "sample", "priorities"]
    assert "train/td_errors" not in learner.metrics.pop()  # priorities, not a logged metric
    _, indices, td_errors = events[-1]
    np.testing.assert_allclose(
        buffer.sampler.tree.get(indices), (np.abs(td_errors.numpy()) + 0.01) ** 0.5, rtol=1e-6
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.n_step=0", "'agent.n_step': must be in [1, 100]"),
        ("agent.per_alpha=1.5", "'agent.per_alpha': must be in [0, 1]"),
        ("agent.per_beta0=-0.1", "'agent.per_beta0': must be in [0, 1]"),
        ("agent.per_eps=0", "'agent.per_eps': must be > 0"),
    ],
)
def test_bad_switch_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        to_typed(compose_config([override]))
    assert message in str(info.value)


def test_every_switch_combination_composes_builds_and_updates():
    combos = list(itertools.product(*SWITCHES.values()))
    configs = compose_many(
        [[f"{k}={v}" for k, v in zip(SWITCHES, c, strict=True)] + ["run_dir=x"] for c in combos]
    )
    env = make_env(to_typed(configs[0]).env, 0)
    for combo, cfg in zip(combos, configs, strict=True):
        typed = to_typed(cfg)
        a = typed.agent
        assert [str(v).lower() for v in (a.double, a.dueling, a.n_step, a.prioritized)] == list(combo)
        agent = build_agent(typed, env.single_observation_space, env.single_action_space, torch.device("cpu"))
        replay = make_replay(200, env, seed=0, device=torch.device("cpu"), options=a, total_steps=1000)
        assert (replay.n_step, replay.sampler is not None) == (a.n_step, a.prioritized)
        obs, _ = env.reset(seed=0)
        for _ in range(80):
            actions = agent.act(obs)
            next_obs, rewards, terminated, truncated, _ = env.step(actions)
            replay.add(obs, next_obs, actions, rewards, terminated, truncated)
            obs = next_obs
        batch = replay.sample(16)
        assert (batch.weights is not None, batch.discounts is not None) == (a.prioritized, a.n_step > 1)
        assert torch.isfinite(agent.update(batch)["loss"])
    env.close()


def tuned_envs() -> list[str]:
    return sorted(p.stem.removeprefix("dqn_") for p in (ROOT / "configs" / "tuned").glob("dqn_*.yaml"))


# the only keys where a rainbow_lite tuning departs from DQN's (configs/tuned/rainbow_lite_<env>.yaml says why)
RAINBOW_OWN_TUNING = {("CartPoleNoVel", "batch_size"): 128}


def test_rainbow_lite_gets_dqns_tuning_on_every_env_plus_its_switches():
    envs = tuned_envs()
    extra = lambda e: ["env.game=breakout"] if e == "atari" else []  # noqa: E731
    pairs = compose_many(
        [
            [f"agent={agent}", f"env={e}", *extra(e), "run_dir=x"]
            for e in envs
            for agent in ("dqn", "rainbow_lite")
        ]
    )
    switches = {"name", "double", "dueling", "n_step", "prioritized", "per_alpha", "per_beta0", "per_eps"}
    for e, dqn, rainbow in zip(envs, pairs[0::2], pairs[1::2], strict=True):
        d, r = to_typed(dqn), to_typed(rainbow)
        assert (r.agent.name, r.agent.double, r.agent.dueling, r.agent.n_step, r.agent.prioritized) == (
            "rainbow_lite",
            True,
            True,
            3,
            True,
        ), e
        assert r.agent.per_alpha == 0.5 and r.agent.per_beta0 == 0.4
        for key in set(vars(d.agent)) - switches:
            expected = RAINBOW_OWN_TUNING.get((e, key), getattr(d.agent, key))
            assert getattr(r.agent, key) == expected, (e, key)
        assert (r.total_steps, r.overlap, r.eval_every) == (d.total_steps, d.overlap, d.eval_every), e
    assert to_typed(pairs[envs.index("CartPole") * 2 + 1]).agent.lr == pytest.approx(2.3e-3)


def test_every_dqn_tuning_has_a_rainbow_lite_twin():
    assert {
        p.stem.removeprefix("rainbow_lite_") for p in (ROOT / "configs" / "tuned").glob("rainbow_lite_*.yaml")
    } == set(tuned_envs())


def test_rainbow_lite_trains_from_the_cli_and_prioritized_nstep_runs_with_overlap(cli, tmp_path):
    run = cli(
        "train.py",
        "agent=rainbow_lite",
        "total_steps=1500",
        "agent.learning_starts=500",
        "eval_every=0",
        "final_eval_episodes=2",
        "logger=none",
        f"run_dir={tmp_path / 'rainbow'}",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "rainbow" / "summary.json").read_text())
    assert (
        summary["agent"] == "rainbow_lite" and summary["updates"] == 4 * 64
    )  # rounds of CartPole's 64 updates at steps 500, 756, 1012, 1268
    state = torch.load(tmp_path / "rainbow" / "checkpoints" / "last.pt", weights_only=True)
    assert "value.weight" in state["agent"]["online"]
    typed = to_typed(
        compose_config(
            [
                "agent.prioritized=true",
                "agent.n_step=3",
                "env.n_envs=2",
                "overlap=true",
                "total_steps=1200",
                "agent.learning_starts=200",
                "agent.train_freq=4",
                "agent.gradient_steps=2",
                "eval_every=600",
                "eval_episodes=1",
                "final_eval_episodes=1",
                "logger=none",
                f"run_dir={tmp_path / 'overlap'}",
            ]
        )
    )
    (tmp_path / "overlap").mkdir()
    summary = launch(typed, tmp_path / "overlap", {})
    assert summary["updates"] == 2 * ((1200 - 200) // 4 + 1)


def test_rainbow_lite_on_atari_uses_the_frame_replay_with_two_envs_and_overlap(tmp_path):
    typed = to_typed(
        compose_config(
            [
                "agent=rainbow_lite",
                "env=Breakout",
                "env.n_envs=2",
                "agent.buffer_size=2000",
                "agent.learning_starts=100",
                "agent.target_update_interval=100",
                "total_steps=300",
                "eval_every=0",
                "final_eval_episodes=1",
                "env.eval_max_episode_frames=500",
                "logger=none",
                "device=cpu",
                f"run_dir={tmp_path}",
            ]
        )
    )
    assert typed.overlap and typed.agent.n_step == 3 and typed.agent.lr == 1e-4  # Atari tuning kept
    summary = launch(typed, tmp_path, {})
    assert summary["total_steps"] == 300 and summary["updates"] == (300 - 100) // 4 + 1
