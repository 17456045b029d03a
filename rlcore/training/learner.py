"""Who runs the updates of the off-policy loop (``rlcore.training.offpolicy``): inline, or one round in a background thread.

With ``overlap=true`` a round of updates runs in one background thread while the loop steps the env for
the next ``train_freq`` steps (torch releases the GIL in its kernels, and ale-py in its C++ step). The agent
publishes the new weights to its actor and applies a due target sync or learning-rate change when the
round ends (``DQNAgent.refresh_actor``, ``DQNAgent.begin_round``), so every round sees the same target net
and learning rate as without overlap (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from rlcore.base.protocols import OffPolicyAgent


class UpdateMetrics:
    """Collects per-update metric tensors and averages them when a row is logged (one sync, not one per update)."""

    def __init__(self) -> None:
        self.items: dict[str, list[torch.Tensor]] = {}

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            self.items.setdefault(key, []).append(value)

    def pop(self) -> dict[str, float]:
        out = {f"train/{k}": torch.stack(v).float().mean().item() for k, v in self.items.items() if v}
        self.items = {}
        return out

    def finite(self) -> bool:
        """Whether every pending value is finite (one sync; called before checkpoints, not per update)."""
        return all(bool(torch.isfinite(torch.stack(v)).all()) for v in self.items.values() if v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: torch.stack(v).cpu() for k, v in self.items.items() if v}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.items = {k: list(v.unbind()) for k, v in state.items()}


class Learner:
    """Runs rounds of updates inline, or (``overlap``) one round at a time in a background thread.

    ``update_priorities(indices, td_errors)`` (prioritized replay) is called after each update whose batch
    carries buffer positions.
    """

    def __init__(
        self,
        agent: OffPolicyAgent,
        metrics: UpdateMetrics,
        overlap: bool,
        update_priorities: Callable | None = None,
    ) -> None:
        self.agent = agent
        self.metrics = metrics
        self.update_priorities = update_priorities
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rlcore-learner") if overlap else None
        self.pending: Future | None = None

    def _with_priorities(self, batch: Any, metrics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Take the per-sample TD errors out of the metrics; with prioritized replay they set new priorities."""
        td_errors = metrics.pop("td_errors", None)
        if self.update_priorities is not None and batch.indices is not None and td_errors is not None:
            self.update_priorities(batch.indices, td_errors)
        return metrics

    def _run(self, batches: list) -> list[dict[str, torch.Tensor]]:
        results = self.agent.update_round(batches)  # DQN: one target pass for the whole round
        return [self._with_priorities(b, m) for b, m in zip(batches, results, strict=True)]

    def submit(
        self, sample: Callable[[], object], steps: int, sample_round: Callable[[int], list] | None = None
    ) -> None:
        """``steps`` gradient steps on batches from ``sample()``; with overlap, returns once the round has started.

        ``sample_round(n)``: ``n`` batches at once (uniform replay), used instead of ``n`` calls to ``sample``.
        """
        if self.pool is None and self.update_priorities is not None:  # sample → update → priorities, per step
            for _ in range(steps):
                batch = sample()
                self.metrics.add(self._with_priorities(batch, self.agent.update(batch)))
            return
        # uniform sampling: the round's batches are all drawn first, so they share one target pass
        batches = sample_round(steps) if sample_round is not None else [sample() for _ in range(steps)]
        if self.pool is None:
            for metrics in self._run(batches):
                self.metrics.add(metrics)
            return
        self.wait()
        self.pending = self.pool.submit(self._run, batches)

    @property
    def busy(self) -> bool:
        """Whether a round was started in the background and not yet waited for."""
        return self.pending is not None

    def wait(self) -> None:
        """Finish the round in flight (re-raising its error), let the actor act with its weights, and apply
        the settings that waited for it (the agent's ``begin_round``: learning rate, a due target sync)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            for metrics in pending.result():
                self.metrics.add(metrics)
            self.agent.refresh_actor()
            self.agent.begin_round()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
