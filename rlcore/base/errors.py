"""The one exception type users see as a clean message instead of a traceback, and how the scripts print it."""

from __future__ import annotations

import sys
from typing import NoReturn


class RLCoreError(Exception):
    """A problem with the user's input (config, checkpoint, data): printed as one message, exit code 2."""


class ConfigError(RLCoreError):
    """A config value is unknown, of the wrong type or out of range."""


class CheckpointError(RLCoreError):
    """A checkpoint is missing, truncated, foreign or incompatible."""


class DivergenceError(RLCoreError):
    """Training produced a non-finite loss, Q-value or weight; the last good checkpoint is kept."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; the loop saved ``checkpoints/last.pt`` and the process exits with ``exit_code``.

    Not an RLCoreError: it is no user mistake, and the shell convention is 128 + the signal number
    (130 for SIGINT, 143 for SIGTERM), not 2.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str) -> NoReturn:
    """The entry scripts' end for an RLCoreError: one line on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
