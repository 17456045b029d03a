"""agent=drq (docs/atari100k.md): DrQ's random shifts inside the DQN update, 10-step returns over life-loss
terminals on the frame replay, the atari100k protocol reaching the env, and a short CLI run of the preset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import agents.dqn as dqn_module
from agents.augment import random_shift
from agents.dqn import DQNAgent, DQNConfig
from envs import atari as atari_module
from envs.atari import AtariConfig, make_atari
from nets import NatureCNNConfig
from rlcore.base.batches import Batch
from rlcore.base.errors import ConfigError
from rlcore.config import register_configs, to_typed
from rlcore.replay.frames import FrameReplayBuffer
from tests.conftest import compose_many

register_configs()
SIDE = 36  # the smallest frames NatureCNN's three valid convolutions take: keeps the updates fast
IMAGES = gym.spaces.Box(0, 255, (4, SIDE, SIDE), np.uint8)
ACTIONS = gym.spaces.Discrete(4)


# ------------------------------------------------------------------------------ the shift, replicate padding


def replicate_shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference: DrQ's pad-then-crop (``ReplicationPad2d(p)``, crop at (p + dy, p + dx)) of one (C, H, W) image."""
    p = max(abs(dy), abs(dx), 1)
    padded = F.pad(image[None].float(), (p, p, p, p), mode="replicate")[0]
    _, h, w = image.shape
    return padded[:, p + dy : p + dy + h, p + dx : p + dx + w].to(image.dtype)


def which_offset(original: torch.Tensor, out: torch.Tensor, pixels: int) -> tuple[int, int] | None:
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            if torch.equal(replicate_shifted(original, dy, dx), out):
                return dy, dx
    return None


