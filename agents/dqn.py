"""Deep Q-Network (Mnih et al. 2015) with experience replay, a target network and switchable extensions.

The extensions combine freely (``agent=rainbow_lite`` turns on all four, docs/dqn_family.md):
Double DQN (``agent.double``, van Hasselt et al. 2016), a dueling head (``agent.dueling``, Wang et al. 2016),
n-step returns (``agent.n_step``, built by the replay at sample time), proportional prioritized replay
(``agent.prioritized``, Schaul et al. 2016: the replay samples and weights, ``update`` returns the TD errors
from which the loop sets new priorities) and DrQ's image augmentation (``agent.augment_shift``, Kostrikov et
al. 2021: random shifts of the sampled observations and next observations inside the update; ``agent=drq``).
With a recurrent net (``net=lstm|gru|rnn|jordan``) the registry builds DRQN instead (``agents/drqn.py``: the
same config and math on replayed sequences).

Read top to bottom: the config schema, then the agent: act (ε-greedy), advance (ε, learning rate, target
sync), update (TD target, loss, one optimizer step). The pure math (TD targets and losses, unit-tested on
hand-computed numbers) is :mod:`agents.q_learning`; the Q-network, dueling or not, is
:mod:`nets.q_network`; the speed machinery (memory layout, bf16, compile, flat gradients, the functional
Adam step, the actor copy for overlap) is behind :class:`agents.fastpath.FastPath`. The loop that feeds the
agent (env stepping, replay, when to update) is :mod:`rlcore.training.offpolicy`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import nets
from agents.augment import random_shift, require_image_shift
from agents.configs import DQNConfig
from agents.fastpath import FastPath
from agents.q_learning import greedy_next_values, q_loss, td_target
from agents.schedules import linear_schedule
from nets.q_network import QNetwork
from rlcore.base.batches import Batch
from rlcore.base.errors import ConfigError


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
        online = QNetwork(nets.build_extractor(net_cfg, observation_space), self.n_actions, cfg.dueling).to(
            device
        )
        online.extractor.train(not getattr(net_cfg, "freeze", False))  # frozen: fixed BN stats, no dropout
        self.fast = FastPath(
            online,
            device=device,
            lr=cfg.lr,
            adam_eps=cfg.adam_eps,
            amp=amp,
            compile=compile,
            channels_last=channels_last,
            separate_actor=separate_actor,
        )
        self.online, self.target, self.optimizer = self.fast.online, self.fast.target, self.fast.optimizer
        # One target pass per round (update_round) needs a target whose output for a sample does not depend on
        # the rest of the batch or on chance: no batch norm in batch-statistics mode, no active dropout.
        self.round_targets = not any(
            m.training
            for m in self.target.modules()
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd))
        )
        self.rng = np.random.default_rng(seed)
        if cfg.augment_shift:
            require_image_shift(observation_space.shape or (), cfg.augment_shift, "agent.augment_shift")
        # its own stream (saved in the checkpoint), so that turning augmentation on leaves acting, replay
        # sampling and initialisation of a seed unchanged
        self.augment_generator = torch.Generator().manual_seed(seed)
        self.env_steps = 0
        self.epsilon = cfg.exploration_initial_eps
        self.target_syncs = 0
        # True from a τ = 1 sync until the next optimizer step: the target's weights are then the online
        # net's, so Double DQN's online and target passes over s' are one pass (update). With DrQ(ε)'s
        # target_update_interval 1 that is every update.
        self.target_is_online = False

    # -- acting ------------------------------------------------------------------------------------------
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(obs, a)."""
        fast = self.fast
        with torch.inference_mode(), fast.autocast():
            q, _ = fast.forward_actor(fast.layout(torch.as_tensor(obs, device=self.device)))
        return q.argmax(dim=1).cpu().numpy()

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Actions for a batch of observations: ε-greedy with the scheduled ε when exploring.

        ``epsilon`` overrides the schedule (e.g. ε = 0.05 in the Nature Atari evaluation protocol); ``rng``
        replaces the agent's generator (evaluation brings its own, so it leaves training's draws alone).
        """
        eps = (self.epsilon if explore else 0.0) if epsilon is None else epsilon
        n, rng = len(obs), self.rng if rng is None else rng
        random_mask = rng.random(n) < eps
        actions = rng.integers(0, self.n_actions, size=n)
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
        self.target_is_online = self.cfg.tau >= 1.0

    # -- learning ----------------------------------------------------------------------------------------
    def augment(self, batch: Batch) -> Batch:
        """DrQ's random shift (Kostrikov et al. 2021): ``obs`` and ``next_obs`` each shifted by up to
        ``agent.augment_shift`` pixels per axis, one independent offset per image, border pixels replicated
        (DrQ pads by replication before its random crop). Off (0): the batch itself."""
        pixels = self.cfg.augment_shift
        if not pixels:
            return batch
        generator = self.augment_generator
        return batch._replace(
            obs=random_shift(batch.obs, pixels, generator, padding="replicate"),
            next_obs=random_shift(batch.next_obs, pixels, generator, padding="replicate"),
        )

    def update_round(self, batches: list[Batch]) -> list[dict[str, torch.Tensor]]:
        """A round of gradient steps, one per batch, with Q_target(s') of all batches in one forward pass.

        The target only changes between rounds, so one pass over all next observations gives each batch's
        values (to float rounding) with one large matrix product. Double DQN keeps its per-update online
        argmax. Prioritized replay, which samples after each update, calls ``update`` per batch instead.
        """
        if len(batches) < 2 or not self.round_targets:
            return [self.update(batch) for batch in batches]
        batches = [self.augment(batch) for batch in batches]
        fast = self.fast
        next_obs = fast.layout(torch.cat([batch.next_obs for batch in batches]))
        sizes = [len(batch.next_obs) for batch in batches]
        with torch.no_grad(), fast.autocast():
            next_q_target, _ = fast.forward_target(next_obs)
        if self.cfg.double:
            return [
                self.update(batch, q, augmented=True)
                for batch, q in zip(batches, next_q_target.split(sizes), strict=True)
            ]
        # plain DQN: the whole round's TD targets at once too (they need only the target net)
        with torch.no_grad():
            all_discounts = [batch.discounts for batch in batches]
            discounts = (
                self.cfg.gamma
                if any(d is None for d in all_discounts)
                else torch.cat([d for d in all_discounts if d is not None])
            )
            targets = td_target(
                torch.cat([batch.rewards for batch in batches]),
                greedy_next_values(next_q_target.float()),
                torch.cat([batch.terminated for batch in batches]),
                discounts,
            )
        return [
            self.update(batch, targets=t, augmented=True)
            for batch, t in zip(batches, targets.split(sizes), strict=True)
        ]

    def update(
        self,
        batch: Batch,
        next_q_target: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        augmented: bool = False,
    ) -> dict[str, torch.Tensor]:
        """One gradient step on a batch; returns detached metrics (tensors, so GPU runs are not synced).

        ``next_q_target``: Q_target(s') of the batch when already computed; ``targets``: its TD targets when
        already computed (both from ``update_round``, which has already augmented the batch: ``augmented``).
        ``td_errors`` (per sample, target − Q; only for batches with buffer ``indices``, i.e. prioritized
        replay) are the new priorities, not a metric.
        """
        cfg, fast = self.cfg, self.fast
        if not augmented:
            batch = self.augment(batch)
        target = targets
        if target is None:
            discounts = batch.discounts if batch.discounts is not None else cfg.gamma
            next_obs = fast.layout(batch.next_obs)
            with torch.no_grad(), fast.autocast():
                if next_q_target is None and cfg.double and self.target_is_online:
                    next_q_target = next_q_online = fast.forward_online(next_obs)[0]  # same weights
                else:
                    if next_q_target is None:
                        next_q_target, _ = fast.forward_target(next_obs)
                    next_q_online = fast.forward_online(next_obs)[0] if cfg.double else None
                next_values = greedy_next_values(
                    next_q_target.float(), None if next_q_online is None else next_q_online.float()
                )
                target = td_target(batch.rewards, next_values, batch.terminated, discounts)
        with fast.autocast():
            q, _ = fast.forward_online(fast.layout(batch.obs))
        q_taken = q.float().gather(1, batch.actions.view(-1, 1)).squeeze(1)
        loss = q_loss(q_taken, target, cfg.loss, batch.weights)
        grad_norm = fast.step(loss, cfg.max_grad_norm)
        self.target_is_online = False
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
            "augment_rng": self.augment_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env_steps = int(state["env_steps"])
        self.epsilon = float(state["epsilon"])
        self.target_syncs = int(state["target_syncs"])
        self.rng.bit_generator.state = state["rng"]
        if "augment_rng" in state:  # absent from checkpoints written before agent.augment_shift existed
            self.augment_generator.set_state(state["augment_rng"])
        self.refresh_actor()
