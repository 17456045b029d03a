"""Deep Q-Network (Mnih et al. 2015) with experience replay, a target network and switchable extensions.

The extensions combine freely (``agent=rainbow_lite`` turns on all four, docs/dqn_family.md):
Double DQN (``agent.double``, van Hasselt et al. 2016), a dueling head (``agent.dueling``, Wang et al. 2016),
n-step returns (``agent.n_step``, built by the replay at sample time) and proportional prioritized replay
(``agent.prioritized``, Schaul et al. 2016: the replay samples and weights, ``update`` returns the TD errors
from which the loop sets new priorities). With a recurrent net (``net=lstm|gru|rnn``) the registry
builds DRQN instead (``agents/drqn.py``: the same config and math on replayed sequences).

Read top to bottom: the config schema, then the agent: act (ε-greedy), advance (ε, learning rate, target
sync), update (TD target, loss, one optimizer step). The pure math (TD targets and losses, unit-tested on
hand-computed numbers) is :mod:`agents.q_learning`; the Q-network, dueling or not, is
:mod:`nets.q_network`; the speed machinery (memory layout, bf16, compile, flat gradients, the functional
Adam step, the actor copy for overlap) is behind :class:`agents.fastpath.FastPath`. The loop that feeds the
agent (env stepping, replay, when to update) is :mod:`rlcore.training.offpolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import nets
from agents.fastpath import FastPath
from agents.q_learning import greedy_next_values, q_loss, td_target
from agents.schedules import linear_schedule
from nets.q_network import QNetwork
from rlcore.base.batches import Batch
from rlcore.base.errors import ConfigError
from rlcore.base.validation import require, require_choice


@dataclass
class DQNConfig:
    """DQN hyperparameters; defaults follow Stable-Baselines3's DQN, per-env tunings live in configs/tuned/."""

    name: str = "dqn"
    lr: float = 1e-4
    gamma: float = 0.99
    buffer_size: int = 1_000_000
    batch_size: int = 32
    learning_starts: int = 100  # env steps of pure exploration before the first update
    train_freq: int = 4  # env steps between rounds of updates
    gradient_steps: int = 1  # updates per round
    target_update_interval: int = 10_000  # env steps between target syncs
    tau: float = 1.0  # 1 = hard copy; < 1 = Polyak averaging at each sync
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    exploration_fraction: float = 0.1  # fraction of total_steps over which ε decays linearly
    max_grad_norm: float = 10.0
    double: bool = False  # Double DQN target (van Hasselt et al. 2016)
    adam_eps: float = 1e-8
    lr_final: float | None = None  # set: lr decays linearly to this over total_steps (stabilises late training)
    loss: str = "huber"  # huber (smooth L1, as Mnih et al. 2015) or mse
    dueling: bool = False  # value + mean-subtracted advantage streams (Wang et al. 2016)
    n_step: int = 1  # n-step returns, built from the replay's one-step transitions (Hessel et al. 2018: 3)
    prioritized: bool = False  # proportional prioritized replay (Schaul et al. 2016)
    per_alpha: float = 0.6  # priority exponent: 0 = uniform sampling (Schaul et al.: 0.6; Rainbow: 0.5)
    per_beta0: float = 0.4  # importance-sampling exponent at the start, annealed linearly to 1 over total_steps
    per_eps: float = 1e-6  # added to |TD error| so no transition's priority is 0
    # DRQN: used only when the net is recurrent (feed-forward nets ignore them; docs/drqn.md)
    sequence_length: int = 20  # steps per replayed sequence that the loss uses
    burn_in: int = 10  # steps before them that only warm up the hidden state (R2D2; no gradient)
    stored_state: bool = False  # start each sequence from the actor's stored hidden state, not zeros (R2D2)

    def __post_init__(self) -> None:
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(0.0 <= self.gamma <= 1.0, "agent.gamma", f"must be in [0, 1] (got {self.gamma})")
        require(self.buffer_size > 0, "agent.buffer_size", f"must be > 0 (got {self.buffer_size})")
        require(self.batch_size > 0, "agent.batch_size", f"must be > 0 (got {self.batch_size})")
        require(
            self.batch_size <= self.buffer_size,
            "agent.batch_size",
            f"{self.batch_size} is larger than agent.buffer_size={self.buffer_size}; lower the batch or grow the buffer",
        )
        require(self.learning_starts >= 0, "agent.learning_starts", f"must be >= 0 (got {self.learning_starts})")
        require(self.train_freq > 0, "agent.train_freq", f"must be > 0 (got {self.train_freq})")
        require(self.gradient_steps > 0, "agent.gradient_steps", f"must be > 0 (got {self.gradient_steps})")
        require(
            self.target_update_interval > 0,
            "agent.target_update_interval",
            f"must be > 0 (got {self.target_update_interval})",
        )
        require(0.0 < self.tau <= 1.0, "agent.tau", f"must be in (0, 1] (got {self.tau})")
        for key in ("exploration_initial_eps", "exploration_final_eps", "exploration_fraction"):
            value = getattr(self, key)
            require(0.0 <= value <= 1.0, f"agent.{key}", f"must be in [0, 1] (got {value})")
        require(self.max_grad_norm > 0, "agent.max_grad_norm", f"must be > 0 (got {self.max_grad_norm})")
        require(self.adam_eps > 0, "agent.adam_eps", f"must be > 0 (got {self.adam_eps})")
        require(
            self.lr_final is None or 0.0 <= self.lr_final <= self.lr,
            "agent.lr_final",
            f"must be null or in [0, agent.lr={self.lr}] (got {self.lr_final})",
        )
        require_choice(self.loss, "agent.loss", ["huber", "mse"])
        require(1 <= self.n_step <= 100, "agent.n_step", f"must be in [1, 100] (got {self.n_step})")
        require(0.0 <= self.per_alpha <= 1.0, "agent.per_alpha", f"must be in [0, 1] (got {self.per_alpha})")
        require(0.0 <= self.per_beta0 <= 1.0, "agent.per_beta0", f"must be in [0, 1] (got {self.per_beta0})")
        require(self.per_eps > 0, "agent.per_eps", f"must be > 0 (got {self.per_eps})")
        require(self.sequence_length > 0, "agent.sequence_length", f"must be > 0 (got {self.sequence_length})")
        require(self.burn_in >= 0, "agent.burn_in", f"must be >= 0 (got {self.burn_in})")

