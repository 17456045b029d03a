"""``agent=rbm`` and ``agent=dbn``: restricted Boltzmann machines trained by CD-k / PCD, stacked greedily into a DBN.

Read top to bottom: the agent holds a :class:`nets.rbm.DBN` and one :class:`nets.rbm.CDTrainer` per layer; the
layer-wise loop (:mod:`rlcore.training.layerwise`) trains stage i on the up-pass of the data through the RBMs
below it (Hinton, Osindero & Teh 2006: each new layer models the hidden activities of the one below). The model,
its learning rule and AIS are :mod:`nets.rbm`; this file only combines them. ``agent=rbm`` is the one-layer
DBN (configs/agent/rbm.yaml), with AIS available.

What other agents reuse: the unrolled encoder ``MLP(hidden_sizes, activation="sigmoid")`` written as encoder.pt,
loaded with ``net=mlp net.hidden_sizes=[...] net.activation=sigmoid net.pretrained=<run_dir>``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import nets
from agents.configs import DBNConfig
from nets.base import observation_shape, scale_observation
from nets.rbm import DBN, CDSettings, CDTrainer
from nets.rbm_ais import ais_betas, ais_log_partition, average_log_likelihood
from rlcore.base.validation import require


class DBNAgent:
    """Owns the DBN, the per-layer CD trainers and the generator behind every Gibbs sample."""

    def __init__(
        self, cfg: DBNConfig, observation_space: gym.Space, *, device: torch.device, seed: int = 0
    ) -> None:
        self.cfg, self.device, self.seed = cfg, device, seed
        self.input_shape = observation_shape(observation_space)
        if cfg.visible == "bernoulli" and isinstance(observation_space, gym.spaces.Box):
            pixels = observation_space.dtype == np.uint8  # scaled to [0, 1]
            bounded = bool(np.all(observation_space.low >= 0) and np.all(observation_space.high <= 1))
            require(
                pixels or bounded,
                "agent.visible",
                "Bernoulli visible units need inputs in [0, 1] (pixels); use agent.visible=gaussian "
                "(and a smaller agent.lr, e.g. 0.01) for real-valued observations",
            )
        init = torch.Generator().manual_seed(seed)  # the weights: the same seed gives the same net
        self.dbn = DBN(math.prod(self.input_shape), cfg.hidden_sizes, cfg.visible, init).to(device)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        settings = CDSettings(
            **{f.name: getattr(cfg, f.name) for f in dataclasses.fields(CDSettings) if hasattr(cfg, f.name)}
        )
        self.trainers = [CDTrainer(rbm, settings, self.generator) for rbm in self.dbn.layers]
        self.stages = [(f"rbm{i + 1}", cfg.epochs) for i in range(len(self.dbn.layers))]
        self.updates_per_epoch = 1  # set by the loop (the lr decay counts updates)
        self._updates = 0

    # -- data ---------------------------------------------------------------------------------------------
    def prepare(self, obs: torch.Tensor) -> torch.Tensor:
        """Flat float visible vectors: pixels scaled to [0, 1], sampled to {0, 1} once when ``binarize``."""
        x = scale_observation(obs.to(self.device)).flatten(1)
        if self.cfg.binarize:
            x = torch.bernoulli(
                x.clamp(0, 1), generator=torch.Generator(device=self.device).manual_seed(self.seed)
            )
        return x

    @torch.no_grad()
    def stage_inputs(self, stage: int, data: torch.Tensor) -> torch.Tensor:
        """What RBM ``stage`` models: the hidden probabilities of the RBMs below (the data itself for the first)."""
        return self.dbn.up(data, layers=stage)

    def begin_stage(self, stage: int, data: torch.Tensor, batches_per_epoch: int) -> None:
        """Visible biases from the data's marginals (Hinton 2010 section 8); the lr decay's length."""
        self.dbn.layers[stage].init_visible_bias(data)
        self.updates_per_epoch = batches_per_epoch
        self._updates = 0

    # -- learning -----------------------------------------------------------------------------------------
    def update(self, stage: int, batch: torch.Tensor) -> dict[str, float]:
        trainer = self.trainers[stage]
        if self.cfg.lr_decay:
            total = self.cfg.epochs * self.updates_per_epoch
            trainer.s = dataclasses.replace(trainer.s, lr=self.cfg.lr * (1 - self._updates / total))
        self._updates += 1
        return trainer.step(batch)

    def end_epoch(self, stage: int) -> None:
        self.trainers[stage].epoch += 1  # the momentum switch counts epochs

    @torch.no_grad()
    def evaluate(self, stage: int, data: torch.Tensor) -> dict[str, float]:
        """Held-out reconstruction error and mean free energy of RBM ``stage`` on its inputs."""
        rbm = self.dbn.layers[stage]
        error = ((data - rbm.reconstruct(data)) ** 2).sum(-1).mean()
        return {"recon_error": float(error), "free_energy": float(rbm.free_energy(data).mean())}

    # -- what the run writes -------------------------------------------------------------------------------
    def encoder(self) -> nets.MLP:
        """The unrolled up-pass: an MLP of sigmoid units equal to the stacked RBMs' hidden probabilities."""
        return self.dbn.to_mlp(self.input_shape)

    def encoder_net(self) -> dict[str, Any]:
        """The net options that rebuild :meth:`encoder` (recorded in encoder.pt, printed in summary.json)."""
        return {"name": "mlp", "hidden_sizes": list(self.cfg.hidden_sizes), "activation": "sigmoid"}

    def filters(self) -> torch.Tensor:
        """The first RBM's weights, one row per hidden unit, in the observation's shape."""
        return self.dbn.layers[0].weight.detach().reshape(-1, *self.input_shape)

    @torch.no_grad()
    def samples(self, n: int) -> torch.Tensor:
        """Visible means of ``n`` samples of the DBN's generative model (Hinton et al. 2006): Gibbs chains in the
        top RBM, then one mean-field pass down the directed layers. The chains are the top RBM's persistent
        chains after PCD; after CD, ``n`` fresh chains run from noise for 1,000 sweeps."""
        rbms = self.dbn.layers
        chains = self.trainers[-1].chains
        if chains is None:
            top = rbms[-1]
            start = torch.rand(n, top.n_visible, generator=self.generator, device=self.device)
            if top.visible == "bernoulli":
                start = torch.bernoulli(start, generator=self.generator)
            chains = top.gibbs(start, 1000, self.generator)[0]
        v = rbms[-1].visible_mean(rbms[-1].hidden_probs(chains[:n]))
        for rbm in reversed(rbms[:-1]):
            v = rbm.visible_mean(v)
        return v.reshape(-1, *self.input_shape)

    @torch.no_grad()
    def reconstruct(self, data: torch.Tensor) -> torch.Tensor:
        """Up through every layer and back down, mean-field: what the whole stack keeps of each input."""
        return self.dbn.down(self.dbn.up(data)).reshape(-1, *self.input_shape)

    @torch.no_grad()
    def final_figures(self, splits: dict[str, torch.Tensor]) -> dict[str, Any]:
        """With ``ais_runs`` > 0: AIS's log Z and the mean log-likelihood (nats) of each split."""
        cfg = self.cfg
        if cfg.ais_runs == 0:
            return {}
        rbm = self.dbn.layers[0]
        # the base-rate model: independent pixels with the training data's marginals (Salakhutdinov & Murray 2008)
        p = splits["train"].mean(0).clamp(1e-3, 1 - 1e-3)
        result = ais_log_partition(
            rbm,
            torch.log(p / (1 - p)),
            runs=cfg.ais_runs,
            betas=ais_betas(cfg.ais_steps),
            generator=self.generator,
        )
        figures: dict[str, Any] = {
            "ais_runs": cfg.ais_runs,
            "ais_steps": cfg.ais_steps,
            "ais_log_z": result.log_z,
            "ais_log_z_minus_3se": result.log_z_low,
            "ais_log_z_plus_3se": result.log_z_high,
        }
        for name, data in splits.items():
            figures[f"{name}_log_likelihood"] = average_log_likelihood(rbm, data, result.log_z)
        return figures

    # -- persistence --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "dbn": self.dbn.state_dict(),
            "trainers": [t.state_dict() for t in self.trainers],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dbn.load_state_dict(state["dbn"])
        for trainer, saved in zip(self.trainers, state["trainers"], strict=True):
            trainer.load_state_dict(saved)
        self.generator.set_state(state["generator"])
