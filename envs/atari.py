"""Atari 2600 games as a Gymnasium vector env, built on ale-py's C++ ``AtariVectorEnv``.

The C++ env already does the DeepMind preprocessing of Mnih et al. 2015 ("Human-level control through deep
reinforcement learning"): up to ``noop_max`` random no-ops and FIRE on reset, action repeat with a max over
the last two frames, 84x84 grayscale (INTER_AREA) and a stack of the last ``frame_stack`` frames, where the
stack after a reset holds the first frame last and zeros before it. We add only what it lacks, in
:class:`AtariVecEnv`:

* raw game scores (``reward_clipping=False``): the training loop logs real returns and clips what it stores
  in the replay itself when ``env.clip_rewards`` is set (Mnih 2015 clip to sign(r) for learning only);
* episodes end only at game over (all lives), as Machado et al. 2018 ("Revisiting the Arcade Learning
  Environment") recommend; during training a lost life is reported as ``info["life_loss"]`` so the learner
  may treat it as a terminal (Mnih 2015) without cutting the logged episode. ALE's own ``life_loss_info``
  option is not used because it sets ``terminated`` on a lost life, which would end the logged episode;
* ``info["_final_obs"]`` next to ALE's ``info["final_obs"]``, as Gymnasium's vector envs write it.

Evaluation protocols (``env.eval_protocol``):

* ``nature``: Mnih 2015 evaluation: full games, up to 30 no-ops at the start, epsilon 0.05 (read by the
  evaluator from ``env.eval_epsilon``), at most 18,000 frames (5 minutes at 60 Hz), no sticky actions;
* ``sticky``: Machado 2018: sticky actions with repeat probability 0.25 and no no-op starts (the sticky
  actions are the source of stochasticity), full games, the same 18,000-frame cap; ``full_action_space``
  as configured;
* ``atari100k``: the Atari 100k benchmark (Kaiser et al. 2019) as DrQ(ε) ran it (Agarwal et al. 2021; Dopamine's
  ``labs/atari_100k/configs/DrQ_eps.gin``): no sticky actions in training or evaluation (refused if
  ``env.repeat_action_probability`` is set), a lost life terminal for learning only (required), episodes
  capped at 108,000 frames (Dopamine's 27,000 agent steps) in training and evaluation, and evaluation with
  ε = 0.001. Up to 30 no-op starts (``env.noop_max``) as SimPLe and SPR used; ``agent=drq`` also sets 100,000
  training steps and a final evaluation over 100 episodes (configs/tuned/drq_atari.yaml, docs/atari100k.md).

``env.eval_epsilon`` and ``env.eval_max_episode_frames`` default to the protocol's values (null); a number
overrides them (e.g. a lower cap for quick checks).

Each evaluation builds a fresh env (``make_env(..., evaluation=True)``), so it never resumes a game a
previous evaluation left half played.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import ale_py  # noqa: F401  (registers the ALE/... Gymnasium ids and ships the ROMs)
import gymnasium as gym
import numpy as np
from ale_py import roms
from ale_py.vector_env import AtariVectorEnv
from gymnasium.vector import AutoresetMode, VectorWrapper
from omegaconf import MISSING

from rlcore.base.errors import ConfigError
from rlcore.base.validation import require, require_choice

EVAL_PROTOCOLS = ("nature", "sticky", "atari100k")
EVAL_MAX_EPISODE_FRAMES = 18_000  # 5 minutes at 60 frames per second (Mnih 2015 evaluation)
# per protocol: (evaluation ε, evaluation episode cap in frames)
PROTOCOL_EVAL = {
    "nature": (0.05, EVAL_MAX_EPISODE_FRAMES),  # Mnih 2015
    "sticky": (0.05, EVAL_MAX_EPISODE_FRAMES),
    "atari100k": (0.001, 108_000),  # DrQ(ε): epsilon_eval 0.001, 27,000 agent steps x 4 frames
}
STICKY_REPEAT_PROBABILITY = 0.25  # Machado 2018


def ale_games() -> list[str]:
    """The ROM names ale-py ships, e.g. ``breakout``, ``space_invaders``."""
    return sorted(roms.get_all_rom_ids())


def normalize_game(game: str) -> str:
    """Map ``Breakout``, ``SpaceInvaders``, ``space_invaders`` or ``ALE/SpaceInvaders-v5`` to the ROM name."""
    name = game.strip()
    name = re.sub(r"^ALE/", "", name)
    name = re.sub(r"(NoFrameskip)?-v\d+$", "", name)
    key = name.replace("_", "").replace("-", "").lower()
    for rom in ale_games():
        if rom.replace("_", "") == key:
            return rom
    guesses = difflib.get_close_matches(name.lower(), ale_games(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(guesses)}?" if guesses else ""
    raise ConfigError(
        f"config key 'env.game': unknown Atari game {game!r}.{hint} Valid ALE games: {', '.join(ale_games())}"
    )


@dataclass
class AtariConfig:
    """One Atari game with DeepMind preprocessing; the defaults are Mnih 2015's training setting."""

    # ALE ROM name; CamelCase (Breakout, SpaceInvaders) is accepted. No default: a YAML `game: ???` merged
    # over a default would silently keep the default game.
    game: str = MISSING  # first, so that a missing game is the error reported, not `name: ${.game}`
    name: str = ""  # short name used in run directories (empty: the game's name)
    n_envs: int = 1
    frame_skip: int = 4  # action repeat; the observation is the max over the last two frames
    frame_stack: int = 4  # frames per observation (1 for recurrent nets)
    noop_max: int = 30  # up to this many no-ops at the start of every game
    screen: int = 84  # observation height and width
    terminal_on_life_loss: bool = True  # report info["life_loss"] in training (never in evaluation)
    clip_rewards: bool = True  # store sign(reward) in the replay; logged returns stay raw
    max_episode_frames: int = 108_000  # training episode cap in emulator frames (30 minutes)
    repeat_action_probability: float = 0.0  # sticky actions during training (Machado 2018 use 0.25)
    full_action_space: bool = False  # all 18 actions instead of the game's minimal set
    eval_protocol: str = "nature"  # nature (Mnih 2015), sticky (Machado 2018) or atari100k, see the docstring
    eval_epsilon: float | None = None  # ε-greedy in evaluation; null: the protocol's (0.05; atari100k 0.001)
    num_threads: int = 0  # C++ worker threads (0: ale-py's default)
    # evaluation game cap in frames; null: the protocol's (18,000; atari100k 108,000). Lower it for quick checks
    eval_max_episode_frames: int | None = None

    def __post_init__(self) -> None:
        require(
            isinstance(self.game, str) and self.game not in ("", MISSING),
            "env.game",
            "no game chosen; pass an ALE game, e.g. env.game=breakout",
        )
        self.game = normalize_game(self.game)
        self.name = self.name or self.game
        require(self.n_envs > 0, "env.n_envs", f"must be > 0 (got {self.n_envs})")
        require(self.frame_skip > 0, "env.frame_skip", f"must be > 0 (got {self.frame_skip})")
        require(self.frame_stack > 0, "env.frame_stack", f"must be > 0 (got {self.frame_stack})")
        require(self.noop_max >= 0, "env.noop_max", f"must be >= 0 (got {self.noop_max})")
        require(self.screen > 0, "env.screen", f"must be > 0 (got {self.screen})")
        require(
            self.max_episode_frames > 0,
            "env.max_episode_frames",
            f"must be > 0 (got {self.max_episode_frames})",
        )
        require(
            0.0 <= self.repeat_action_probability < 1.0,
            "env.repeat_action_probability",
            f"must be in [0, 1) (got {self.repeat_action_probability})",
        )
        require_choice(self.eval_protocol, "env.eval_protocol", EVAL_PROTOCOLS)
        if self.eval_protocol == "atari100k":
            require(
                self.repeat_action_probability == 0.0,
                "env.repeat_action_probability",
                f"must be 0 with env.eval_protocol=atari100k (the Atari 100k benchmark has no sticky actions; "
                f"got {self.repeat_action_probability})",
            )
            require(
                self.terminal_on_life_loss,
                "env.terminal_on_life_loss",
                "must be true with env.eval_protocol=atari100k (a lost life is terminal for learning, as in "
                "DrQ(ε) and SPR); use env.eval_protocol=nature to learn across lives",
            )
        default_epsilon, default_cap = PROTOCOL_EVAL[self.eval_protocol]
        if self.eval_epsilon is None:
            self.eval_epsilon = default_epsilon
        if self.eval_max_episode_frames is None:
            self.eval_max_episode_frames = default_cap
        require(
            0.0 <= self.eval_epsilon <= 1.0,
            "env.eval_epsilon",
            f"must be in [0, 1] (got {self.eval_epsilon})",
        )
        require(
            self.eval_max_episode_frames > 0,
            "env.eval_max_episode_frames",
            f"must be > 0 (got {self.eval_max_episode_frames})",
        )
        require(self.num_threads >= 0, "env.num_threads", f"must be >= 0 (got {self.num_threads})")


