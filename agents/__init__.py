"""Agents: one module each, one entry each in :mod:`agents.registry` (schema, builder, loop, capabilities).

The names below load their module on first use (PEP 562): ``agents.registry`` and ``agents.configs`` (what
composing and validating a config needs) import no torch; the agent classes do, when a run builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlcore.base.lazy import lazy_exports

if TYPE_CHECKING:
    from agents.autoencoder import AutoencoderAgent
    from agents.configs import AutoencoderConfig, DQNConfig, GANConfig, SupervisedConfig
    from agents.dqn import DQNAgent
    from agents.drqn import DRQNAgent
    from agents.gan import GANAgent
    from agents.registry import AGENTS, SCHEMAS, AgentSpec, BuildContext, Capabilities, agent_spec, make_agent
    from agents.supervised import SupervisedAgent

_MODULES = {
    "agents.autoencoder": ("AutoencoderAgent",),
    "agents.configs": ("AutoencoderConfig", "DQNConfig", "GANConfig", "SupervisedConfig"),
    "agents.dqn": ("DQNAgent",),
    "agents.drqn": ("DRQNAgent",),
    "agents.gan": ("GANAgent",),
    "agents.registry": (
        "AGENTS",
        "SCHEMAS",
        "AgentSpec",
        "BuildContext",
        "Capabilities",
        "agent_spec",
        "make_agent",
    ),
    "agents.supervised": ("SupervisedAgent",),
}
__all__ = [
    "AGENTS",
    "AgentSpec",
    "AutoencoderAgent",
    "AutoencoderConfig",
    "BuildContext",
    "Capabilities",
    "DQNAgent",
    "DQNConfig",
    "DRQNAgent",
    "GANAgent",
    "GANConfig",
    "SCHEMAS",
    "SupervisedAgent",
    "SupervisedConfig",
    "agent_spec",
    "make_agent",
]


__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
