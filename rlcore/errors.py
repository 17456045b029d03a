"""The one exception type users see as a clean message instead of a traceback."""


class RLCoreError(Exception):
    """A problem with the user's input (config, checkpoint, data): printed as one message, exit code 2."""


class ConfigError(RLCoreError):
    """A config value is unknown, of the wrong type or out of range."""


class CheckpointError(RLCoreError):
    """A checkpoint is missing, truncated, foreign or incompatible."""