class DQNAgent:
    """ε-greedy acting, one gradient step per ``update``, target sync and ε schedule in ``advance``."""

    recurrent = False  # a DRQNAgent carries a hidden state per env; this agent is stateless
    state_size = 0  # floats per env of a stored hidden state (none)

    def __init__(
        self,
        cfg: DQNConfig,
        net_cfg: object,
        observation_space: gym.Space,
        action_space: gym.Space | None,
        *,
        total_steps: int,
        device: torch.device,
        seed: int = 0,
        amp: bool = False,
        compile: bool = False,
        channels_last: bool = False,
        separate_actor: bool = False,
    ) -> None:
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"DQN needs a Discrete action space, got {action_space}; pick an env with discrete actions"
            )
        self.cfg = cfg
        self.device = device
        self.n_actions = int(action_space.n)
        self.total_steps = total_steps
        online = QNetwork(nets.build_extractor(net_cfg, observation_space), self.n_actions, cfg.dueling).to(device)
        online.extractor.train(not getattr(net_cfg, "freeze", False))  # frozen: fixed BN stats, no dropout
        self.fast = FastPath(online, device=device, lr=cfg.lr, adam_eps=cfg.adam_eps, amp=amp, compile=compile,
                             channels_last=channels_last, separate_actor=separate_actor)
        self.online, self.target, self.optimizer = self.fast.online, self.fast.target, self.fast.optimizer
        # One target pass per round (update_round) needs a target whose output for a sample does not depend on
        # the rest of the batch or on chance: no batch norm in batch-statistics mode, no active dropout.
        self.round_targets = not any(
            m.training for m in self.target.modules()
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd))
        )
        self.rng = np.random.default_rng(seed)
        self.env_steps = 0
        self.epsilon = cfg.exploration_initial_eps
        self.target_syncs = 0

    # -- acting ------------------------------------------------------------------------------------------
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(obs, a)."""
        fast = self.fast
        with torch.inference_mode(), fast.autocast():
            q, _ = fast.forward_actor(fast.layout(torch.as_tensor(obs, device=self.device)))
        return q.argmax(dim=1).cpu().numpy()

    def act(self, obs: np.ndarray, explore: bool = True, epsilon: float | None = None) -> np.ndarray:
        """Actions for a batch of observations: ε-greedy with the scheduled ε when exploring.

        ``epsilon`` overrides the schedule (e.g. ε = 0.05 in the Nature Atari evaluation protocol).
        """
        eps = (self.epsilon if explore else 0.0) if epsilon is None else epsilon
        n = len(obs)
        random_mask = self.rng.random(n) < eps
        actions = self.rng.integers(0, self.n_actions, size=n)
        if not random_mask.all():  # skipped when every env explores
            actions = np.where(random_mask, actions, self.greedy_actions(obs))
        return actions

    # Stateless: the hooks through which a recurrent agent (DRQNAgent) carries its per-env state do nothing.
    def reset_state(self, starts: np.ndarray) -> None:
        pass

    def replay_state(self, n_envs: int) -> np.ndarray | None:
        return None

    def swap_state(self, state: object = None) -> object:
        return None

    def refresh_actor(self) -> None:
        self.fast.refresh_actor()

    # -- schedules ---------------------------------------------------------------------------------------
    def advance(self, env_steps: int, round_in_flight: bool = False) -> None:
        """The env step count (across all envs) moved on: ε, the learning rate and a due target sync.

        ``round_in_flight`` (the loop's ``overlap``): the lr and a due sync wait for :meth:`begin_round`, so the
        round in flight sees fixed settings and the next one starts from the same target net as without overlap.
        """
        self.env_steps = env_steps
        cfg = self.cfg
        self.epsilon = linear_schedule(
            cfg.exploration_initial_eps,
            cfg.exploration_final_eps,
            int(cfg.exploration_fraction * self.total_steps),
            env_steps,
        )
        if not round_in_flight:
            self.begin_round()

    def begin_round(self) -> None:
        """Apply the learning rate of the current env step and a due target sync (no round may be running)."""
        cfg = self.cfg
        if cfg.lr_final is not None:
            self.fast.set_lr(linear_schedule(cfg.lr, cfg.lr_final, self.total_steps, self.env_steps))
        if self.target_sync_due(self.env_steps):
            self.target_syncs = self.env_steps // cfg.target_update_interval
            self.sync_target()

    def target_sync_due(self, env_steps: int) -> bool:
        """Whether ``advance(env_steps)`` will copy the online net into the target."""
        return env_steps // self.cfg.target_update_interval > self.target_syncs

    @torch.no_grad()
    def sync_target(self) -> None:
        """Copy (τ = 1) or Polyak-average (τ < 1) the online weights into the target."""
        online: list[torch.Tensor] = list(self.online.parameters())
        target: list[torch.Tensor] = list(self.target.parameters())
        if self.cfg.tau >= 1.0:
            torch._foreach_copy_(target, online)
        else:
            torch._foreach_lerp_(target, online, self.cfg.tau)
        for b_t, b_o in zip(self.target.buffers(), self.online.buffers(), strict=True):
            b_t.copy_(b_o)

    # -- learning ----------------------------------------------------------------------------------------
    def update_round(self, batches: list[Batch]) -> list[dict[str, torch.Tensor]]:
        """A round of gradient steps, one per batch, with Q_target(s') of all batches in one forward pass.

        The target only changes between rounds, so one pass over all next observations gives each batch's
        values (to float rounding) with one large matrix product. Double DQN keeps its per-update online
        argmax. Prioritized replay, which samples after each update, calls ``update`` per batch instead.
        """
        if len(batches) < 2 or not self.round_targets:
            return [self.update(batch) for batch in batches]
        fast = self.fast
        next_obs = fast.layout(torch.cat([batch.next_obs for batch in batches]))
        sizes = [len(batch.next_obs) for batch in batches]
        with torch.no_grad(), fast.autocast():
            next_q_target, _ = fast.forward_target(next_obs)
        if self.cfg.double:
            return [self.update(batch, q) for batch, q in zip(batches, next_q_target.split(sizes), strict=True)]
        # plain DQN: the whole round's TD targets at once too (they need only the target net)
        with torch.no_grad():
            all_discounts = [batch.discounts for batch in batches]
            discounts = (self.cfg.gamma if any(d is None for d in all_discounts)
                         else torch.cat([d for d in all_discounts if d is not None]))
            targets = td_target(torch.cat([batch.rewards for batch in batches]),
                                greedy_next_values(next_q_target.float()),
                                torch.cat([batch.terminated for batch in batches]), discounts)
        return [self.update(batch, targets=t) for batch, t in zip(batches, targets.split(sizes), strict=True)]

    def update(
        self, batch: Batch, next_q_target: torch.Tensor | None = None, targets: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """One gradient step on a batch; returns detached metrics (tensors, so GPU runs are not synced).

        ``next_q_target``: Q_target(s') of the batch when already computed; ``targets``: its TD targets when
        already computed (both from ``update_round``). ``td_errors`` (per sample, target − Q; only for batches
        with buffer ``indices``, i.e. prioritized replay) are the new priorities, not a metric.
        """
        cfg, fast = self.cfg, self.fast
        target = targets
        if target is None:
            discounts = batch.discounts if batch.discounts is not None else cfg.gamma
            next_obs = fast.layout(batch.next_obs)
            with torch.no_grad(), fast.autocast():
                if next_q_target is None:
                    next_q_target, _ = fast.forward_target(next_obs)
                next_q_online = fast.forward_online(next_obs)[0] if cfg.double else None
                next_values = greedy_next_values(next_q_target.float(),
                                                 None if next_q_online is None else next_q_online.float())
                target = td_target(batch.rewards, next_values, batch.terminated, discounts)
        with fast.autocast():
            q, _ = fast.forward_online(fast.layout(batch.obs))
        q_taken = q.float().gather(1, batch.actions.view(-1, 1)).squeeze(1)
        loss = q_loss(q_taken, target, cfg.loss, batch.weights)
        grad_norm = fast.step(loss, cfg.max_grad_norm)
        metrics = {"loss": loss.detach(), "q": q_taken.detach().mean(), "grad_norm": grad_norm.detach()}
        if batch.indices is not None:  # prioritized replay's new priorities (one op saved per update without)
            metrics["td_errors"] = (target - q_taken).detach()
        return metrics

    # -- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "env_steps": self.env_steps,
            "epsilon": self.epsilon,
            "target_syncs": self.target_syncs,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env_steps = int(state["env_steps"])
        self.epsilon = float(state["epsilon"])
        self.target_syncs = int(state["target_syncs"])
        self.rng.bit_generator.state = state["rng"]
        self.refresh_actor()
