"""DQN on Atari end to end: tuned configs, replay choice, the CLI, n_envs, overlap, amp/compile, video."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

import envs
from envs.atari import AtariConfig, make_atari
from rlcore.base.errors import ConfigError, RLCoreError
from rlcore.config import register_configs, to_typed
from rlcore.replay import ReplayBuffer, make_replay
from rlcore.replay.frames import FrameReplayBuffer
from rlcore.run import launch
from tests.conftest import build_agent

ROOT = Path(__file__).resolve().parents[1]
register_configs()

# A Breakout run small enough for a test: short buffer, early learning, evaluation games capped.
SMALL_ATARI = [
    "env=Breakout",
    "agent.buffer_size=2000",
    "agent.learning_starts=200",
    "agent.target_update_interval=100",
    "eval_every=0",
    "final_eval_episodes=1",
    "env.eval_max_episode_frames=1000",
    "logger=none",
    "device=cpu",
]


def typed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=["run_dir=unused", *overrides])
    return cfg, to_typed(cfg)


# ------------------------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("env", ["env=Breakout", "env=Pong", "env=atari env.game=ms_pacman"])
def test_atari_envs_get_the_atari_tuning(env):
    _, cfg = typed(*env.split())
    a = cfg.agent
    assert (a.lr, a.batch_size, a.buffer_size, a.learning_starts) == (1e-4, 32, 100_000, 100_000)
    assert (a.target_update_interval, a.train_freq, a.gradient_steps) == (1000, 4, 1)
    assert (a.exploration_fraction, a.exploration_final_eps, cfg.total_steps) == (0.1, 0.01, 10_000_000)
    assert cfg.overlap and cfg.channels_last


def test_command_line_beats_the_tuning_and_cartpole_keeps_its_own():
    _, cfg = typed("env=Breakout", "total_steps=600", "agent.buffer_size=2000", "agent.learning_starts=50")
    assert (cfg.total_steps, cfg.agent.buffer_size, cfg.agent.learning_starts) == (600, 2000, 50)
    _, cartpole = typed()
    assert cartpole.agent.train_freq == 256 and not cartpole.overlap


def test_make_replay_picks_the_frame_replay_for_atari():
    _, cfg = typed(*SMALL_ATARI)
    atari = envs.make_env(cfg.env, 0)
    replay = make_replay(2000, atari, seed=0, device=torch.device("cpu"))
    assert isinstance(replay, FrameReplayBuffer) and not replay.on_torch
    atari.close()
    _, cartpole_cfg = typed()
    cartpole = envs.make_env(cartpole_cfg.env, 0)
    assert type(make_replay(100, cartpole, seed=0, device=torch.device("cpu"))) is ReplayBuffer


def test_replay_on_cuda_is_refused_clearly_without_it():
    _, cfg = typed(*SMALL_ATARI, "replay.device=cuda")
    atari = envs.make_env(cfg.env, 0)
    match = "learner there too" if torch.cuda.is_available() else "no CUDA device"
    with pytest.raises(ConfigError, match=match):
        make_replay(2000, atari, seed=0, device=torch.device("cpu"), replay_device=cfg.replay.device)
    with pytest.raises(ConfigError, match="replay.device"):
        typed("replay.device=tpu")


# ----------------------------------------------------------------------------------------------- training


def test_breakout_trains_through_the_cli_then_evaluates(tmp_path):
    run_dir = tmp_path / "breakout"
    train = subprocess.run(
        [sys.executable, "train.py", *SMALL_ATARI, "total_steps=600", f"run_dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_steps"] == 600 and summary["updates"] == (600 - 200) // 4 + 1
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    with open(run_dir / "metrics.csv", newline="") as handle:
        returns = [
            float(r["rollout/episode_return"]) for r in csv.DictReader(handle) if r["rollout/episode_return"]
        ]
    assert returns and all(r == int(r) and r >= 0 for r in returns)  # raw game scores, not clipped sums
    evaluate = subprocess.run(
        [sys.executable, "evaluate.py", f"run={run_dir}", "episodes=1", "epsilon=0.05"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    result = json.loads((run_dir / "checkpoints" / "eval.json").read_text())
    assert result["episodes"] == 1 and result["trained_env_steps"] == 600


def checkpoint_of(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def test_two_envs_count_env_steps_with_overlap(tmp_path):
    """n_envs=2: ε, target syncs, train_freq and total_steps are counted in env steps (with overlap on)."""
    _, cfg = typed(
        *SMALL_ATARI,
        "env.n_envs=2",
        "total_steps=300",
        "agent.learning_starts=100",
        "agent.exploration_fraction=0.5",
        "overlap=true",
        "threads=1",
    )
    summary = launch(cfg, tmp_path, {"note": "test"})
    assert summary["total_steps"] == 300
    assert summary["updates"] == (300 - 100) // 4 + 1  # one update every 4 env steps = every 2 vector steps
    agent = checkpoint_of(tmp_path)["agent"]
    assert agent["env_steps"] == 300 and agent["target_syncs"] == 3  # every 100 env steps
    assert agent["epsilon"] == pytest.approx(0.01)  # fully decayed at 0.5 * 300 env steps


def test_overlap_matches_inline_updates_on_a_fixed_replay():
    """The background learner applies exactly the updates the inline one does, on the same batches."""
    from rlcore.training.learner import Learner, UpdateMetrics

    _, cfg = typed(*SMALL_ATARI)
    env = make_atari(cfg.env, 0)
    replay = make_replay(500, env, seed=0, device=torch.device("cpu"))
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(200):
        actions = rng.integers(0, 4, size=1)
        next_obs, rewards, terminated, truncated, info = env.step(actions)
        stored = next_obs.copy()
        if terminated[0] or truncated[0]:
            stored[0] = info["final_obs"][0]
        replay.add(obs, stored, actions, rewards, terminated, truncated)
        obs = next_obs
    batches = [replay.sample(32) for _ in range(6)]
    weights = {}
    for overlap in (False, True):
        torch.manual_seed(0)
        cfg.overlap = overlap
        agent = build_agent(cfg, env.single_observation_space, env.single_action_space, torch.device("cpu"))
        learner = Learner(agent, UpdateMetrics(), overlap=overlap)
        for i in range(0, 6, 2):
            learner.submit(iter(batches[i : i + 2]).__next__, 2)
            agent.act(obs, explore=False)  # acting while the round runs reads the actor copy
        learner.wait()
        learner.close()
        weights[overlap] = agent.online.state_dict()
        actor = agent.fast.actor.state_dict()
        for name, value in weights[overlap].items():
            torch.testing.assert_close(actor[name], value)  # published after the last round
    for name, value in weights[False].items():
        torch.testing.assert_close(weights[True][name], value, rtol=0, atol=0)


@pytest.mark.parametrize("option", ["amp=true", "channels_last=false"])
def test_amp_and_memory_formats_update_on_cpu(option):
    _, cfg = typed(*SMALL_ATARI, option)
    space = envs.make_env(cfg.env, 0)
    agent = build_agent(cfg, space.single_observation_space, space.single_action_space, torch.device("cpu"))
    from rlcore.replay import Batch

    seq = torch.randint(0, 256, (4, 5, 84, 84), dtype=torch.uint8)
    batch = Batch(seq[:, :-1], torch.zeros(4, dtype=torch.int64), torch.ones(4), seq[:, 1:], torch.zeros(4))
    metrics = agent.update(batch)
    assert torch.isfinite(metrics["loss"])
    assert agent.act(seq[:2, :-1].numpy(), explore=False).shape == (2,)


@pytest.mark.parametrize("native", [False, True])
def test_amp_on_a_cpu_without_bf16_kernels_says_so_at_the_start(native, monkeypatch, capsys, tmp_path):
    """On an AVX2-only CPU torch runs bf16 convolutions with its reference kernels, several times slower than
    fp32 (measured on a Zen 3 host: 0.8 s against 0.07 s per NatureCNN update): the run says so once."""
    from types import SimpleNamespace

    from rlcore.base import seeding
    from rlcore.training.context import RunContext

    monkeypatch.setattr(seeding, "native_bf16_on_cpu", lambda: native)
    for amp, device in ((True, "cpu"), (False, "cpu")):
        cfg = SimpleNamespace(threads=0, seed=0, device=device, amp=amp)
        context = RunContext(cfg, tmp_path, {}, {})  # type: ignore[arg-type]
        context.begin()
        context.end()
        err = capsys.readouterr().err
        warned = amp and not native
        assert ("amp=true, but this CPU has no oneDNN bf16 support" in err) == warned
        assert err.count("\n") == int(warned)
    assert seeding.slow_bf16_warning(True, torch.device("meta")) is None  # only the CPU's kernels are meant


@pytest.mark.slow
def test_compile_smoke_on_cpu():
    _, cfg = typed("compile=true")
    env = envs.make_env(cfg.env, 0)
    agent = build_agent(cfg, env.single_observation_space, env.single_action_space, torch.device("cpu"))
    obs, _ = env.reset(seed=0)
    from rlcore.replay import Batch

    o = torch.as_tensor(np.repeat(obs, 8, axis=0))
    batch = Batch(o, torch.zeros(8, dtype=torch.int64), torch.ones(8), o, torch.zeros(8))
    assert torch.isfinite(agent.update(batch)["loss"])
    assert agent.act(obs, explore=False).shape == (1,)


# ------------------------------------------------------------------------------------------------- video


def test_video_env_shows_the_agent_what_training_showed_it():
    """No no-ops (so both are deterministic): the filmed env's observations equal AtariVectorEnv's."""
    from rlcore.training.video import make_atari_video_env

    cfg = AtariConfig(game="breakout", noop_max=0)
    vec = make_atari(cfg, 0, evaluation=True)
    single, recorder, fps = make_atari_video_env(cfg)
    first, _ = vec.reset(seed=0)
    obs, _ = single.reset(seed=0)
    np.testing.assert_array_equal(first[0], np.asarray(obs))
    assert not np.asarray(obs)[:3].any()  # zero padding before the first frame
    for action in [1, 2, 3, 3, 2, 0, 0, 3] * 4:
        expected, *_ = vec.step(np.array([action]))
        obs, *_ = single.step(action)
        np.testing.assert_array_equal(expected[0], np.asarray(obs))
    assert fps == 60 and recorder.frames[-1].shape == (210, 160, 3)  # every RGB emulator frame
    assert len(recorder.frames) == 1 + 1 + 32 * cfg.frame_skip  # reset, FIRE, 4 frames per step
    vec.close()
    single.close()


class RandomAgent:
    """A stateless Actor (rlcore.base.protocols): random actions."""

    recurrent = False

    def __init__(self, n: int) -> None:
        self.rng = np.random.default_rng(0)
        self.n = n

    def act(self, obs, explore=True, epsilon=None, rng=None):
        return self.rng.integers(0, self.n, size=len(obs))

    def reset_state(self, starts):
        pass

    def swap_state(self, state=None):
        return None


def test_cartpole_video_is_a_playable_mp4(tmp_path):
    import imageio.v2 as imageio

    from rlcore.training.video import record_episode

    _, cfg = typed()
    path = record_episode(RandomAgent(2), cfg, tmp_path / "cartpole.mp4", seed=0)
    assert path.stat().st_size > 0
    reader = imageio.get_reader(path)
    assert reader.count_frames() > 5 and reader.get_data(0).shape[2] == 3


def test_video_of_a_dataset_env_is_refused(tmp_path):
    from rlcore.training.video import record_episode

    class Dataset:
        name = "MNIST"

    class Cfg:
        env = Dataset()

    with pytest.raises(RLCoreError, match="video is for control envs"):
        record_episode(RandomAgent(10), Cfg(), tmp_path / "x.mp4", seed=0)


def test_breakout_video_is_written(tmp_path):
    import imageio.v2 as imageio

    from rlcore.training.video import record_episode

    _, cfg = typed(*SMALL_ATARI)
    path = record_episode(RandomAgent(4), cfg, tmp_path / "breakout.mp4", seed=0, epsilon=1.0)
    frame = imageio.get_reader(path).get_data(10)
    assert frame.shape == (210, 160, 3) and frame.std() > 0
