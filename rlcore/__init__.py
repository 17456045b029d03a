"""rlcore: training loop, replay, config schemas, logging, checkpoints, seeding and evaluation."""

__version__ = "0.1.0"
