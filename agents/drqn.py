"""DRQN (Hausknecht & Stone 2015): DQN with a recurrent Q-network, trained on replayed sequences with a burn-in
(R2D2, Kapturowski et al. 2019; docs/drqn.md). ``agent=dqn net=lstm|gru|rnn|jordan`` builds it (:func:`agents.registry.build_dqn`).

It is a :class:`agents.dqn.DQNAgent` (ε and learning-rate schedules, target sync, optimizer, checkpoints)
plus what a recurrent net needs: one hidden state per env carried between ``act`` calls, and an update on
:class:`rlcore.base.batches.SequenceBatch` windows. The math is DQN's (:mod:`agents.q_learning`) applied per
step, with the n-step targets and per-sequence priorities of :mod:`agents.sequence_targets`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from agents.dqn import DQNAgent, DQNConfig
from agents.q_learning import greedy_next_values, masked_q_loss
from agents.sequence_targets import sequence_nstep_targets, sequence_priorities
from nets.jordan import JordanNet
from nets.recurrent import RecurrentNet, flatten_state
from rlcore.base.batches import SequenceBatch
from rlcore.base.errors import ConfigError

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class DRQNAgent:
    """DQN's agent (``self.dqn``) with a hidden state per env and sequence updates."""

    recurrent = True

    def __init__(
        self,
        cfg: DQNConfig,
        net_cfg: object,
        observation_space: gym.Space,
        action_space: gym.Space | None,
        **options: object,
    ) -> None:
        if cfg.augment_shift:
            raise ConfigError(
                "config key 'agent.augment_shift': DRQN learns on replayed sequences, which are not augmented; "
                "set agent.augment_shift=0 or use a feed-forward net (e.g. net=nature_cnn)"
            )
        self.dqn = DQNAgent(cfg, net_cfg, observation_space, action_space, **options)  # type: ignore[arg-type]
        self.cfg, self.fast, self.device = cfg, self.dqn.fast, self.dqn.device
        self.online, self.target, self.optimizer = self.dqn.online, self.dqn.target, self.dqn.optimizer
        net = self.online.extractor
        assert isinstance(net, RecurrentNet | JordanNet), (
            f"DRQN needs a recurrent net, got {type(net).__name__}"
        )
        self.net = net
        # One hidden state per env, carried between `act` calls; `reset_state` marks the envs whose episode
        # starts at the next `act` (their state is reset inside that forward pass).
        self.hidden: State | None = None  # None: the initial (zero) state at the next act
        self.pending_starts: np.ndarray | None = None

    # -- what DQN does unchanged ---------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        return self.dqn.epsilon

    def advance(self, env_steps: int, round_in_flight: bool = False) -> None:
        self.dqn.advance(env_steps, round_in_flight)

    def begin_round(self) -> None:
        self.dqn.begin_round()

    def refresh_actor(self) -> None:
        self.dqn.refresh_actor()

    # -- acting with a carried state -----------------------------------------------------------------------
    def greedy_actions(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(obs, a), advancing each env's hidden state by this step."""
        fast = self.fast
        with torch.inference_mode(), fast.autocast():
            obs_t = fast.layout(torch.as_tensor(obs, device=self.device))
            starts = self._take_starts(len(obs))
            q, hidden = fast.forward_actor(obs_t, self.hidden, starts)
            self.hidden = hidden if isinstance(hidden, torch.Tensor) else (hidden[0], hidden[1])
        return q.argmax(dim=1).cpu().numpy()

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """ε-greedy as DQN, but the net runs on every step (random actions too): the state must move on."""
        eps = (self.dqn.epsilon if explore else 0.0) if epsilon is None else epsilon
        n, rng = len(obs), self.dqn.rng if rng is None else rng
        random_mask = rng.random(n) < eps
        actions = rng.integers(0, self.dqn.n_actions, size=n)
        return np.where(random_mask, actions, self.greedy_actions(obs))

    def reset_state(self, starts: np.ndarray) -> None:
        """Envs where ``starts`` is true begin a new episode at the next ``act``: their hidden state goes
        back to the initial state. A different number of envs than the state holds (a fresh evaluation env)
        starts every env afresh."""
        starts = np.asarray(starts, dtype=bool)
        if self.hidden is None or self._state_batch() != len(starts):
            self.hidden, self.pending_starts = None, None
        elif self.pending_starts is None:
            self.pending_starts = starts.copy()
        else:
            self.pending_starts |= starts

    def swap_state(self, state: object = None) -> object:
        """Put ``state`` (from an earlier call; None: fresh) in place of the carried state and return the old
        one: an evaluation plays from a fresh state and gives training its episodes back after."""
        old = (self.hidden, self.pending_starts)
        self.hidden, self.pending_starts = state if state is not None else (None, None)  # type: ignore[misc]
        return old

    def _state_batch(self) -> int:
        assert self.hidden is not None
        return (self.hidden[0] if isinstance(self.hidden, tuple) else self.hidden).shape[1]

    def _take_starts(self, n: int) -> torch.Tensor | None:
        starts, self.pending_starts = self.pending_starts, None
        if self.hidden is not None and self._state_batch() != n:
            self.hidden, starts = None, None  # another number of envs than the state was built for
        return None if starts is None else torch.as_tensor(starts, device=self.device)

    @property
    def state_size(self) -> int:
        """Floats per env in a stored hidden state (0: no stored state, ``agent.stored_state=false``)."""
        if not self.cfg.stored_state:
            return 0
        return self.net.state_size

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

    # -- learning on sequences -----------------------------------------------------------------------------
    def update_round(self, batches: list[SequenceBatch]) -> list[dict[str, torch.Tensor]]:
        return [self.update(batch) for batch in batches]

    def update(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        """One step on sequences: burn-in without gradient, then the loss over the valid steps after it with
        (Double) DQN n-step targets from the target net run over the same sequence (R2D2); with prioritized
        replay, importance weights per sequence and one new priority per sequence."""
        cfg, fast, b = self.cfg, self.fast, self.cfg.burn_in
        obs, starts = batch.obs, batch.starts
        state = None
        if batch.initial_state is not None:
            state = self.net.unflatten_state(batch.initial_state)
        with torch.no_grad(), fast.autocast():
            q_next_target = fast.forward_target(obs, state, starts)[0][:, b + 1 :]
            if b:
                _, state = fast.forward_online(obs[:, :b], state, starts[:, :b])
        with fast.autocast():
            q_all, _ = fast.forward_online(obs[:, b:], state, starts[:, b:])  # (B, L + 1, A)
        q_all = q_all.float()
        actions = batch.actions[:, b:]
        q_taken = q_all[:, :-1].gather(2, actions.unsqueeze(2)).squeeze(2)
        with torch.no_grad():
            n_act = q_all.shape[2]
            next_online = q_all[:, 1:].detach().reshape(-1, n_act) if cfg.double else None
            next_values = greedy_next_values(q_next_target.float().reshape(-1, n_act), next_online)
            valid = batch.mask[:, b:] if batch.valid is None else batch.valid[:, b:]
            target = sequence_nstep_targets(
                batch.rewards[:, b:],
                batch.terminated[:, b:],
                valid,
                next_values.view_as(q_taken),
                cfg.n_step,
                cfg.gamma,
            )
        mask = batch.mask[:, b:]
        loss = masked_q_loss(q_taken, target, mask, cfg.loss, batch.weights)
        grad_norm = fast.step(loss, cfg.max_grad_norm)
        metrics = {
            "loss": loss.detach(),
            "q": (q_taken.detach() * mask).sum() / mask.sum().clamp(min=1.0),
            "grad_norm": grad_norm.detach(),
        }
        if batch.indices is not None:  # prioritized replay: one priority per sequence (R2D2's η-mix)
            metrics["td_errors"] = sequence_priorities((target - q_taken).detach(), mask)
        return metrics

    # -- persistence ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            **self.dqn.state_dict(),
            "hidden": self.hidden,  # the actors' hidden states (None: fresh), so a resume carries on
            "pending_starts": None
            if self.pending_starts is None
            else torch.from_numpy(self.pending_starts.copy()),
        }

    def load_state_dict(self, state: dict) -> None:
        self.dqn.load_state_dict(state)
        hidden = state.get("hidden")
        if isinstance(hidden, list | tuple):
            hidden = tuple(h.to(self.device) for h in hidden)
        self.hidden = hidden.to(self.device) if isinstance(hidden, torch.Tensor) else hidden
        pending = state.get("pending_starts")
        self.pending_starts = None if pending is None else pending.numpy().copy()