class AtariVecEnv(VectorWrapper):
    """Thin adapter over ``AtariVectorEnv`` (same-step autoreset, raw rewards, no episodic life).

    Adds ``info["life_loss"]`` (bool per env, training only): a life was lost on this step and the game goes
    on. On a step that ends the episode it is False (``terminated``/``truncated`` already say so); a life lost
    on the very step a time limit truncates the game is not reported, since ALE has already reset that env.
    Rewards come back as float32 game scores, ``info["_final_obs"]`` marks the envs whose ``final_obs`` is
    real, and the first ``reset()`` without a seed uses the seed the env was made with.
    """

    def __init__(self, env: AtariVectorEnv, *, seed: int, life_loss: bool) -> None:
        super().__init__(env)
        self.report_life_loss = life_loss
        self._first_seed: int | None = seed
        self._lives = np.zeros(env.num_envs, dtype=np.int32)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None and self._first_seed is not None:
            seed = self._first_seed
        seeds = np.asarray(seed, dtype=np.int64) if isinstance(seed, list) else seed
        self._first_seed = None
        obs, info = self.env.reset(seed=seeds, options=options)  # type: ignore[arg-type]  # ale-py takes one seed per env
        self._lives = np.array(info["lives"], dtype=np.int32)
        return obs, info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, rewards, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int64))
        done = terminated | truncated
        lives = np.asarray(info["lives"], dtype=np.int32)
        if self.report_life_loss:
            # ALE has already reset the finished envs, so their `lives` is the new game's count.
            info["life_loss"] = (lives < self._lives) & ~done
        self._lives = lives.copy()
        if "final_obs" in info:
            info["_final_obs"] = done
        return obs, rewards.astype(np.float32), terminated, truncated, info


