"""Replay for stacked-frame (Atari) observations that stores one frame per transition.

A buffer of stacked observations (Mnih et al. 2015: 4 frames of 84x84) holds every frame 2 x 4 times, so a
1M-transition buffer takes 56 GB. Consecutive observations of one env share all but one frame, so this
buffer keeps, per transition, only the newest frame of ``next_obs`` and rebuilds both stacks at sample time
(as DQN's original replay memory and Dopamine's do), 7.06 GB for 1M transitions. Unlike those, it
returns the real ``next_obs`` of every transition, also the final observation of a truncated episode, so
time-limit ends can bootstrap (Pardo et al. 2018).

Layout. Transition ``i`` lives in row ``i // n_envs`` and column ``env = i % n_envs`` of a ring of
``capacity // n_envs`` rows, the positions :class:`rlcore.replay.ReplayBuffer` gives it. Each column is
one env's stream: the obs of row ``r`` is the next_obs of row ``r - 1`` unless row ``r`` is a *start*.
A transition is a start when its obs is not the previous next_obs of its env (a new episode, the first
add): its obs frames go to a small FIFO pool of start frames, minus the leading all-zero frames with
which the env pads the stack after a reset, so an episode start costs one extra frame. The oldest row's
predecessor is overwritten by the newest row, so the obs of the oldest row is kept whole in ``head_obs``.
Whether two observations continue each other is checked by comparing them, not guessed from the
done flags: a life loss (a training terminal that does not reset the game) stays in one stream, and
anything the buffer returns is exactly what was added.

Storage. By default the frames live in host memory as numpy arrays and a batch is gathered there, then
copied to the learner's device (from pinned memory, non-blocking, on CUDA). With ``storage="torch"`` the
frames (``frames``, ``pool``, ``head_obs``) are torch tensors on ``device`` (``replay.device=cuda``: GPU
memory) and the batch is gathered there by the same index arithmetic, computed on the host from the small
bookkeeping arrays, which always stay in numpy.

n-step returns (``n_step > 1``) walk down an env's column from the one-step transitions
(:mod:`rlcore.replay.nstep`) and rebuild the stack of ``next_obs`` at ``t + k`` exactly as for one step; a
:class:`rlcore.replay.sum_tree.PrioritizedSampler` samples positions by priority (see :mod:`rlcore.replay`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcore.base.batches import Batch
from rlcore.base.errors import RLCoreError
from rlcore.replay.nstep import nstep_returns
from rlcore.replay.sum_tree import PrioritizedSampler
from rlcore.replay.uniform import load_sampler_state, to_learner_device

START_POOL_FRACTION = 0.02  # start frames reserved per transition: room for episodes of 50 steps on average
# Bytes per transition besides its frame: action int64, reward float32, terminated, truncated, start
# pointer int64, start length uint8.
PER_TRANSITION_BYTES = 8 + 4 + 1 + 1 + 8 + 1

# numpy arrays on the host, torch tensors for replay.device=cuda: both are indexed alike, so typed as Any
Storage = Any


def estimate_bytes(
    capacity: int,
    obs_shape: tuple[int, ...] = (4, 84, 84),
    n_envs: int = 1,
    start_fraction: float = START_POOL_FRACTION,
) -> int:
    """Bytes a full :class:`FrameReplayBuffer` holds (its arrays; not counting Python objects)."""
    stack, *frame_shape = obs_shape
    frame = math.prod(frame_shape)
    rows = capacity // n_envs
    transitions = rows * n_envs
    pool = _pool_size(transitions, stack, n_envs, start_fraction)
    return (
        transitions * (frame + PER_TRANSITION_BYTES)
        + pool * frame
        + 2 * n_envs * stack * frame  # head_obs and the last next_obs of every env
    )


def available_memory_bytes() -> int | None:
    """Memory the kernel says it can give without swapping (MemAvailable), or None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_memory_bytes()


def _pool_size(transitions: int, stack: int, n_envs: int, start_fraction: float) -> int:
    return max(int(transitions * start_fraction), 4 * stack * n_envs)


