"""Range and choice checks for config schemas: each failure is one ConfigError naming the key."""

from __future__ import annotations

from collections.abc import Iterable

from rlcore.base.errors import ConfigError


def require(ok: bool, key: str, message: str) -> None:
    """Raise a ConfigError naming the key when a range/choice check fails."""
    if not ok:
        raise ConfigError(f"config key '{key}': {message}")


def require_choice(value: str, key: str, choices: Iterable[str]) -> None:
    choices = list(choices)
    require(value in choices, key, f"got {value!r}; allowed values: {', '.join(choices)}")
