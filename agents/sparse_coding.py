"""``agent=sparse_coding``: learn a dictionary with an L1 penalty, then a LISTA encoder that predicts its codes.

Two stages of the layer-wise loop (:mod:`rlcore.training.layerwise`):

1. ``dictionary``: per batch, FISTA infers the codes with the dictionary fixed, then one gradient step on the
   dictionary and unit-norm atoms (Olshausen & Field 1996; the math is :mod:`nets.sparse_coding`);
2. ``lista``: the learned encoder starts as ``iterations + 1`` steps of ISTA (Gregor & LeCun 2010, section 3) and
   is fitted by Adam to FISTA's codes (squared error), so a fixed, small number of layers gives codes close to
   the full inference's.

What other agents reuse: the LISTA encoder, written as encoder.pt and loaded with
``net=lista net.atoms=<atoms> net.iterations=<lista_iterations> net.pretrained=<run_dir>``.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F

from agents.configs import SparseCodingConfig
from nets.base import observation_shape, scale_observation
from nets.sparse_coding import LISTA, dictionary_step, ista, normalize_atoms, objective


class SparseCodingAgent:
    """Owns the dictionary (features x atoms), the LISTA encoder and its optimizer."""

    def __init__(
        self, cfg: SparseCodingConfig, observation_space: gym.Space, *, device: torch.device, seed: int = 0
    ) -> None:
        self.cfg, self.device = cfg, device
        self.input_shape = observation_shape(observation_space)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        features = math.prod(self.input_shape)
        self.dictionary = normalize_atoms(
            torch.randn(features, cfg.atoms, generator=self.generator, device=device)
        )
        self.lista = LISTA(self.input_shape, atoms=cfg.atoms, iterations=cfg.lista_iterations).to(device)
        self.optimizer = torch.optim.Adam(self.lista.parameters(), lr=cfg.lista_lr)
        self.stages = [("dictionary", cfg.epochs), ("lista", cfg.lista_epochs)]

    # -- data ---------------------------------------------------------------------------------------------
    def prepare(self, obs: torch.Tensor) -> torch.Tensor:
        return scale_observation(obs.to(self.device)).flatten(1)

    def stage_inputs(self, stage: int, data: torch.Tensor) -> torch.Tensor:
        return data  # both stages see the observations

    def begin_stage(self, stage: int, data: torch.Tensor, batches_per_epoch: int) -> None:
        """Stage 0: atoms start as random training examples (normalised); stage 1: LISTA starts as ISTA."""
        if stage == 0:
            pick = torch.randint(len(data), (self.cfg.atoms,), generator=self.generator, device=data.device)
            start = data[pick].T + 0.01 * torch.randn(
                data.shape[1], self.cfg.atoms, generator=self.generator, device=data.device
            )
            self.dictionary = normalize_atoms(start)
        else:
            self.lista.init_from_dictionary(self.dictionary, self.cfg.lam)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """FISTA's codes under the current dictionary."""
        return ista(x, self.dictionary, self.cfg.lam, self.cfg.inference_steps, fast=True)

    # -- learning -----------------------------------------------------------------------------------------
    def update(self, stage: int, batch: torch.Tensor) -> dict[str, float]:
        z = self.codes(batch)
        if stage == 0:
            figures = self._figures(batch, z)
            self.dictionary = dictionary_step(batch, self.dictionary, z, self.cfg.lr)
            return figures
        loss = F.mse_loss(self.lista.extract(batch), z, reduction="none").sum(-1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"lista_code_error": float(loss.detach())}

    def end_epoch(self, stage: int) -> None:
        """Nothing per epoch: the dictionary step and Adam run per batch."""

    def _figures(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        return {
            "objective": float(objective(x, self.dictionary, z, self.cfg.lam).mean()),
            "recon_error": float(((x - z @ self.dictionary.T) ** 2).sum(-1).mean()),
            "active_fraction": float((z != 0).float().mean()),
        }

    @torch.no_grad()
    def evaluate(self, stage: int, data: torch.Tensor) -> dict[str, float]:
        """Held-out objective, reconstruction error and share of non-zero codes; LISTA's as well in stage 1."""
        z = self.codes(data)
        out = self._figures(data, z)
        if stage == 1:
            predicted = self.lista.extract(data)
            out["lista_code_error"] = float(((predicted - z) ** 2).sum(-1).mean())
            out["lista_objective"] = float(objective(data, self.dictionary, predicted, self.cfg.lam).mean())
        return out

    # -- what the run writes -------------------------------------------------------------------------------
    def encoder(self) -> LISTA:
        return self.lista

    def encoder_net(self) -> dict[str, Any]:
        return {"name": "lista", "atoms": self.cfg.atoms, "iterations": self.cfg.lista_iterations}

    def filters(self) -> torch.Tensor:
        """The atoms, in the observation's shape."""
        return self.dictionary.T.reshape(-1, *self.input_shape)

    def samples(self, n: int) -> None:
        """Sparse coding is not a sampler: no sample picture."""
        return None

    @torch.no_grad()
    def reconstruct(self, data: torch.Tensor) -> torch.Tensor:
        return (self.codes(data) @ self.dictionary.T).reshape(-1, *self.input_shape)

    @torch.no_grad()
    def final_figures(self, splits: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The held-out objective of FISTA's codes and of LISTA's (how close the fast encoder gets)."""
        figures: dict[str, Any] = {}
        for name in ("val", "test"):
            if name in splits:
                data = splits[name][:10_000]
                z, predicted = self.codes(data), self.lista.extract(data)
                figures[f"{name}_objective_fista"] = float(
                    objective(data, self.dictionary, z, self.cfg.lam).mean()
                )
                figures[f"{name}_objective_lista"] = float(
                    objective(data, self.dictionary, predicted, self.cfg.lam).mean()
                )
                figures[f"{name}_active_fraction"] = float((z != 0).float().mean())
        return figures

    # -- persistence --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "dictionary": self.dictionary,
            "lista": self.lista.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dictionary = state["dictionary"].to(self.device).clone()
        self.lista.load_state_dict(state["lista"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