def format_gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def refuse_unless_fits(
    what: str, needed: int, capacity: int, available: int | None, memory: str = "memory", remedies: str = ""
) -> None:
    """Raise one RLCoreError before allocating when ``needed`` bytes for ``capacity`` transitions exceed
    ``available`` (None: unknown, no check): it says how much, and the ``agent.buffer_size`` that would fit
    (90% of what is available); ``remedies`` adds other ways out (" or ...")."""
    if available is None or needed <= available:
        return
    fits = int(0.9 * available / (needed / capacity))
    raise RLCoreError(
        f"{what} needs about {format_gb(needed)} but only {format_gb(available)} of {memory} is available; "
        f"lower agent.buffer_size (about {fits:,} would fit){remedies} or free memory"
    )


class FrameReplayBuffer:
    """Circular buffer of ``capacity`` stacked-frame transitions storing one frame per transition.

    Same interface as :class:`rlcore.replay.ReplayBuffer`. ``capacity`` is rounded down to a multiple of
    ``n_envs``. Observations must be ``(stack, H, W)`` uint8 stacks whose ``next_obs`` is ``obs`` shifted by
    one frame, as frame-stacking envs produce. Raises :class:`RLCoreError` before allocating when the buffer
    would not fit in the memory available (host memory, or GPU memory with ``storage="torch"`` on CUDA).
    ``storage``: ``numpy`` (host arrays) or ``torch`` (tensors on ``device``), see the module docstring.
    """

    def __init__(
        self,
        capacity: int,
        observation_space: gym.spaces.Box,
        n_envs: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        start_fraction: float = START_POOL_FRACTION,
        storage: str = "numpy",
        n_step: int = 1,
        gamma: float = 0.99,
        sampler: PrioritizedSampler | None = None,
    ) -> None:
        if storage not in ("numpy", "torch"):
            raise ValueError(f"storage must be 'numpy' or 'torch', got {storage!r}")
        if capacity < n_envs:
            raise ValueError(f"replay capacity {capacity} is smaller than the number of envs {n_envs}")
        shape = tuple(observation_space.shape)
        if len(shape) != 3 or observation_space.dtype != np.uint8:
            raise ValueError(
                f"FrameReplayBuffer needs (stack, H, W) uint8 observations, got {shape} {observation_space.dtype}"
            )
        self.n_envs = int(n_envs)
        self.rows = int(capacity) // self.n_envs
        self.capacity = self.rows * self.n_envs
        self.stack, self.height, self.width = shape
        self.obs_shape = shape
        self.n_step, self.gamma, self.sampler = int(n_step), float(gamma), sampler
        self.device = torch.device(device)
        self.on_torch = storage == "torch"
        where = self.device if self.on_torch else torch.device("cpu")
        on_gpu = where.type == "cuda"
        refuse_unless_fits(
            f"the frame replay buffer of {self.capacity:,} transitions",
            estimate_bytes(self.capacity, shape, self.n_envs, start_fraction),
            self.capacity,
            _available_bytes(where),
            "GPU memory" if on_gpu else "memory",
            " or use replay.device=cpu" if on_gpu else "",
        )
        frame = (self.height, self.width)
        # np.zeros maps pages lazily: resident memory grows with the contents, up to `needed` when full.
        self.frames = self._zeros((self.rows, self.n_envs, *frame))  # newest frame of next_obs
        self.actions = np.zeros((self.rows, self.n_envs), dtype=np.int64)
        self.rewards = np.zeros((self.rows, self.n_envs), dtype=np.float32)
        self.terminated = np.zeros((self.rows, self.n_envs), dtype=np.bool_)
        self.truncated = np.zeros((self.rows, self.n_envs), dtype=np.bool_)
        self.start_ptr = np.full(
            (self.rows, self.n_envs), -1, dtype=np.int64
        )  # absolute pool index, -1: none
        self.start_len = np.zeros((self.rows, self.n_envs), dtype=np.uint8)  # frames stored for the start
        self.pool = self._zeros((_pool_size(self.capacity, self.stack, self.n_envs, start_fraction), *frame))
        self.pool_head = 0  # absolute index of the next free pool slot
        self.pool_tail = 0  # absolute index of the oldest live pool frame
        self.head_obs = self._zeros((self.n_envs, *shape))  # obs of the oldest row, when full
        self.last_next_obs = np.zeros((self.n_envs, *shape), dtype=np.uint8)
        self.rng = np.random.default_rng(seed)
        self.pos = 0  # next row to write
        self.filled = 0  # rows holding transitions
        self._warned_pool = False

    def __len__(self) -> int:
        return self.filled * self.n_envs

    @property
    def size(self) -> int:
        return len(self)

    def nbytes(self) -> int:
        """Bytes held by the arrays now (the pool may have grown past the estimate's reserve)."""
        arrays = (self.frames, self.actions, self.rewards, self.terminated, self.truncated, self.start_ptr)
        extra = (self.start_len, self.pool, self.head_obs, self.last_next_obs)
        return sum(a.nbytes if isinstance(a, np.ndarray) else a.numel() for a in arrays + extra)

    # ---------------------------------------------------------------------------- numpy or torch storage
    def _zeros(self, shape: tuple[int, ...]) -> Storage:
        if self.on_torch:
            return torch.zeros(shape, dtype=torch.uint8, device=self.device)
        return np.zeros(shape, dtype=np.uint8)

    def _frames_in(self, array: np.ndarray) -> Storage:
        """Host frames in the storage's kind (a copy to the storage device for torch storage)."""
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device) if self.on_torch else array

    def _ix(self, index: np.ndarray) -> Storage:
        """A numpy index array as an index into the storage."""
        return torch.from_numpy(index).to(self.device) if self.on_torch else index

    @staticmethod
    def _host(array: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(array) if isinstance(array, np.ndarray) else array.cpu()

    # ----------------------------------------------------------------------------------------------- adding
    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one transition per env (arrays with a leading ``n_envs`` axis)."""
        obs = np.asarray(obs, dtype=np.uint8)
        next_obs = np.asarray(next_obs, dtype=np.uint8)
        expected = (self.n_envs, *self.obs_shape)
        if obs.shape != expected or next_obs.shape != expected:
            raise ValueError(
                f"expected obs and next_obs of shape {expected}, got {obs.shape} and {next_obs.shape}"
            )
        if self.stack > 1 and not np.array_equal(next_obs[:, :-1], obs[:, 1:]):
            raise ValueError(
                "FrameReplayBuffer needs next_obs to be obs shifted by one frame (a frame stack)"
            )
        row = self.pos
        full = self.filled == self.rows
        new_head = None
        if full:
            if self.rows > 1:  # the row after `row` becomes the oldest: keep its obs whole
                new_head = self._gather_obs(
                    np.full(self.n_envs, (row + 1) % self.rows), np.arange(self.n_envs)
                )
            self._free_starts(row)
        for env in range(self.n_envs):
            continues = (
                self.filled > 0 and self.rows > 1 and np.array_equal(obs[env], self.last_next_obs[env])
            )
            if continues:
                self.start_ptr[row, env] = -1
                self.start_len[row, env] = 0
            else:
                self._push_start(row, env, obs[env])
        self.frames[row] = self._frames_in(next_obs[:, -1])
        self.actions[row] = actions
        self.rewards[row] = rewards
        self.terminated[row] = terminated
        self.truncated[row] = truncated
        self.last_next_obs[:] = next_obs
        if new_head is not None:
            self.head_obs[:] = new_head
        self.pos = (row + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)
        if self.sampler is not None:
            self.sampler.on_add(row * self.n_envs + np.arange(self.n_envs))

    def _push_start(self, row: int, env: int, obs: np.ndarray) -> None:
        # The env pads a fresh stack with zero frames (ale-py's AtariVectorEnv does): store only what follows.
        nonzero = obs.reshape(self.stack, -1).any(axis=1)
        first = int(np.argmax(nonzero)) if nonzero.any() else self.stack - 1
        count = self.stack - min(first, self.stack - 1)
        if self.pool_head + count - self.pool_tail > len(self.pool):
            self._grow_pool(self.pool_head + count - self.pool_tail)
        idx = np.arange(self.pool_head, self.pool_head + count) % len(self.pool)
        self.pool[self._ix(idx)] = self._frames_in(obs[self.stack - count :])
        self.start_ptr[row, env] = self.pool_head
        self.start_len[row, env] = count
        self.pool_head += count

    def _free_starts(self, row: int) -> None:
        # Starts enter the pool in (row, env) order and rows are overwritten in the same order: a FIFO.
        for env in range(self.n_envs):
            if self.start_ptr[row, env] >= 0:
                assert self.start_ptr[row, env] == self.pool_tail, "start pool out of order"
                self.pool_tail += int(self.start_len[row, env])
                self.start_ptr[row, env] = -1
                self.start_len[row, env] = 0

    def _grow_pool(self, needed: int) -> None:
        size = max(2 * len(self.pool), needed)
        if not self._warned_pool:
            warnings.warn(
                f"FrameReplayBuffer: episodes are shorter than the start-frame reserve assumes; growing the "
                f"start pool to {size:,} frames ({format_gb(size * self.height * self.width)})",
                RuntimeWarning,
                stacklevel=3,
            )
            self._warned_pool = True
        live = np.arange(self.pool_tail, self.pool_head)
        grown = self._zeros((size, self.height, self.width))
        grown[self._ix(live % size)] = self.pool[self._ix(live % len(self.pool))]
        self.pool = grown

    # --------------------------------------------------------------------------------------------- sampling
    def sample_indices(self, batch_size: int) -> np.ndarray:
        if len(self) == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        if self.sampler is not None:
            return self.sampler.sample_indices(batch_size, len(self))
        return self.rng.integers(0, len(self), size=batch_size)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | torch.Tensor) -> None:
        """New priorities of sampled positions from their TD errors (prioritized replay only)."""
        if self.sampler is not None:
            self.sampler.update_priorities(indices, td_errors)

    def sample(self, batch_size: int) -> Batch:
        return self.gather(self.sample_indices(batch_size))

    def gather(self, idx: np.ndarray) -> Batch:
        """The transitions at buffer positions ``idx`` as a Batch on the device (obs/next_obs: read-only views)."""
        idx = np.asarray(idx, dtype=np.int64)
        row, env = idx // self.n_envs, idx % self.n_envs
        # obs and next_obs are overlapping views of one (batch, stack + 1, H, W) tensor: one copy to the
        # device instead of two, and no second host copy (which costs more than the gather itself).
        seq = self._to_device(self._gather_frames(row, env))
        to = self._to_device
        weights = None if self.sampler is None else to(self.sampler.weights(idx, len(self)))
        indices = None if self.sampler is None else idx
        if self.n_step == 1:
            return Batch(
                obs=seq[:, :-1],
                actions=to(self.actions[row, env]),
                rewards=to(self.rewards[row, env]),
                next_obs=seq[:, 1:],
                terminated=to(self.terminated[row, env].astype(np.float32)),
                weights=weights,
                indices=indices,
            )
        newest = (self.pos - 1) % self.rows
        ns = nstep_returns(
            self.rewards,
            self.terminated,
            self.truncated,
            row,
            env,
            (newest - row) % self.rows,
            self.n_step,
            self.gamma,
        )
        # s_{t+k}: the next_obs of transition t+k-1, rebuilt by the same gather (one more when k > 1)
        moved = np.flatnonzero(ns.last_row != row)
        next_obs = seq[:, 1:]
        if len(moved):
            next_obs = next_obs.clone()
            later = self._to_device(self._gather_frames(ns.last_row[moved], env[moved]))
            next_obs[torch.from_numpy(moved).to(next_obs.device)] = later[:, 1:]
        return Batch(
            obs=seq[:, :-1],
            actions=to(self.actions[row, env]),
            rewards=to(ns.returns),
            next_obs=next_obs,
            terminated=to(ns.terminated),
            discounts=to(ns.discounts),
            weights=weights,
            indices=indices,
        )

    def _gather_obs(self, row: np.ndarray, env: np.ndarray) -> np.ndarray:
        return self._gather_frames(row, env)[:, :-1]

    def _gather_frames(self, row: np.ndarray, env: np.ndarray) -> np.ndarray:
        """The ``stack + 1`` frames of obs and next_obs (oldest first) of the transitions at ``row, env``."""
        k, rows, n = self.stack, self.rows, len(row)
        oldest = self.pos if self.filled == self.rows else 0
        age = (row - oldest) % rows  # how many older rows of this stream are still stored
        # Base: the nearest row at most k - 1 back whose obs is stored whole (a start, or the oldest row).
        back = np.full(n, -1, dtype=np.int64)
        for j in range(k):
            cand = (row - j) % rows
            is_base = (back < 0) & (j <= age) & ((self.start_ptr[cand, env] >= 0) | (cand == oldest))
            back[is_base] = j
        ix = self._ix
        # seq[:, j] is the frame k - j rows back (j = k: the newest frame, of next_obs)
        seq = self.frames[ix((row[:, None] - np.arange(k, -1, -1)) % rows), ix(env[:, None])]
        # Frames older than the base come from its stored obs (few samples: only those near a start).
        near = np.flatnonzero((back >= 0) & (back < k))
        if len(near):
            back, env = back[near], env[near]
            base_row = (row[near] - back) % rows
            base = self._zeros((len(near), k, self.height, self.width))
            ptr = self.start_ptr[base_row, env]
            from_head = ptr < 0  # the oldest row, not a start
            if from_head.any():
                base[ix(np.flatnonzero(from_head))] = self.head_obs[ix(env[from_head])]
            length = self.start_len[base_row, env].astype(np.int64)
            for slot in range(k):  # stack position `slot` holds pool frame ptr + slot - (k - length)
                use = ~from_head & (slot >= k - length)
                if use.any():
                    source = (ptr[use] + slot - (k - length[use])) % len(self.pool)
                    base[ix(np.flatnonzero(use)), slot] = self.pool[ix(source)]
            for offset in range(1, k + 1):
                older = offset > back
                if older.any():
                    which = np.flatnonzero(older)
                    seq[ix(near[which]), k - offset] = base[ix(which), ix(k + back[which] - offset)]
        return seq

    def _to_device(self, array: np.ndarray | torch.Tensor) -> torch.Tensor:
        return to_learner_device(array, self.device)  # torch storage is already on the device

    # ------------------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Contents, positions and generator state, as tensors and plain Python values (weights_only-safe).

        The frame tensor shares memory with the buffer (a copy of 7 GB could exhaust memory): save it
        before the next ``add``.
        """
        n = self.filled
        live = np.arange(self.pool_tail, self.pool_head) % len(self.pool)
        return {
            "capacity": self.capacity,
            "n_envs": self.n_envs,
            "obs_shape": list(self.obs_shape),
            "pos": self.pos,
            "filled": n,
            "frames": self._host(self.frames[:n]),
            "actions": torch.from_numpy(self.actions[:n].copy()),
            "rewards": torch.from_numpy(self.rewards[:n].copy()),
            "terminated": torch.from_numpy(self.terminated[:n].copy()),
            "truncated": torch.from_numpy(self.truncated[:n].copy()),
            "start_ptr": torch.from_numpy(self.start_ptr[:n].copy()),
            "start_len": torch.from_numpy(self.start_len[:n].copy()),
            "pool": self._host(self.pool[self._ix(live)]),
            "pool_tail": self.pool_tail,
            "pool_head": self.pool_head,
            "head_obs": self._host(self.head_obs).clone(),
            "last_next_obs": torch.from_numpy(self.last_next_obs.copy()),
            "rng": self.rng.bit_generator.state,
            **({"sampler": self.sampler.state_dict()} if self.sampler is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        saved = (state["capacity"], state["n_envs"], tuple(state["obs_shape"]))
        if saved != (self.capacity, self.n_envs, self.obs_shape):
            raise ValueError(
                f"frame replay differs: saved capacity/n_envs/obs shape {saved}, "
                f"configured {(self.capacity, self.n_envs, self.obs_shape)}"
            )
        n = state["filled"]
        self.frames[:n] = self._frames_in(state["frames"].numpy())
        for name in ("actions", "rewards", "terminated", "truncated", "start_ptr", "start_len"):
            getattr(self, name)[:n] = state[name].numpy()
        self.start_ptr[n:] = -1
        self.start_len[n:] = 0
        self.pool_tail, self.pool_head = state["pool_tail"], state["pool_head"]
        if self.pool_head - self.pool_tail > len(self.pool):
            self.pool = self._zeros((self.pool_head - self.pool_tail, self.height, self.width))
        live = np.arange(self.pool_tail, self.pool_head) % len(self.pool)
        self.pool[self._ix(live)] = self._frames_in(state["pool"].numpy())
        self.head_obs[:] = self._frames_in(state["head_obs"].numpy())
        self.last_next_obs[:] = state["last_next_obs"].numpy()
        self.pos, self.filled = state["pos"], n
        self.rng.bit_generator.state = state["rng"]
        load_sampler_state(self.sampler, state)
