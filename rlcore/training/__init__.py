"""The training loops (off-policy, supervised, autoencoder pretraining), what they share (:mod:`.context`),
and the services they use: evaluation, logging, plots, videos, resume files (docs/architecture.md)."""
