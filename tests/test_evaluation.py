"""Evaluation draws from its own generator: it never changes the training trajectory (issue 15)."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import torch

from rlcore.training.evaluation import evaluate
from tests.conftest import build_agent, compose_config


def make_cartpole(n: int = 2) -> gym.vector.VectorEnv:
    env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync")
    env.reset(seed=3)
    return env


def test_evaluation_leaves_the_agents_generator_alone():
    from rlcore.config import to_typed

    cfg = to_typed(compose_config(["device=cpu"]))
    env = make_cartpole()
    agent = build_agent(cfg, env.single_observation_space, env.single_action_space, torch.device("cpu"))
    before = agent.rng.bit_generator.state
    evaluate(agent, env, 2, epsilon=0.5, rng=np.random.default_rng(7))
    evaluate(agent, env, 2, epsilon=0.5)  # no generator given: a fresh one, still not the agent's
    assert agent.rng.bit_generator.state == before


def test_evaluation_random_actions_follow_the_given_generator():
    """ε = 1: every action is random, so two evaluations with equally seeded generators play the same episodes,
    and a differently seeded one does not."""
    from rlcore.config import to_typed

    cfg = to_typed(compose_config(["device=cpu"]))
    env = make_cartpole(1)
    agent = build_agent(cfg, env.single_observation_space, env.single_action_space, torch.device("cpu"))

    def lengths(seed: int) -> list[int]:
        env.reset(seed=11)
        return evaluate(agent, env, 6, epsilon=1.0, rng=np.random.default_rng(seed))[1].tolist()

    assert lengths(1) == lengths(1)
    assert lengths(1) != lengths(2)


def training_rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [
            {k: v for k, v in row.items() if not k.startswith(("eval/", "time/"))}
            for row in csv.DictReader(f)
            if not row["eval/mean_return"]
        ]


def test_the_evaluation_schedule_does_not_change_training(tmp_path):
    """eval_every=1000 and eval_every=3000 (one evaluation at the end): the same training rows and weights."""
    from rlcore.run import run

    common = [
        "total_steps=3000",
        "agent.learning_starts=500",
        "agent.train_freq=64",
        "agent.gradient_steps=16",
        "eval_episodes=3",
        "final_eval_episodes=2",
        "logger=none",
        "device=cpu",
    ]
    dirs = {}
    for every in (1000, 3000):
        run_dir = tmp_path / f"every{every}"
        run(compose_config(o := [*common, f"eval_every={every}", f"run_dir={run_dir}"]), run_dir, o)
        dirs[every] = run_dir
    often, once = training_rows(dirs[1000]), training_rows(dirs[3000])
    assert len(often) > 10 and often == once
    weights = [
        torch.load(d / "checkpoints" / "last.pt", weights_only=True)["agent"]["online"] for d in dirs.values()
    ]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
