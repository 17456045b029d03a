"""Schedules counted in env steps."""

from __future__ import annotations


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """Linear interpolation from ``start`` to ``end`` over ``duration`` steps, then ``end``.

    The ε-greedy schedule of Mnih et al. (2015), counted in env steps across all envs.
    """
    if duration <= 0 or step >= duration:
        return end
    return start + (end - start) * (max(step, 0) / duration)
