"""Experience replay: flat transitions (``uniform``), one frame per transition (``frames``), sequences for
recurrent learners (``sequences``), n-step returns (``nstep``) and prioritized sampling (``sum_tree``);
``factory`` picks the one that fits an env. Replays produce the batch types of :mod:`rlcore.base.batches`.
"""

from rlcore.base.batches import Batch, SequenceBatch
from rlcore.replay.factory import make_replay, make_sequence_replay, stores_frames
from rlcore.replay.frames import FrameReplayBuffer
from rlcore.replay.sequences import SequenceReplay
from rlcore.replay.uniform import ReplayBuffer

__all__ = [
    "Batch",
    "FrameReplayBuffer",
    "ReplayBuffer",
    "SequenceBatch",
    "SequenceReplay",
    "make_replay",
    "make_sequence_replay",
    "stores_frames",
]
