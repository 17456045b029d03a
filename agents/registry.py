"""The one registry of agents: for each, its config schema, how it is built, which loop trains it, and what it
supports. The loops and the run orchestration ask this table (and the agents' typed protocols,
:mod:`rlcore.base.protocols`), never an agent's name or class.

Adding an agent (docs/architecture.md): write ``agents/<name>.py`` (the agent) with its config dataclass in
:mod:`agents.configs` (``name: str = "<name>"``), add one :class:`AgentSpec` and its builder below, and one
``configs/agent/<name>.yaml`` starting with ``defaults: [/schema/agent/<name>_schema@_here_, _self_]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agents.configs import (
    AutoencoderConfig,
    DBNConfig,
    DQNConfig,
    GANConfig,
    SparseCodingConfig,
    SupervisedConfig,
)
from nets.configs import is_recurrent_config
from rlcore.base.errors import ConfigError

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

    from agents.autoencoder import AutoencoderAgent
    from agents.dqn import DQNAgent
    from agents.drqn import DRQNAgent
    from agents.gan import GANAgent
    from agents.rbm import DBNAgent
    from agents.sparse_coding import SparseCodingAgent
    from agents.supervised import SupervisedAgent
    from rlcore.base.protocols import Actor, AdversarialAgent, LayerwisePretrainer, OffPolicyAgent

    def _the_agents_satisfy_their_loops_protocols(
        dqn: DQNAgent, drqn: DRQNAgent, supervised: SupervisedAgent, autoencoder: AutoencoderAgent
    ) -> tuple[OffPolicyAgent, OffPolicyAgent, Actor, Actor]:
        return dqn, drqn, supervised, autoencoder  # mypy checks the structural match (no base classes)

    def _the_gan_satisfies_its_loops_protocol(gan: GANAgent) -> tuple[AdversarialAgent, Actor]:
        return gan, gan

    def _the_layerwise_agents_satisfy_theirs(
        dbn: DBNAgent, sparse_coding: SparseCodingAgent
    ) -> tuple[LayerwisePretrainer, LayerwisePretrainer]:
        return dbn, sparse_coding


LoopName = Literal["off_policy", "supervised", "pretraining", "adversarial", "layerwise"]


@dataclass(frozen=True)
class Capabilities:
    """What an agent supports; the orchestration refuses a setting the agent cannot honour, with one line."""

    replay: bool = False  # learns from a replay buffer (checkpoint.replay, replay.device apply)
    resume: bool = False  # resume=<run_dir> continues a run exactly (docs/resume.md)
    recurrent_nets: bool = False  # accepts net=rnn|lstm|gru|jordan (as a recurrent learner)
    step_budget: bool = False  # trains for total_steps env steps (the epoch loops count agent.epochs instead)


@dataclass(frozen=True)
class BuildContext:
    """Everything an agent may be built from besides its own config: the net, the spaces and the run-wide switches."""

    net: Any  # the net group's config (a nets schema)
    observation_space: gym.Space
    action_space: gym.Space | None  # None for agents that do not act in an env (autoencoder pretraining)
    device: torch.device
    seed: int
    total_steps: int
    amp: bool = False
    compile: bool = False
    channels_last: bool = False
    overlap: bool = False  # the loop learns in a background thread: acting needs its own copy of the net

    @classmethod
    def for_run(
        cls, cfg: Any, observation_space: gym.Space, action_space: gym.Space | None, device: torch.device
    ) -> BuildContext:
        """From a run's typed config (``rlcore.schema.TrainConfig``: its net and run-wide switches)."""
        return cls(
            net=cfg.net,
            observation_space=observation_space,
            action_space=action_space,
            device=device,
            seed=cfg.seed,
            total_steps=cfg.total_steps,
            amp=cfg.amp,
            compile=cfg.compile,
            channels_last=cfg.channels_last,
            overlap=cfg.overlap,
        )


@dataclass(frozen=True)
class AgentSpec:
    name: str  # the schema is registered as ``<name>_schema``
    schema: type
    build: Callable[[Any, BuildContext], Any]  # (agent config, context) -> agent
    loop: LoopName  # which loop trains it (rlcore.run.LOOPS)
    capabilities: Capabilities


