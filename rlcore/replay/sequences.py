"""Sequence replay for recurrent Q-networks (DRQN, Hausknecht & Stone 2015; R2D2, Kapturowski et al. 2019).

A recurrent net needs the steps *before* a transition to rebuild its hidden state, so this replay samples
windows of ``burn_in + sequence_length`` consecutive steps of one env instead of single transitions. It
wraps the transition buffer the env would use anyway (:class:`rlcore.replay.ReplayBuffer`, or the
one-frame-per-transition :class:`rlcore.replay.frames.FrameReplayBuffer` for Atari with
``env.frame_stack=1``) and uses their layout: transition ``i`` of env ``e`` lives at buffer position
``row * n_envs + e``, so one column of rows is one env's stream. Next to it this class keeps, per row and
env, an episode id (a per-env counter bumped after every episode end) and, optionally, the actor's hidden
state before that step (R2D2's "stored state").

Sampling. A training start ``s`` is drawn uniformly from all stored transitions; the window is
``[s - burn_in, s + sequence_length)`` in that env's stream. A window position is *valid* when it is
stored (not older than the oldest row, not at or past the write head) and belongs to the episode of ``s``,
so a window never mixes episodes nor crosses the write head:

* positions before the episode's first stored step are left padding: the net resets its state at the first
  valid step (``starts``), so they cannot influence anything;
* positions after the episode's last step or past the write head are right padding: ``mask`` is 0 there
  and the loss ignores them (a recurrent net is causal, so they cannot influence valid steps either).

Padding positions repeat the nearest valid transition's data, so everything in a batch is real data.
The batch carries ``burn_in + sequence_length + lookahead + 1`` observations: the window's obs followed by
each step's next obs, i.e. ``obs[t + 1]`` is the next observation of step ``t`` (for a step that ended its
episode this is the real final observation, so time-limit ends bootstrap from it, Pardo et al. 2018).

n-step returns (``lookahead = n - 1``): the window goes on for ``lookahead`` steps after the trained ones,
so that the last trained step still gets a full n-step return (:mod:`agents.sequence_targets` computes
them in the loss). Those steps are ``valid`` where they exist but never in ``mask``: nothing trains on them.

Prioritized replay (R2D2): a :class:`rlcore.replay.sum_tree.PrioritizedSampler` keeps one priority per training
start, i.e. per buffer position ``row * n_envs + env`` of the wrapped buffer. A new (or overwritten)
position gets the largest priority so far; ``sample`` draws training starts proportionally to priority and
the batch carries the importance weights and the positions, whose priorities the loop then sets from one
value per sequence (:func:`agents.sequence_targets.sequence_priorities`).
"""

from __future__ import annotations

import numpy as np
import torch

from rlcore.base.batches import SequenceBatch
from rlcore.replay.frames import FrameReplayBuffer, available_memory_bytes, format_gb, refuse_unless_fits
from rlcore.replay.sum_tree import PrioritizedSampler
from rlcore.replay.uniform import ReplayBuffer, load_sampler_state, to_learner_device


