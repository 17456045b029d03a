"""Agents: one module each, one entry each in :mod:`agents.registry` (schema, builder, loop, capabilities).

The names below load their module on first use (PEP 562): ``agents.registry`` and ``agents.configs`` (what
composing and validating a config needs) import no torch; the agent classes do, when a run builds one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.autoencoder import AutoencoderAgent
    from agents.configs import AutoencoderConfig, DQNConfig, SupervisedConfig
    from agents.dqn import DQNAgent
    from agents.drqn import DRQNAgent
    from agents.registry import AGENTS, SCHEMAS, AgentSpec, BuildContext, Capabilities, agent_spec, make_agent
    from agents.supervised import SupervisedAgent

_MODULES = {
    "agents.autoencoder": ("AutoencoderAgent",),
    "agents.configs": ("AutoencoderConfig", "DQNConfig", "SupervisedConfig"),
    "agents.dqn": ("DQNAgent",),
    "agents.drqn": ("DRQNAgent",),
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
_WHERE = {name: module for module, names in _MODULES.items() for name in names}
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
    "SCHEMAS",
    "SupervisedAgent",
    "SupervisedConfig",
    "agent_spec",
    "make_agent",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
