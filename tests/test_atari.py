"""The Atari env with the real emulator: preprocessing, life loss, raw rewards, evaluation protocol, config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

import envs
from envs.atari import EVAL_MAX_EPISODE_FRAMES, AtariConfig
from rlcore.base.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "env"


def run_random(env, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs, info = env.reset()
    for _ in range(steps):
        actions = rng.integers(0, env.single_action_space.n, size=env.num_envs)
        next_obs, rewards, terminated, truncated, info = env.step(actions)
        yield obs, actions, next_obs, rewards, terminated, truncated, info
        obs = next_obs


def test_observations_are_zero_padded_uint8_stacks():
    env = envs.make_env(AtariConfig(game="breakout", n_envs=2), seed=0)
    assert env.single_observation_space.shape == (4, 84, 84)
    assert env.single_observation_space.dtype == np.uint8
    assert env.observation_space.shape == (2, 4, 84, 84)
    obs, info = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert not obs[:, :3].any() and obs[:, 3].any()  # FrameReplayBuffer relies on this padding
    for obs, _, next_obs, _, terminated, truncated, _ in run_random(env, 50):
        live = ~(terminated | truncated)
        np.testing.assert_array_equal(next_obs[live, :3], obs[live, 1:])


def test_training_reports_life_loss_and_ends_episodes_only_at_game_over():
    env = envs.make_env(AtariConfig(game="Breakout", n_envs=2), seed=1)
    losses = np.zeros(2, int)
    finished = []
    lives = None
    for obs, _, next_obs, rewards, terminated, truncated, info in run_random(env, 700):
        assert info["life_loss"].dtype == np.bool_ and info["life_loss"].shape == (2,)
        assert not (info["life_loss"] & (terminated | truncated)).any()
        assert rewards.dtype == np.float32
        losses += info["life_loss"]
        for e in np.flatnonzero(terminated | truncated):
            assert info["_final_obs"][e]
            np.testing.assert_array_equal(info["final_obs"][e, :3], obs[e, 1:])  # the real last obs
            assert not next_obs[e, :3].any()  # ... and the reset obs of the new game
            if terminated[e]:
                assert lives[e] == 1  # game over only after the last life
                finished.append(losses[e])
            losses[e] = 0
        lives = info["lives"]
    assert finished and all(n == 4 for n in finished)  # Breakout has 5 lives: 4 life losses, then game over


def test_evaluation_plays_full_games_with_fire_reset_and_the_frame_cap():
    cfg = AtariConfig(game="breakout", noop_max=0)
    env = envs.make_env(cfg, seed=0, evaluation=True)
    assert env.num_envs == 1
    _, info = env.reset()
    assert info["lives"][0] == 5
    noop = np.zeros(1, np.int64)
    lives_seen = set()
    steps = 0
    while steps < EVAL_MAX_EPISODE_FRAMES:  # a bound, in case the cap were missing
        _, _, terminated, truncated, info = env.step(noop)
        steps += 1
        assert "life_loss" not in info
        if terminated[0] or truncated[0]:
            break
        lives_seen.add(int(info["lives"][0]))
    # FIRE on reset served the ball, which was lost once; nobody serves again, so only the 5-minute cap ends it.
    assert lives_seen == {4, 5}
    assert truncated[0] and not terminated[0]
    assert steps == EVAL_MAX_EPISODE_FRAMES // cfg.frame_skip


def test_rewards_are_raw_game_scores():
    env = envs.make_env(AtariConfig(game="SpaceInvaders", n_envs=2), seed=0)
    rewards = np.concatenate([step[3] for step in run_random(env, 300)])
    assert rewards.max() > 1  # space invaders scores 5 to 30 per alien; clipping is the learner's business


def test_sticky_evaluation_and_single_frame_stacks_build():
    env = envs.make_env(
        AtariConfig(game="pong", eval_protocol="sticky", frame_stack=1), seed=0, evaluation=True
    )
    assert env.single_observation_space.shape == (1, 84, 84)
    for obs, *_ in run_random(env, 20):
        assert obs.shape == (1, 1, 84, 84)


def test_same_seed_same_games():
    def frames(seed: int) -> np.ndarray:
        env = envs.make_env(AtariConfig(game="breakout", n_envs=2), seed=seed)
        return np.stack([step[2] for step in run_random(env, 60)])

    assert np.array_equal(frames(3), frames(3))
    assert not np.array_equal(frames(3), frames(4))


def test_game_names_and_config_errors():
    assert AtariConfig(game="SpaceInvaders").game == "space_invaders"
    assert AtariConfig(game="ALE/MsPacman-v5").game == "ms_pacman"
    with pytest.raises(ConfigError, match=r"'env.game'.*Did you mean breakout\?.*Valid ALE games: .*pong"):
        AtariConfig(game="breakot")
    with pytest.raises(ConfigError, match="'env.eval_protocol'.*nature, sticky"):
        AtariConfig(game="pong", eval_protocol="dopamine")
    with pytest.raises(ConfigError, match="'env.frame_stack'"):
        AtariConfig(game="pong", frame_stack=0)
    with pytest.raises(ConfigError, match="'env.repeat_action_probability'"):
        AtariConfig(game="pong", repeat_action_probability=1.0)
    with pytest.raises(ConfigError, match="'env.game': no game chosen"):
        AtariConfig()
    assert AtariConfig(game="Qbert").name == "qbert"
    assert envs.SCHEMAS["atari_schema"] is AtariConfig


def load_env_option(name: str, **overrides):
    node = OmegaConf.load(CONFIGS / f"{name}.yaml")
    assert node.pop("defaults")[0] == "/schema/env/atari_schema@_here_"
    env = OmegaConf.merge(OmegaConf.structured(AtariConfig), node, overrides)
    return OmegaConf.to_object(OmegaConf.create({"env": env}))["env"]


@pytest.mark.parametrize("name", ["Breakout", "Pong", "SpaceInvaders", "Seaquest", "BeamRider", "Qbert"])
def test_game_option_files(name):
    cfg = load_env_option(name)
    assert cfg.name == name and cfg.game.replace("_", "") == name.lower()


def test_generic_option_needs_a_game():
    # rlcore.config.to_typed turns this into a ConfigError with the same message.
    with pytest.raises(MissingMandatoryValue, match="missing mandatory value: game") as info:
        load_env_option("atari")
    assert "full_key: env.game" in str(info.value) and "env.name" not in str(info.value)
    cfg = load_env_option("atari", game="MsPacman")
    assert (cfg.name, cfg.game) == ("MsPacman", "ms_pacman")