class SequenceReplay:
    """Windows of consecutive steps from a transition buffer; see the module docstring."""

    def __init__(
        self,
        inner: ReplayBuffer | FrameReplayBuffer,
        burn_in: int,
        sequence_length: int,
        state_size: int = 0,
        seed: int = 0,
        lookahead: int = 0,
        sampler: PrioritizedSampler | None = None,
    ) -> None:
        if inner.capacity % inner.n_envs:
            raise ValueError(
                f"the buffer's capacity {inner.capacity} must be a multiple of n_envs {inner.n_envs}"
            )
        if burn_in < 0 or sequence_length < 1 or lookahead < 0:
            raise ValueError(
                f"need burn_in >= 0, sequence_length >= 1 and lookahead >= 0, "
                f"got {burn_in}, {sequence_length} and {lookahead}"
            )
        self.inner = inner
        self.n_envs = inner.n_envs
        self.rows = inner.capacity // self.n_envs
        self.capacity = self.rows * self.n_envs
        self.device = inner.device
        self.burn_in = int(burn_in)
        self.sequence_length = int(sequence_length)
        self.lookahead = int(lookahead)  # n-step returns: n - 1 untrained steps after the trained ones
        if sampler is not None and sampler.tree.capacity != self.capacity:
            raise ValueError(
                f"the sampler's capacity {sampler.tree.capacity} differs from the buffer's {self.capacity}"
            )
        self.sampler = sampler
        self.state_size = int(state_size)
        self._check_memory(inner)
        self.episode_id = np.zeros((self.rows, self.n_envs), dtype=np.int64)
        self.current_episode = np.zeros(self.n_envs, dtype=np.int64)
        # R2D2's stored state: the actor's hidden state before each step, flattened (0: zero initial state).
        self.states = (
            np.zeros((self.rows, self.n_envs, self.state_size), dtype=np.float32) if state_size else None
        )
        self.rng = np.random.default_rng(seed)
        self.pos = 0  # next row to write
        self.filled = 0  # rows holding transitions

    def _check_memory(self, inner: ReplayBuffer | FrameReplayBuffer) -> None:
        """Refuse before allocating when the extras (host arrays) and a host-memory frame buffer together would
        not fit (the frame buffer checked only itself; its pages map lazily, so they still count as available)."""
        extra = sequence_extra_bytes(self.capacity, self.state_size)
        on_host = isinstance(inner, FrameReplayBuffer) and not (
            inner.on_torch and inner.device.type == "cuda"
        )
        held = inner.nbytes() if on_host and isinstance(inner, FrameReplayBuffer) else 0
        states = f" and stored hidden states of {self.state_size} floats" if self.state_size else ""
        refuse_unless_fits(
            f"the DRQN sequence replay of {self.capacity:,} steps (with {format_gb(extra)} for per-step episode ids{states})",
            held + extra,
            self.capacity,
            available_memory_bytes(),
            remedies=" or set agent.stored_state=false" if self.state_size else "",
        )

    @property
    def window(self) -> int:
        return self.burn_in + self.sequence_length + self.lookahead

    def __len__(self) -> int:
        return self.filled * self.n_envs

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        *,
        episode_ends: np.ndarray | None = None,
        states: np.ndarray | None = None,
    ) -> None:
        """Store one step per env. ``episode_ends`` (default ``terminated | truncated``): the env's episode
        ended with this step. It differs from the learner's ``terminated`` on an Atari life loss, a terminal
        for the TD target but not an episode end for the actor, whose hidden state carries on.
        ``states`` (n_envs, state_size): the actor's hidden state before this step (stored-state replay)."""
        ends = (
            np.asarray(terminated, bool) | np.asarray(truncated, bool)
            if episode_ends is None
            else episode_ends
        )
        self.inner.add(obs, next_obs, actions, rewards, terminated, truncated)
        self.episode_id[self.pos] = self.current_episode
        if self.states is not None:
            if states is None:
                raise ValueError("this replay stores hidden states (agent.stored_state=true): pass states=")
            self.states[self.pos] = states
        if self.sampler is not None:  # the new training starts get the largest priority so far
            self.sampler.on_add(self.pos * self.n_envs + np.arange(self.n_envs))
        self.current_episode += np.asarray(ends, dtype=np.int64)
        self.pos = (self.pos + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)

    # --------------------------------------------------------------------------------------------- sampling
    def sample(self, batch_size: int) -> SequenceBatch:
        if self.filled == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        if self.sampler is not None:
            return self.gather_positions(self.sampler.sample_indices(batch_size, len(self)))
        start = self.rng.integers(0, self.filled, size=batch_size)  # logical row: 0 = oldest stored
        env = self.rng.integers(0, self.n_envs, size=batch_size)
        return self.gather(start, env)

    def gather_positions(self, positions: np.ndarray) -> SequenceBatch:
        """Windows whose training starts are the buffer positions ``row * n_envs + env`` (prioritized
        replay), with their importance weights and positions."""
        positions = np.asarray(positions, dtype=np.int64)
        oldest = self.pos if self.filled == self.rows else 0
        start = (positions // self.n_envs - oldest) % self.rows
        batch = self.gather(start, positions % self.n_envs)
        weights = (
            self._to_device(self.sampler.weights(positions, len(self))) if self.sampler is not None else None
        )
        return batch._replace(weights=weights, indices=positions)

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray | torch.Tensor) -> None:
        """New priorities of sampled training starts, one value per sequence (prioritized replay only)."""
        if self.sampler is not None:
            self.sampler.update_priorities(indices, priorities)

    def window_layout(self, start: np.ndarray, env: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For training starts at logical rows ``start`` of envs ``env``: the physical row of every window
        position (padding repeats the nearest valid row) and which positions are valid, both (B, T)."""
        oldest = self.pos if self.filled == self.rows else 0
        logical = start[:, None] + np.arange(-self.burn_in, self.sequence_length + self.lookahead)  # (B, T)
        stored = (logical >= 0) & (logical < self.filled)
        clipped = np.clip(logical, 0, self.filled - 1)
        rows = (oldest + clipped) % self.rows
        episode = self.episode_id[(oldest + start) % self.rows, env]
        valid = stored & (self.episode_id[rows, env[:, None]] == episode[:, None])
        # valid positions are one contiguous run that contains the training start (column burn_in)
        first = valid.argmax(axis=1)
        last = self.window - 1 - valid[:, ::-1].argmax(axis=1)
        positions = np.clip(np.arange(self.window), first[:, None], last[:, None])
        rows = np.take_along_axis(rows, positions, axis=1)
        return rows, valid

    def gather(self, start: np.ndarray, env: np.ndarray) -> SequenceBatch:
        rows, valid = self.window_layout(np.asarray(start), np.asarray(env))
        b, t = rows.shape
        steps = self.inner.gather((rows * self.n_envs + env[:, None]).reshape(-1))
        shape = steps.obs.shape[1:]
        first = valid.argmax(axis=1)
        # obs[:, t] is the next obs of step t - 1 after the first valid step, the step's own obs up to it
        # (left padding repeats the first valid step, whose obs is not the next obs of a padding step)
        own = torch.cat(
            [steps.obs.reshape(b, t, *shape), steps.next_obs.reshape(b, t, *shape)[:, -1:]], dim=1
        )
        nxt = torch.cat([steps.obs.reshape(b, t, *shape)[:, :1], steps.next_obs.reshape(b, t, *shape)], dim=1)
        upto = self._to_device(np.arange(t + 1) <= first[:, None])
        obs = torch.where(upto.view(b, t + 1, *([1] * len(shape))), own, nxt)
        mask = valid.copy()
        mask[:, : self.burn_in] = False
        mask[:, self.burn_in + self.sequence_length :] = False  # the lookahead steps only feed n-step returns
        starts = np.zeros((b, t + 1), dtype=bool)
        starts[np.arange(b), first] = first > 0
        to = self._to_device
        initial = None
        if self.states is not None:
            initial = to(np.ascontiguousarray(self.states[rows[:, 0], env]))
        return SequenceBatch(
            obs=obs,
            actions=steps.actions.reshape(b, t),
            rewards=steps.rewards.reshape(b, t),
            terminated=steps.terminated.reshape(b, t),
            mask=to(mask.astype(np.float32)),
            starts=to(starts),
            initial_state=initial,
            valid=to(valid.astype(np.float32)),
        )

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return to_learner_device(array, self.device)

    # ------------------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The wrapped buffer's state plus episode ids and stored states (tensors and plain values)."""
        n = self.filled
        return {
            "inner": self.inner.state_dict(),
            "rows": self.rows,
            "n_envs": self.n_envs,
            "state_size": self.state_size,
            "pos": self.pos,
            "filled": n,
            "episode_id": torch.from_numpy(self.episode_id[:n].copy()),
            "current_episode": torch.from_numpy(self.current_episode.copy()),
            "states": None if self.states is None else torch.from_numpy(self.states[:n].copy()),
            "rng": self.rng.bit_generator.state,
            **({"sampler": self.sampler.state_dict()} if self.sampler is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        saved = (state["rows"], state["n_envs"], state["state_size"])
        if saved != (self.rows, self.n_envs, self.state_size):
            raise ValueError(
                f"sequence replay differs: saved rows/n_envs/state size {saved}, "
                f"configured {(self.rows, self.n_envs, self.state_size)}"
            )
        self.inner.load_state_dict(state["inner"])
        n = state["filled"]
        self.episode_id[:n] = state["episode_id"].numpy()
        self.current_episode[:] = state["current_episode"].numpy()
        if self.states is not None:
            self.states[:n] = state["states"].numpy()
        self.pos, self.filled = state["pos"], n
        self.rng.bit_generator.state = state["rng"]
        load_sampler_state(self.sampler, state)


def sequence_extra_bytes(capacity: int, state_size: int) -> int:
    """Bytes a full sequence replay adds to the buffer it wraps: an int64 episode id per step and, with
    stored states, ``state_size`` float32s per step (4 KB per step for a 512-unit LSTM)."""
    return capacity * (8 + 4 * state_size)
