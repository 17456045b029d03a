"""An mp4 of one evaluation episode: ``python evaluate.py run=<run_dir> video=true``.

Atari: a Gymnasium ``ALE/<Game>-v5`` env at ``frameskip=1`` renders every emulator frame (60 per second of
game), while the agent sees what it was trained on: Gymnasium's ``AtariPreprocessing`` (action repeat
``frame_skip`` with a max over the last two frames, ``screen``x``screen`` grayscale, INTER_AREA resize, up to
``noop_max`` no-ops at the start, then FIRE in games that need it), then ``FrameStackObservation`` padding
a fresh stack with zero frames, as ale-py's ``AtariVectorEnv`` in training does. Sticky actions, no-ops
and the frame cap follow ``env.eval_protocol``, as in :func:`envs.atari.make_atari`.

Classic control: the Gymnasium id with ``render_mode="rgb_array"`` (pygame, headless through SDL's dummy
video driver). Dataset envs have no screen to film.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, SupportsFloat, cast

import gymnasium as gym
import numpy as np

from rlcore.base.errors import RLCoreError

ATARI_FPS = 60  # one video frame per emulator frame: the game at its real speed


class RecordFrames(gym.Wrapper):
    """Keeps ``env.render()`` after the reset and after every step of the wrapped env."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        out = self.env.reset(**kwargs)
        self.frames.append(cast(np.ndarray, self.env.render()))  # rgb_array render mode
        return out

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        out = self.env.step(action)
        self.frames.append(cast(np.ndarray, self.env.render()))
        return out


class NoopFireReset(gym.Wrapper):
    """After a reset: 1 to ``noop_max`` no-op frames, then one FIRE frame in games that need FIRE to start.

    Single emulator frames on the raw env, in ale-py's ``AtariVectorEnv`` order (no-ops, then FIRE).
    """

    def __init__(self, env: gym.Env, noop_max: int) -> None:
        super().__init__(env)
        self.noop_max = noop_max

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        noops = int(self.np_random.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        meanings = self.env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]  # ALE's AtariEnv
        steps = [0] * noops + ([meanings.index("FIRE")] if "FIRE" in meanings else [])
        for action in steps:
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_atari_video_env(cfg: Any) -> tuple[gym.Env, RecordFrames, int]:
    """The single Atari env for filming: (agent-facing env, frame recorder, frames per second)."""
    import ale_py
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    from envs.atari import STICKY_REPEAT_PROBABILITY, eval_cap

    gym.register_envs(ale_py)
    sticky = cfg.eval_protocol == "sticky"
    game_id = "ALE/" + "".join(part.capitalize() for part in cfg.game.split("_")) + "-v5"
    base = gym.make(
        game_id,
        render_mode="rgb_array",
        frameskip=1,
        repeat_action_probability=STICKY_REPEAT_PROBABILITY if sticky else 0.0,
        full_action_space=cfg.full_action_space,
        max_num_frames_per_episode=eval_cap(cfg),
    )
    recorder = RecordFrames(base)
    env: gym.Env = AtariPreprocessing(
        NoopFireReset(recorder, noop_max=0 if sticky else cfg.noop_max),
        noop_max=0,
        frame_skip=cfg.frame_skip,
        screen_size=cfg.screen,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    env = FrameStackObservation(env, cfg.frame_stack, padding_type="zero")
    return env, recorder, ATARI_FPS


def make_classic_video_env(cfg: Any) -> tuple[gym.Env, RecordFrames, int]:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from envs.classic import make_classic_env

    env = make_classic_env(
        cfg, render_mode="rgb_array"
    )  # the agent sees what it was trained on (env.rescale_obs)
    recorder = RecordFrames(env)
    return recorder, recorder, int(env.metadata.get("render_fps", 30))


def record_episode(agent: Any, cfg: Any, out_path: Path | str, seed: int, epsilon: float = 0.0) -> Path:
    """Play one full episode with ``agent`` (ε-greedy with ``epsilon``) and write it to ``out_path`` (mp4)."""
    import imageio.v2 as imageio

    from envs import AtariConfig, ClassicControlConfig
    from rlcore.training.evaluation import fresh_episodes

    if isinstance(cfg.env, AtariConfig):
        env, recorder, fps = make_atari_video_env(cfg.env)
    elif isinstance(cfg.env, ClassicControlConfig):
        env, recorder, fps = make_classic_video_env(cfg.env)
    else:
        raise RLCoreError(
            f"video is for control envs (classic control, Atari); {cfg.env.name} is a dataset env with no "
            "screen to record: leave out video=true"
        )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        done = False
        with fresh_episodes(agent):  # a recurrent agent starts the filmed episode from a fresh state
            while not done:
                action = agent.act(np.asarray(obs)[None], explore=False, epsilon=epsilon)[0]
                obs, _, terminated, truncated, _ = env.step(int(action))
                done = terminated or truncated
        frames = recorder.frames
    finally:
        env.close()
    with imageio.get_writer(out_path, fps=fps, codec="libx264", macro_block_size=2, quality=7) as writer:
        for frame in frames:
            writer.append_data(frame)  # type: ignore[attr-defined]  # imageio's v2 writer
    return out_path
