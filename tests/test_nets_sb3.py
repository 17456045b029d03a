"""Our extractors inside Stable-Baselines3 policies, with pixels scaled exactly once."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO

from nets import MLP, LeNet5
from nets.configs import NatureCNNConfig
from nets.sb3 import SB3Extractor, sb3_policy_kwargs

torch.set_num_threads(1)


class TinyImageEnv(gym.Env):
    """Grey 28x28 frames whose brightness tells which of two actions pays; 10-step episodes."""

    observation_space = gym.spaces.Box(0, 255, (1, 28, 28), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def _observe(self) -> np.ndarray:
        self.bright = bool(self.np_random.integers(2))
        return np.full((1, 28, 28), 200 if self.bright else 30, np.uint8)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = float(int(action) == int(self.bright))
        self.t += 1
        return self._observe(), reward, False, self.t >= 10, {}


def test_dqn_on_cartpole_with_our_mlp() -> None:
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        policy_kwargs={
            "features_extractor_class": SB3Extractor,
            "features_extractor_kwargs": {"net": "mlp", "hidden_sizes": [32]},
            "net_arch": [],
        },
        learning_starts=50,
        buffer_size=1000,
        batch_size=32,
        train_freq=4,
        seed=0,
        device="cpu",
    )
    assert isinstance(model.q_net.features_extractor.net, MLP)
    model.learn(300)
    assert model.num_timesteps >= 300


def test_ppo_on_cartpole_with_net_class() -> None:
    model = PPO(
        "MlpPolicy",
        "CartPole-v1",
        policy_kwargs={
            "features_extractor_class": SB3Extractor,
            "features_extractor_kwargs": {"net": MLP, "hidden_sizes": [16]},
        },
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
    )
    model.learn(128)
    assert model.policy.features_extractor.features_dim == 16


@pytest.mark.parametrize("normalize_images", [False, True])
def test_dqn_on_tiny_image_env_with_our_cnn(normalize_images: bool) -> None:
    model = DQN(
        "CnnPolicy",
        TinyImageEnv(),
        policy_kwargs=sb3_policy_kwargs("lenet5", normalize_images=normalize_images, activation="relu"),
        learning_starts=100,
        buffer_size=300,
        batch_size=16,
        train_freq=4,
        target_update_interval=100,
        seed=0,
        device="cpu",
    )
    model.learn(300)
    extractor = model.q_net.features_extractor
    assert isinstance(extractor.net, LeNet5)
    # what SB3 feeds the extractor gives the same features as our net on the raw uint8 pixels
    obs = np.stack([TinyImageEnv.observation_space.sample() for _ in range(3)])
    sb3_input, _ = model.q_net.obs_to_tensor(obs)
    from stable_baselines3.common.preprocessing import preprocess_obs

    seen = preprocess_obs(sb3_input, model.observation_space, normalize_images=model.q_net.normalize_images)
    assert seen.is_floating_point()
    with torch.no_grad():
        torch.testing.assert_close(extractor(seen), extractor.net(torch.as_tensor(obs))[0])


@pytest.mark.parametrize("normalize_images", [False, True])
def test_pixels_are_scaled_exactly_once(normalize_images: bool) -> None:
    space = gym.spaces.Box(0, 255, (3, 36, 36), np.uint8)
    extractor = SB3Extractor(space, NatureCNNConfig(features_dim=8), normalize_images=normalize_images)
    pixels = torch.randint(0, 256, (2, 3, 36, 36), dtype=torch.uint8)
    sb3_view = pixels.float() / 255.0 if normalize_images else pixels.float()
    with torch.no_grad():
        torch.testing.assert_close(extractor(sb3_view), extractor.net(pixels)[0])


def test_recurrent_nets_and_bad_names_are_rejected() -> None:
    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(ValueError, match="stateless"):
        SB3Extractor(space, "lstm")
    with pytest.raises(ValueError, match="unknown net"):
        SB3Extractor(space, "resnet")