def eval_cap(cfg: AtariConfig) -> int:
    """The evaluation episode cap in frames (``env.eval_max_episode_frames``, else the protocol's)."""
    return cfg.eval_max_episode_frames or PROTOCOL_EVAL[cfg.eval_protocol][1]


def make_atari(
    cfg: AtariConfig, seed: int, *, evaluation: bool = False, n_envs: int | None = None
) -> gym.vector.VectorEnv:
    """Build ``cfg.game`` with the training or the evaluation protocol (see the module docstring)."""
    count = n_envs if n_envs is not None else (1 if evaluation else cfg.n_envs)
    if evaluation and cfg.eval_protocol == "sticky":
        repeat, noop_max, full_actions = STICKY_REPEAT_PROBABILITY, 0, cfg.full_action_space
    else:
        repeat, noop_max, full_actions = (
            (0.0 if evaluation else cfg.repeat_action_probability),
            cfg.noop_max,
            cfg.full_action_space,
        )
    env = AtariVectorEnv(
        cfg.game,
        count,
        num_threads=cfg.num_threads,
        max_num_frames_per_episode=eval_cap(cfg) if evaluation else cfg.max_episode_frames,
        repeat_action_probability=repeat,
        full_action_space=full_actions,
        autoreset_mode=AutoresetMode.SAME_STEP,
        img_height=cfg.screen,
        img_width=cfg.screen,
        grayscale=True,
        stack_num=cfg.frame_stack,
        frameskip=cfg.frame_skip,
        maxpool=True,
        noop_max=noop_max,
        episodic_life=False,
        life_loss_info=False,
        reward_clipping=False,
        use_fire_reset=True,
    )
    wrapped = AtariVecEnv(env, seed=seed, life_loss=cfg.terminal_on_life_loss and not evaluation)
    # observations are stacks of consecutive frames: the replay stores each frame once (rlcore.replay.factory)
    wrapped.metadata = {**wrapped.metadata, "stacked_frames": True}
    wrapped.action_space.seed(seed)
    return wrapped