# The builders import their agent when called: this module (like agents.configs) imports no torch, so that
# composing and validating a config, `train.py --help` and a config error stay fast.


def build_dqn(cfg: DQNConfig, ctx: BuildContext) -> Any:
    """DQN, or DRQN when the net carries a hidden state (``agent=dqn|rainbow_lite net=lstm|gru|rnn|jordan``)."""
    from agents.dqn import DQNAgent
    from agents.drqn import DRQNAgent

    kind = DRQNAgent if is_recurrent_config(ctx.net) else DQNAgent
    return kind(
        cfg,
        ctx.net,
        ctx.observation_space,
        ctx.action_space,
        total_steps=ctx.total_steps,
        device=ctx.device,
        seed=ctx.seed,
        amp=ctx.amp,
        compile=ctx.compile,
        channels_last=ctx.channels_last,
        separate_actor=ctx.overlap,
    )


def build_supervised(cfg: SupervisedConfig, ctx: BuildContext) -> Any:
    from agents.supervised import SupervisedAgent

    return SupervisedAgent(
        cfg, ctx.net, ctx.observation_space, ctx.action_space, device=ctx.device, seed=ctx.seed
    )


def build_autoencoder(cfg: AutoencoderConfig, ctx: BuildContext) -> Any:
    """An autoencoder does not act: the action space is not used."""
    from agents.autoencoder import AutoencoderAgent

    return AutoencoderAgent(cfg, ctx.net, ctx.observation_space, device=ctx.device, seed=ctx.seed)


def build_gan(cfg: GANConfig, ctx: BuildContext) -> Any:
    """A GAN does not act: the action space only gives the number of classes of a conditional GAN."""
    from agents.gan import GANAgent

    return GANAgent(cfg, ctx.net, ctx.observation_space, ctx.action_space, device=ctx.device, seed=ctx.seed)


def build_dbn(cfg: DBNConfig, ctx: BuildContext) -> Any:
    """agent=dbn, and agent=rbm (a one-layer DBN); the net group is not used: the agent's hidden_sizes are the
    architecture, and the encoder it writes is net=mlp with those widths and sigmoid units."""
    from agents.rbm import DBNAgent

    return DBNAgent(cfg, ctx.observation_space, device=ctx.device, seed=ctx.seed)


def build_sparse_coding(cfg: SparseCodingConfig, ctx: BuildContext) -> Any:
    """The net group is not used: the encoder it writes is net=lista with agent.atoms and agent.lista_iterations."""
    from agents.sparse_coding import SparseCodingAgent

    return SparseCodingAgent(cfg, ctx.observation_space, device=ctx.device, seed=ctx.seed)


AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec(
        "dqn",
        DQNConfig,
        build_dqn,
        "off_policy",
        Capabilities(replay=True, resume=True, recurrent_nets=True, step_budget=True),
    ),
    AgentSpec("supervised", SupervisedConfig, build_supervised, "supervised", Capabilities()),
    AgentSpec("autoencoder", AutoencoderConfig, build_autoencoder, "pretraining", Capabilities()),
    AgentSpec("gan", GANConfig, build_gan, "adversarial", Capabilities()),
    AgentSpec("dbn", DBNConfig, build_dbn, "layerwise", Capabilities()),
    AgentSpec("sparse_coding", SparseCodingConfig, build_sparse_coding, "layerwise", Capabilities()),
)

SCHEMAS: dict[str, type] = {f"{spec.name}_schema": spec.schema for spec in AGENTS}


def agent_spec(agent_cfg: object) -> AgentSpec:
    """The registry entry of a typed agent config (``agent=rainbow_lite`` is a DQNConfig: DQN's entry)."""
    for spec in AGENTS:
        if type(agent_cfg) is spec.schema:
            return spec
    raise ConfigError(
        f"config key 'agent': {type(agent_cfg).__name__} is not a registered agent schema; "
        f"known: {', '.join(s.schema.__name__ for s in AGENTS)}"
    )


def make_agent(agent_cfg: object, context: BuildContext) -> Any:
    """Build the agent ``agent_cfg`` describes."""
    return agent_spec(agent_cfg).build(agent_cfg, context)
