"""benchmarks/atari100k_vs_sb3.py: SB3's evaluation follows the protocol (ε = 0.001, whole games, the frame cap),
and a smoke run of both sides writes the comparison (slow: CI's slow step)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import load_benchmark

bench = load_benchmark("atari100k_vs_sb3")


class GreedyZero:
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        assert deterministic
        return np.array([0]), None


class Game:
    """A one-env VecEnv stand-in: +1 per step, the game ends after ``length`` steps (Monitor's info then)."""

    def __init__(self, length: int) -> None:
        self.length, self.t, self.resets = length, 0, 0
        self.action_space = gym.spaces.Discrete(4)
        self.actions: list[int] = []

    def reset(self) -> np.ndarray:
        self.t, self.resets = 0, self.resets + 1
        return np.zeros((1, 4, 84, 84), np.uint8)

    def step(self, action: np.ndarray) -> tuple:
        self.actions.append(int(action[0]))
        self.t += 1
        done = self.t >= self.length
        info = {"episode": {"r": float(self.t)}} if done else {}
        if done:
            self.t = 0
        return np.zeros((1, 4, 84, 84), np.uint8), np.array([1.0]), np.array([done]), [info]


def test_sb3_evaluation_plays_whole_games_at_epsilon_0_001() -> None:
    game = Game(length=5_000)
    scores = bench.sb3_evaluate(GreedyZero(), game, episodes=2, max_frames=108_000, seed=0)
    assert scores == [5000.0, 5000.0] and game.resets == 1
    random = sum(a != 0 for a in game.actions)
    assert 0 < random < 30  # about 10 000 x 0.001 x 3/4 of the draws differ from the greedy action


def test_sb3_evaluation_cuts_a_game_at_the_frame_cap() -> None:
    game = Game(length=10**9)
    scores = bench.sb3_evaluate(GreedyZero(), game, episodes=3, max_frames=400, seed=0)
    assert scores == [100.0, 100.0, 100.0]  # 400 frames = 100 agent steps; a fresh game after each cut
    assert game.resets == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "--steps must be a positive number"),
        (["--eval-episodes", "-1"], "--eval-episodes must be a positive number"),
        (["--game", "Breakuot"], "invalid choice: 'Breakuot'"),
        (["--game", "MsPacman"], "invalid choice: 'MsPacman'"),  # anchors, but no env=MsPacman option
    ],
)
def test_bad_arguments_get_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_both_sides_run_and_are_compared(tmp_path: Path) -> None:
    out = tmp_path / "vs.json"
    code = bench.main(
        ["--steps", "1700", "--eval-episodes", "1", "--eval-max-frames", "2000", "--out", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for side in ("ours", "sb3"):
        assert result[side]["eval_episodes"] == 1 and result[side]["train_sps"] > 0
    assert (
        result["sb3"]["settings"]["n_steps"] == 10
        and result["sb3"]["settings"]["target_update_interval"] == 1
    )
    assert result["ours"]["command"].startswith("python train.py agent=drq env=Breakout seed=0")
