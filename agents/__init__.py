"""Agents: one file each, a small interface (act / update / state_dict / load_state_dict)."""

from __future__ import annotations

import gymnasium as gym
import torch

from agents.autoencoder import AutoencoderAgent, AutoencoderConfig
from agents.dqn import DQNAgent, DQNConfig
from agents.supervised import SupervisedAgent, SupervisedConfig

SCHEMAS: dict[str, type] = {
    "dqn_schema": DQNConfig,
    "supervised_schema": SupervisedConfig,
    "autoencoder_schema": AutoencoderConfig,
}


def make_agent(
    cfg: object, observation_space: gym.Space, action_space: gym.Space, device: torch.device
) -> DQNAgent | SupervisedAgent | AutoencoderAgent:
    """Build the agent that ``cfg.agent`` describes (``cfg`` is the typed top-level TrainConfig)."""
    agent_cfg = cfg.agent
    if isinstance(agent_cfg, DQNConfig):
        return DQNAgent(
            agent_cfg,
            cfg.net,
            observation_space,
            action_space,
            total_steps=cfg.total_steps,
            device=device,
            seed=cfg.seed,
            amp=cfg.amp,
            compile=cfg.compile,
            channels_last=cfg.channels_last,
            separate_actor=cfg.overlap,
        )
    if isinstance(agent_cfg, SupervisedConfig):
        return SupervisedAgent(agent_cfg, cfg.net, observation_space, action_space, device=device, seed=cfg.seed)
    if isinstance(agent_cfg, AutoencoderConfig):  # action_space unused: an autoencoder does not act
        return AutoencoderAgent(agent_cfg, cfg.net, observation_space, device=device, seed=cfg.seed)
    raise TypeError(f"no agent for config {type(agent_cfg).__name__}")


__all__ = [
    "SCHEMAS",
    "AutoencoderAgent",
    "AutoencoderConfig",
    "DQNAgent",
    "DQNConfig",
    "SupervisedAgent",
    "SupervisedConfig",
    "make_agent",
]
