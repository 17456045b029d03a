"""Agents: one module each, one entry each in :mod:`agents.registry` (schema, builder, loop, capabilities)."""

from __future__ import annotations

from agents.autoencoder import AutoencoderAgent, AutoencoderConfig
from agents.dqn import DQNAgent, DQNConfig
from agents.registry import AGENTS, SCHEMAS, AgentSpec, BuildContext, Capabilities, agent_spec, make_agent
from agents.supervised import SupervisedAgent, SupervisedConfig

__all__ = [
    "AGENTS",
    "SCHEMAS",
    "AgentSpec",
    "AutoencoderAgent",
    "AutoencoderConfig",
    "BuildContext",
    "Capabilities",
    "DQNAgent",
    "DQNConfig",
    "SupervisedAgent",
    "SupervisedConfig",
    "agent_spec",
    "make_agent",
]