def test_replicate_reference_by_hand() -> None:
    image = torch.tensor([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=torch.uint8)
    # crop one pixel down-right of the centre: the last row and column repeat
    assert replicate_shifted(image, 1, 1).tolist() == [[[5, 6, 6], [8, 9, 9], [8, 9, 9]]]
    assert replicate_shifted(image, -1, 0).tolist() == [[[1, 2, 3], [1, 2, 3], [4, 5, 6]]]


def test_replicate_shift_gives_each_image_its_own_offset() -> None:
    images = torch.randint(
        0, 256, (200, 2, 9, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    out = random_shift(images, 2, torch.Generator().manual_seed(1), padding="replicate")
    assert out.shape == images.shape and out.dtype == torch.uint8
    offsets = [which_offset(a, b, 2) for a, b in zip(images, out, strict=True)]
    assert None not in offsets
    assert len(set(offsets)) == 25  # all 5 x 5 offsets occur among 200 images
    with pytest.raises(ValueError, match="padding"):
        random_shift(images, 2, padding="reflect")


# --------------------------------------------------------------------------------- inside the DQN update


def make_agent(shift: int, seed: int = 0) -> DQNAgent:
    torch.manual_seed(seed)
    cfg = DQNConfig(batch_size=8, n_step=1, double=True, dueling=True, augment_shift=shift, lr=1e-3)
    return DQNAgent(
        cfg, NatureCNNConfig(), IMAGES, ACTIONS, total_steps=1000, device=torch.device("cpu"), seed=seed
    )


def image_batch(n: int = 8, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randint(0, 256, (n, 4, SIDE, SIDE), dtype=torch.uint8, generator=g),
        actions=torch.randint(0, 4, (n,), generator=g),
        rewards=torch.randn(n, generator=g),
        next_obs=torch.randint(0, 256, (n, 4, SIDE, SIDE), dtype=torch.uint8, generator=g),
        terminated=torch.zeros(n),
    )


def test_augment_shifts_obs_and_next_obs_per_sample_and_seeded() -> None:
    batch = image_batch(32)
    out = make_agent(4).augment(batch)
    assert out.obs.shape == batch.obs.shape and out.next_obs.shape == batch.next_obs.shape
    assert out.obs.dtype == torch.uint8
    obs_offsets = [which_offset(a, b, 4) for a, b in zip(batch.obs, out.obs, strict=True)]
    next_offsets = [which_offset(a, b, 4) for a, b in zip(batch.next_obs, out.next_obs, strict=True)]
    assert None not in obs_offsets and None not in next_offsets
    assert len(set(obs_offsets)) > 10  # per-sample offsets, not one for the batch
    assert obs_offsets != next_offsets  # obs and next_obs drawn independently, as DrQ does
    assert out.actions is batch.actions and out.rewards is batch.rewards
    again = make_agent(4).augment(batch)  # same seed: same shifts
    assert torch.equal(again.obs, out.obs) and torch.equal(again.next_obs, out.next_obs)
    other = make_agent(4, seed=1).augment(batch)
    assert not torch.equal(other.obs, out.obs)


def test_augmentation_generator_is_saved_and_restored() -> None:
    agent = make_agent(4)
    agent.augment(image_batch())
    state = agent.state_dict()
    expected = agent.augment(image_batch(seed=3))
    restored = make_agent(4, seed=5)
    restored.load_state_dict(state)
    got = restored.augment(image_batch(seed=3))
    assert torch.equal(got.obs, expected.obs) and torch.equal(got.next_obs, expected.next_obs)


def test_update_learns_from_the_shifted_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[torch.Tensor] = []
    real = dqn_module.random_shift

    def spy(images: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = real(images, *args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(dqn_module, "random_shift", spy)
    agent = make_agent(4)
    calls: list[torch.Tensor] = []
    forward = agent.fast.forward_online
    monkeypatch.setattr(agent.fast, "forward_online", lambda x: (calls.append(x), forward(x))[1])
    agent.update(image_batch())
    assert len(seen) == 2  # obs and next_obs, once each
    # double DQN: the online net sees the shifted next_obs (argmax) and the shifted obs (the loss)
    assert torch.equal(calls[0], seen[1]) and torch.equal(calls[1], seen[0])


def test_off_is_the_unaugmented_update_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """augment_shift=0 takes the plain path: same weights as a shift-4 agent whose shift is the identity, and
    the augmentation generator is never drawn from."""
    plain = make_agent(0)
    state = plain.augment_generator.get_state()
    batch = image_batch()
    assert plain.augment(batch) is batch
    monkeypatch.setattr(dqn_module, "random_shift", lambda images, *a, **k: images)
    identity = make_agent(4)
    for seed in range(3):
        plain.update(image_batch(seed=seed))
        identity.update(image_batch(seed=seed))
    for a, b in zip(plain.online.parameters(), identity.online.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(plain.augment_generator.get_state(), state)


def test_a_target_synced_since_the_last_step_shares_the_online_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """DrQ(ε) syncs the target before every update (interval 1, τ = 1), so Double DQN's online and target
    passes over s' have the same weights: one pass gives both, and the weights match the two-pass update's
    bit for bit."""
    shared, two_pass = make_agent(4), make_agent(4)
    target_calls = [0]
    forward_target = shared.fast.forward_target
    monkeypatch.setattr(
        shared.fast,
        "forward_target",
        lambda x: (target_calls.__setitem__(0, target_calls[0] + 1), forward_target(x))[1],
    )
    for seed in range(4):
        for agent in (shared, two_pass):
            agent.sync_target()
        assert shared.target_is_online
        two_pass.target_is_online = False  # the reference takes the two passes
        shared.update(image_batch(seed=seed))
        two_pass.update(image_batch(seed=seed))
        assert not shared.target_is_online  # the step moved the online net away from the target
    assert target_calls[0] == 0
    for a, b in zip(shared.online.parameters(), two_pass.online.parameters(), strict=True):
        assert torch.equal(a, b)
    shared.update(image_batch(seed=9))  # no sync since the last step: the target pass is back
    assert target_calls[0] == 1


def test_a_soft_target_update_never_shares_the_pass() -> None:
    torch.manual_seed(0)
    agent = DQNAgent(
        DQNConfig(double=True, tau=0.5),
        NatureCNNConfig(),
        IMAGES,
        ACTIONS,
        total_steps=10,
        device=torch.device("cpu"),
    )
    agent.sync_target()
    assert not agent.target_is_online


def test_round_of_updates_augments_each_batch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    count = [0]
    real = dqn_module.random_shift

    def counting(images: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        count[0] += 1
        return real(images, *args, **kwargs)

    monkeypatch.setattr(dqn_module, "random_shift", counting)
    agent = make_agent(4)
    agent.update_round([image_batch(seed=s) for s in range(3)])
    assert count[0] == 6


def test_augment_shift_is_checked() -> None:
    with pytest.raises(ConfigError, match="agent.augment_shift"):
        DQNConfig(augment_shift=-1)
    flat = gym.spaces.Box(-1, 1, (4,), np.float32)
    from nets import MLPConfig

    with pytest.raises(ConfigError, match="agent.augment_shift"):  # not images
        DQNAgent(
            DQNConfig(augment_shift=4), MLPConfig(), flat, ACTIONS, total_steps=10, device=torch.device("cpu")
        )


# ------------------------------------------------------------ 10-step returns over life-loss terminals


def test_ten_step_returns_stop_at_a_life_loss_and_the_stack_goes_on() -> None:
    """One Atari-like game: a life is lost at t = 3 (a learner terminal, no reset: the frame stack goes on),
    the game goes on to t = 14. Rewards 1, 2, 4, ...; gamma 0.5."""
    h = w = 3
    buffer = FrameReplayBuffer(64, gym.spaces.Box(0, 255, (4, h, w), np.uint8), n_step=10, gamma=0.5)
    stack = np.zeros((1, 4, h, w), np.uint8)
    stack[0, -1] = 1
    for t in range(15):
        frame = np.full((1, 1, h, w), t + 2, np.uint8)
        next_stack = np.concatenate([stack[:, 1:], frame], axis=1)
        buffer.add(stack, next_stack, np.zeros(1), np.array([2.0**t]), np.array([t == 3]), np.zeros(1, bool))
        stack = next_stack
    batch = buffer.gather(np.array([0, 2, 3, 4]))
    # t=0: 1 + .5*2 + .25*4 + .125*8 = 4, stops at the life loss (terminal); t=3: 8 alone
    assert batch.rewards.tolist() == [4.0, 8.0, 8.0, 10 * 16.0]
    assert batch.terminated.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert batch.discounts.tolist()[3] == pytest.approx(0.5**10)
    # t=4 bootstraps from s_14, whose newest frame is t + 2 = 15... written at t = 13 (frame value 15)
    assert batch.next_obs[3, -1, 0, 0].item() == 15
    assert batch.obs[3, -1, 0, 0].item() == 5  # the stack did not restart after the life loss


# --------------------------------------------------------------------------- the protocol reaches the env


def test_atari100k_protocol_reaches_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    real = atari_module.AtariVectorEnv

    def capture(game: str, num_envs: int, **kwargs: Any) -> Any:
        made.append(kwargs)
        return real(game, num_envs, **kwargs)

    monkeypatch.setattr(atari_module, "AtariVectorEnv", capture)
    cfg = AtariConfig(game="Breakout", eval_protocol="atari100k")
    assert (cfg.eval_epsilon, cfg.eval_max_episode_frames) == (0.001, 108_000)
    train_env = make_atari(cfg, seed=0)
    eval_env = make_atari(cfg, seed=0, evaluation=True)
    assert train_env.report_life_loss and not eval_env.report_life_loss  # type: ignore[attr-defined]
    for kwargs in made:
        assert kwargs["repeat_action_probability"] == 0.0
        assert kwargs["noop_max"] == 30
        assert kwargs["max_num_frames_per_episode"] == 108_000
    train_env.close()
    eval_env.close()
    nature = AtariConfig(game="Breakout")
    assert (nature.eval_epsilon, nature.eval_max_episode_frames) == (0.05, 18_000)
    assert AtariConfig(game="pong", eval_protocol="atari100k", eval_epsilon=0.0).eval_epsilon == 0.0
    with pytest.raises(ConfigError, match="env.repeat_action_probability.*sticky"):
        AtariConfig(game="pong", eval_protocol="atari100k", repeat_action_probability=0.25)
    with pytest.raises(ConfigError, match="env.terminal_on_life_loss"):
        AtariConfig(game="pong", eval_protocol="atari100k", terminal_on_life_loss=False)


@pytest.mark.parametrize("env", [["env=Breakout"], ["env=atari", "env.game=ms_pacman"], ["env=Pong"]])
def test_the_preset_selects_the_whole_protocol(env: list[str]) -> None:
    (composed,) = compose_many([["agent=drq", *env, "run_dir=unused"]])
    cfg = to_typed(composed)
    agent, protocol = cfg.agent, cfg.env
    assert agent.name == "drq" and agent.double and agent.dueling and agent.n_step == 10
    assert (agent.train_freq, agent.gradient_steps, agent.learning_starts) == (1, 1, 1600)
    assert (agent.lr, agent.adam_eps, agent.buffer_size, agent.augment_shift) == (1e-4, 1.5e-4, 100_000, 4)
    assert agent.exploration_final_eps == 0.01
    assert agent.exploration_fraction * cfg.total_steps == 5000
    assert agent.target_update_interval == 1 and not agent.prioritized
    assert (cfg.total_steps, cfg.final_eval_episodes, cfg.eval_every) == (100_000, 100, 0)
    assert protocol.eval_protocol == "atari100k" and protocol.eval_epsilon == 0.001
    assert protocol.repeat_action_probability == 0.0 and protocol.terminal_on_life_loss


# ----------------------------------------------------------------------------------- the CLI, end to end


def test_preset_runs_from_the_command_line(cli: Any, tmp_path: Path) -> None:
    run = tmp_path / "drq"
    result = cli(
        "train.py",
        "agent=drq",
        "env=Breakout",
        "total_steps=240",
        "agent.learning_starts=200",
        "agent.buffer_size=1000",
        "final_eval_episodes=1",
        "env.eval_max_episode_frames=400",
        "logger=none",
        "device=cpu",
        f"run_dir={run}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent"] == "drq" and summary["total_steps"] == 240 and summary["updates"] == 41
    assert summary["eval_episodes"] == 1


def test_drqn_refuses_augmentation() -> None:
    from agents.drqn import DRQNAgent
    from nets import LSTMConfig

    with pytest.raises(ConfigError, match="agent.augment_shift.*sequences"):
        DRQNAgent(
            DQNConfig(augment_shift=4),
            LSTMConfig(),
            IMAGES,
            ACTIONS,
            total_steps=10,
            device=torch.device("cpu"),
        )
