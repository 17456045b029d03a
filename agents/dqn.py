"""Deep Q-Network (Mnih et al. 2015) with experience replay, a target network and switchable extensions.

The extensions combine freely (``agent=rainbow_lite`` turns on all four, docs/dqn_family.md):
Double DQN (``agent.double``, van Hasselt et al. 2016), a dueling head (``agent.dueling``, Wang et al. 2016),
n-step returns (``agent.n_step``, built by the replay at sample time) and proportional prioritized replay
(``agent.prioritized``, Schaul et al. 2016: the replay samples and weights, ``update`` returns the TD errors
from which the loop sets new priorities). With a recurrent net (``net=lstm|gru|rnn``) it is DRQN (Hausknecht
& Stone 2015) trained on replayed sequences with a burn-in (R2D2, Kapturowski et al. 2019; docs/drqn.md).

Read top to bottom: the config schema, then the agent. The pure math (TD targets and losses, unit-tested on
hand-computed numbers) is ``rlcore.q_learning`` (one transition) and ``rlcore.sequence_targets`` (DRQN's
sequences); the Q-network, dueling or not, is ``nets.q_network``. The loop that feeds the agent (env
stepping, replay, schedules of when to update) is ``rlcore.offpolicy``; the agent only acts, learns from a
batch and keeps its own schedules.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import nets
from nets.q_network import QNetwork
from nets.recurrent import flatten_state, unflatten_state
from rlcore.config import require, require_choice
from rlcore.errors import ConfigError
from rlcore.gradients import adam_step, clip_flat_grad_, flat_gradients
from rlcore.q_learning import greedy_next_values, masked_q_loss, q_loss, td_target
from rlcore.replay import Batch
from rlcore.schedules import linear_schedule
from rlcore.sequence_replay import SequenceBatch
from rlcore.sequence_targets import sequence_nstep_targets, sequence_priorities


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


# ------------------------------------------------------------------------------------------- the agent


class DQNAgent:
    """ε-greedy acting, one gradient step per ``update``, target sync and ε schedule in ``advance``."""

    def __init__(
        self,
        cfg: DQNConfig,
        net_cfg: object,
        observation_space: gym.Space,
        action_space: gym.Space,
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
        self.online = QNetwork(nets.build_extractor(net_cfg, observation_space), self.n_actions, cfg.dueling).to(device)
        self.online.extractor.train(not getattr(net_cfg, "freeze", False))  # frozen: fixed BN stats, no dropout
        # NHWC conv weights and (4-D) inputs: oneDNN's convolutions run faster in this layout on CPU
        self.channels_last = channels_last
        if channels_last:
            self.online.to(memory_format=torch.channels_last)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        # A separate actor (the loop's `overlap`: updates run in a background thread) is a copy of the online
        # net that acting reads and `refresh_actor` overwrites between updates, so acting never sees weights
        # an update is halfway through writing; it lags the online net by the update in flight.
        self.actor = copy.deepcopy(self.online).requires_grad_(False) if separate_actor else self.online
        self.params = [p for p in self.online.parameters() if p.requires_grad]
        self.flat_grad = flat_gradients(self.params)
        # fused Adam on one device: one kernel for all parameters instead of one per tensor
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, eps=cfg.adam_eps, fused=True)
        # bf16 autocast: fp32's range, so no loss scaling is needed (fp16 would need a GradScaler). On CPUs
        # without AMX (bf16 matrix units) it is much slower than fp32: keep amp for GPUs.
        if amp and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("amp=true autocasts to bfloat16, which this GPU does not support; use amp=false")
        self.autocast_dtype = torch.bfloat16 if amp else None
        self.forward_online = torch.compile(self.online) if compile else self.online
        self.forward_target = torch.compile(self.target) if compile else self.target
        self.forward_actor = self.forward_online if self.actor is self.online else (
            torch.compile(self.actor) if compile else self.actor
        )
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
        # DRQN: one hidden state per env, carried between `act` calls; `reset_state` marks the envs whose
        # episode starts at the next `act` (their state is reset inside that forward pass).
        self.recurrent = bool(self.online.extractor.is_recurrent)
        self.hidden: object | None = None  # None: the initial (zero) state at the next act
        self.pending_starts: np.ndarray | None = None

    # -- acting ------------------------------------------------------------------------------------------
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(obs, a); a recurrent agent also advances its hidden state by this step."""
        with torch.inference_mode(), self._autocast():
            obs_t = self._layout(torch.as_tensor(obs, device=self.device))
            if not self.recurrent:
                q, _ = self.forward_actor(obs_t)
            else:
                starts = self._take_starts(len(obs))
                q, hidden = self.forward_actor(obs_t, self.hidden, starts)
                self.hidden = hidden if isinstance(hidden, torch.Tensor) else tuple(hidden)
        return q.argmax(dim=1).cpu().numpy()

    def reset_state(self, starts: np.ndarray) -> None:
        """Envs where ``starts`` is true begin a new episode at the next ``act``: their hidden state goes
        back to the initial state (a no-op for feed-forward nets). A different number of envs than the
        state holds (a fresh evaluation env) starts every env afresh."""
        if not self.recurrent:
            return
        starts = np.asarray(starts, dtype=bool)
        if self.hidden is None or self._state_batch() != len(starts):
            self.hidden, self.pending_starts = None, None
        elif self.pending_starts is None:
            self.pending_starts = starts.copy()
        else:
            self.pending_starts |= starts

    def _state_batch(self) -> int:
        return (self.hidden[0] if isinstance(self.hidden, tuple) else self.hidden).shape[1]

    def _take_starts(self, n: int) -> torch.Tensor | None:
        starts, self.pending_starts = self.pending_starts, None
        if self.hidden is not None and self._state_batch() != n:
            self.hidden, starts = None, None  # another number of envs than the state was built for
        return None if starts is None else torch.as_tensor(starts, device=self.device)

    @property
    def state_size(self) -> int:
        """Floats per env in a stored hidden state (0: no stored state)."""
        if not (self.recurrent and self.cfg.stored_state):
            return 0
        net = self.online.extractor
        return net.num_layers * net.hidden_size * (2 if net.cell_type == "lstm" else 1)

    def replay_state(self, n_envs: int) -> np.ndarray | None:
        """The hidden state the next ``act`` starts from, one flat row per env (resets applied), for a
        stored-state replay; None without ``agent.stored_state``."""
        if not self.state_size:
            return None
        if self.hidden is None or self._state_batch() != n_envs:
            return np.zeros((n_envs, self.state_size), dtype=np.float32)
        flat = flatten_state(self.hidden).float().cpu().numpy()
        if self.pending_starts is not None:
            flat[self.pending_starts] = 0.0
        return flat

    def _layout(self, obs: torch.Tensor) -> torch.Tensor:
        """Image batches in the nets' memory format (a copy of the uint8 pixels, before they become float)."""
        if self.channels_last and obs.dim() == 4:
            return obs.contiguous(memory_format=torch.channels_last)
        return obs

    @torch.no_grad()
    def refresh_actor(self) -> None:
        """Copy the online weights into the separate actor (a no-op when acting uses the online net)."""
        if self.actor is not self.online:
            torch._foreach_copy_(list(self.actor.parameters()), list(self.online.parameters()))
            for b_a, b_o in zip(self.actor.buffers(), self.online.buffers(), strict=True):
                b_a.copy_(b_o)

    def act(self, obs: np.ndarray, explore: bool = True, epsilon: float | None = None) -> np.ndarray:
        """Actions for a batch of observations: ε-greedy with the scheduled ε when exploring.

        ``epsilon`` overrides the schedule (e.g. ε = 0.05 in the Nature Atari evaluation protocol).
        """
        eps = (self.epsilon if explore else 0.0) if epsilon is None else epsilon
        n = len(obs)
        random_mask = self.rng.random(n) < eps
        actions = self.rng.integers(0, self.n_actions, size=n)
        if self.recurrent or not random_mask.all():  # skipped when every env explores (not DRQN: state)
            greedy = self.greedy_actions(obs)
            actions = np.where(random_mask, actions, greedy)
        return actions

    # -- schedules ---------------------------------------------------------------------------------------
    def advance(self, env_steps: int, round_in_flight: bool = False) -> None:
        """Tell the agent how many env steps (across all envs) have been taken: updates ε, the learning rate
        and syncs the target when due.

        ``round_in_flight``: a round of updates runs in the background (the loop's ``overlap``); the
        learning rate and a due target sync then wait for :meth:`begin_round`, so that the round in flight
        sees fixed settings whatever the timing of the two threads, and the next round starts from the same
        target net as without overlap (the online net after the previous round).
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
            lr = linear_schedule(cfg.lr, cfg.lr_final, self.total_steps, self.env_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        if self.target_sync_due(self.env_steps):
            self.target_syncs = self.env_steps // cfg.target_update_interval
            self.sync_target()

    def target_sync_due(self, env_steps: int) -> bool:
        """Whether ``advance(env_steps)`` will copy the online net into the target."""
        return env_steps // self.cfg.target_update_interval > self.target_syncs

    @torch.no_grad()
    def sync_target(self) -> None:
        online, target = list(self.online.parameters()), list(self.target.parameters())
        if self.cfg.tau >= 1.0:
            torch._foreach_copy_(target, online)
        else:
            torch._foreach_lerp_(target, online, self.cfg.tau)
        for b_t, b_o in zip(self.target.buffers(), self.online.buffers(), strict=True):
            b_t.copy_(b_o)

    # -- learning ----------------------------------------------------------------------------------------
    def update_round(self, batches: list[Batch | SequenceBatch]) -> list[dict[str, torch.Tensor]]:
        """A round of gradient steps, one per batch, with Q_target(s') of all batches in one forward pass.

        The loop syncs the target only between rounds (in ``advance``), so the target net is the same for
        every batch of a round and one pass over all their next observations gives the same values as one
        pass per batch (to float rounding), with one large matrix product instead of many small ones. Double
        DQN keeps its per-update online argmax (the online net changes each step); only the target half is
        batched. The batches must all be sampled before the round (prioritized replay that samples each batch
        after the previous update calls ``update`` per batch instead).
        """
        if len(batches) < 2 or not self.round_targets or self.recurrent:
            return [self.update(batch) for batch in batches]
        next_obs = self._layout(torch.cat([batch.next_obs for batch in batches]))
        sizes = [len(batch.next_obs) for batch in batches]
        with torch.no_grad(), self._autocast():
            next_q_target, _ = self.forward_target(next_obs)
        if self.cfg.double:
            return [self.update(batch, q) for batch, q in zip(batches, next_q_target.split(sizes), strict=True)]
        # plain DQN: the whole round's TD targets at once too (they need only the target net)
        with torch.no_grad():
            discounts = (self.cfg.gamma if batches[0].discounts is None
                         else torch.cat([batch.discounts for batch in batches]))
            targets = td_target(torch.cat([batch.rewards for batch in batches]),
                                greedy_next_values(next_q_target.float()),
                                torch.cat([batch.terminated for batch in batches]), discounts)
        return [self.update(batch, targets=t) for batch, t in zip(batches, targets.split(sizes), strict=True)]

    def update(
        self,
        batch: Batch | SequenceBatch,
        next_q_target: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One gradient step on a batch; returns detached metrics (tensors, so GPU runs are not synced).

        ``next_q_target``: Q_target(s') of the batch when already computed; ``targets``: its TD targets when
        already computed (both from ``update_round``).
        ``td_errors`` (per sample, target − Q; per sequence for DRQN, R2D2's η-mix of its |δ|; only for
        batches with buffer ``indices``, i.e. prioritized replay) are the new priorities, not a metric.
        """
        if isinstance(batch, SequenceBatch):
            return self._update_sequences(batch)
        cfg = self.cfg
        target = targets
        if target is None:
            discounts = batch.discounts if batch.discounts is not None else cfg.gamma
            next_obs = self._layout(batch.next_obs)
            with torch.no_grad(), self._autocast():
                if next_q_target is None:
                    next_q_target, _ = self.forward_target(next_obs)
                next_q_online = self.forward_online(next_obs)[0] if cfg.double else None
                next_values = greedy_next_values(next_q_target.float(),
                                                 None if next_q_online is None else next_q_online.float())
                target = td_target(batch.rewards, next_values, batch.terminated, discounts)
        with self._autocast():
            q, _ = self.forward_online(self._layout(batch.obs))
        q_taken = q.float().gather(1, batch.actions.view(-1, 1)).squeeze(1)
        loss = q_loss(q_taken, target, cfg.loss, batch.weights)
        self.flat_grad.zero_()  # not zero_grad(): backward must accumulate into the views of flat_grad
        loss.backward()
        grad_norm = clip_flat_grad_(self.flat_grad, cfg.max_grad_norm)
        adam_step(self.optimizer)
        metrics = {"loss": loss.detach(), "q": q_taken.detach().mean(), "grad_norm": grad_norm.detach()}
        if batch.indices is not None:  # prioritized replay's new priorities (one op saved per update without)
            metrics["td_errors"] = (target - q_taken).detach()
        return metrics

    def _update_sequences(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        """DRQN step on sequences: burn-in without gradient, then the loss over the valid steps after it
        with (Double) DQN n-step targets from the target net run over the same sequence (R2D2); with
        prioritized replay, importance weights per sequence and one new priority per sequence."""
        cfg, b = self.cfg, self.cfg.burn_in
        obs, starts = batch.obs, batch.starts
        state = None
        if batch.initial_state is not None:
            net = self.online.extractor
            state = unflatten_state(batch.initial_state, net.num_layers, net.cell_type == "lstm")
        with torch.no_grad(), self._autocast():
            q_next_target = self.forward_target(obs, state, starts)[0][:, b + 1 :]
            if b:
                _, state = self.forward_online(obs[:, :b], state, starts[:, :b])
        with self._autocast():
            q_all, _ = self.forward_online(obs[:, b:], state, starts[:, b:])  # (B, L + 1, A)
        q_all = q_all.float()
        actions = batch.actions[:, b:]
        q_taken = q_all[:, :-1].gather(2, actions.unsqueeze(2)).squeeze(2)
        with torch.no_grad():
            n_act = q_all.shape[2]
            next_online = q_all[:, 1:].detach().reshape(-1, n_act) if cfg.double else None
            next_values = greedy_next_values(q_next_target.float().reshape(-1, n_act), next_online)
            valid = batch.mask[:, b:] if batch.valid is None else batch.valid[:, b:]
            target = sequence_nstep_targets(batch.rewards[:, b:], batch.terminated[:, b:], valid,
                                            next_values.view_as(q_taken), cfg.n_step, cfg.gamma)
        mask = batch.mask[:, b:]
        loss = masked_q_loss(q_taken, target, mask, cfg.loss, batch.weights)
        self.flat_grad.zero_()
        loss.backward()
        grad_norm = clip_flat_grad_(self.flat_grad, cfg.max_grad_norm)
        adam_step(self.optimizer)
        metrics = {
            "loss": loss.detach(),
            "q": (q_taken.detach() * mask).sum() / mask.sum().clamp(min=1.0),
            "grad_norm": grad_norm.detach(),
        }
        if batch.indices is not None:  # prioritized replay: one priority per sequence (R2D2's η-mix)
            metrics["td_errors"] = sequence_priorities((target - q_taken).detach(), mask)
        return metrics

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:  # a disabled torch.autocast still costs ~3 us per use on CPU
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

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
            "hidden": self.hidden,  # DRQN: the actors' hidden states (None: fresh), so a resume carries on
            "pending_starts": None if self.pending_starts is None else torch.from_numpy(self.pending_starts.copy()),
        }

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env_steps = int(state["env_steps"])
        self.epsilon = float(state["epsilon"])
        self.target_syncs = int(state["target_syncs"])
        self.rng.bit_generator.state = state["rng"]
        hidden = state.get("hidden")
        if isinstance(hidden, list | tuple):
            hidden = tuple(h.to(self.device) for h in hidden)
        self.hidden = hidden.to(self.device) if isinstance(hidden, torch.Tensor) else hidden
        pending = state.get("pending_starts")
        self.pending_starts = None if pending is None else pending.numpy().copy()
        self.refresh_actor()
