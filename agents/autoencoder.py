"""Autoencoder pretraining of a feature extractor, so that any agent can start from (or freeze) its encoder.

Read top to bottom: the config schema, then the agent. The modules, losses and corruptions are the pure
functions of :mod:`nets.autoencoder`; this file only combines them. The loop that feeds it (collecting
frames, epochs, validation, writing ``encoder.pt``) is :mod:`rlcore.training.pretraining`.

Variants, all switched by config keys and freely combined:

* plain: reconstruct the observation (``loss: mse`` or ``bce`` on pixels scaled to [0, 1]);
* sparse: L1 penalty on the code (``l1_activity``) and/or KL(rho || mean activation) on sigmoid codes
  (``kl_weight``, ``rho``; Ng, CS294A "Sparse autoencoder" notes);
* denoising (Vincent et al. 2008): encode ``corrupt(x)`` and reconstruct the clean ``x``
  (``noise: gaussian`` with ``noise_std``, or ``masking`` with ``mask_prob``);
* geometric corruption: the encoder sees a randomly rotated, zoomed and shifted copy (``warp_degrees``,
  ``warp_scale``, ``warp_shift``; before any noise) and the decoder rebuilds the image as it was, so the codes
  learn that a slightly moved digit is the same digit (image observations; benchmarks/mnist.py);
* L2-regularised: Adam's coupled ``weight_decay`` and/or an explicit penalty ``l2_weight * sum ||W||^2``
  (logged, so its size is visible next to the reconstruction loss);
* stacked (Bengio et al. 2007; Vincent et al. 2010 when denoising): greedy layer-wise pretraining of an MLP
  encoder, ``layerwise_epochs`` per hidden layer, before end-to-end fine-tuning of the whole autoencoder.

Dense decoders mirror MLP encoders and transposed-conv decoders mirror CNN encoders (``nets.build_decoder``).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import nets
from agents.augment import random_affine, require_image_shift
from agents.configs import AutoencoderConfig
from nets.autoencoder import (
    Autoencoder,
    gaussian_noise,
    kl_sparsity_penalty,
    l1_activity_penalty,
    l2_weight_penalty,
    masking_noise,
    pretrain_stacked,
    reconstruction_loss,
)
from rlcore.base.errors import ConfigError, RLCoreError
from rlcore.base.validation import require


def _ends_in_sigmoid(encoder: nn.Module) -> bool:
    """Whether the code is a sigmoid output (the last layer that is not dropout), as the KL penalty needs."""
    leaves = [m for m in encoder.modules() if not list(m.children()) and not isinstance(m, nn.Dropout)]
    return bool(leaves) and isinstance(leaves[-1], nn.Sigmoid)


class AutoencoderAgent:
    """Owns the autoencoder and its optimizer; ``update`` takes a batch of raw observations (one Adam step)."""

    def __init__(
        self,
        cfg: AutoencoderConfig,
        net_cfg: object,
        observation_space: gym.Space,
        *,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        require(
            not getattr(net_cfg, "freeze", False),
            "net.freeze",
            "an autoencoder run trains its encoder; drop net.freeze (use it in the agent that reuses the encoder)",
        )
        encoder = nets.build_extractor(
            net_cfg, observation_space
        )  # net.pretrained= continues from an encoder
        if encoder.is_recurrent:
            raise ConfigError(
                f"config key 'net.name': an autoencoder needs a stateless encoder, not {getattr(net_cfg, 'name', '?')!r}; "
                "pretrain the per-frame encoder (e.g. net=nature_cnn) and pass it via net.encoder_kwargs.pretrained"
            )
        try:
            model = Autoencoder(encoder)
        except TypeError as exc:
            raise ConfigError(f"config key 'net.name': {exc}") from None
        if cfg.kl_weight > 0:
            require(
                _ends_in_sigmoid(encoder),
                "agent.kl_weight",
                "the KL sparsity penalty needs sigmoid codes in (0, 1); use net=mlp net.activation=sigmoid",
            )
        if cfg.stacked:
            require(
                isinstance(encoder, nets.MLP) and bool(encoder.blocks),
                "agent.stacked",
                "greedy layer-wise pretraining needs an MLP encoder with hidden layers (net=mlp)",
            )
        if (
            cfg.loss == "bce"
            and isinstance(observation_space, gym.spaces.Box)
            and observation_space.dtype != np.uint8
        ):
            bounded = bool(np.all(observation_space.low >= 0) and np.all(observation_space.high <= 1))
            require(
                bounded, "agent.loss", "bce needs targets in [0, 1] (pixel observations); use agent.loss=mse"
            )
        self.warps = bool(cfg.warp_degrees or cfg.warp_scale or cfg.warp_shift)
        if self.warps:
            require_image_shift(
                observation_space.shape or (), cfg.warp_shift, "agent.warp_degrees/warp_scale/warp_shift"
            )
        self.cfg = cfg
        self.device = device
        self.model = model.to(device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator(device=device).manual_seed(seed)  # corruption noise
        self.warp_generator = torch.Generator().manual_seed(seed)  # random_affine draws its warps on the CPU
        self.seed = seed

    @property
    def encoder(self) -> nets.FeatureExtractor:
        """The part other agents reuse (``nets.save_encoder`` writes it as encoder.pt)."""
        return self.model.encoder

    # stateless: the per-env state hooks of the Actor protocol (rlcore.base.protocols) do nothing
    recurrent = False

    def reset_state(self, starts: np.ndarray) -> None:
        """Nothing to reset: each answer depends on its observation alone."""

    def swap_state(self, state: object = None) -> object:
        return None

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        raise RLCoreError("an autoencoder run has no policy; use its encoder via net.pretrained=<run_dir>")

    # -- the loss ----------------------------------------------------------------------------------------
    def corrupt(self, clean: torch.Tensor) -> torch.Tensor:
        """The denoising autoencoder's input: the *scaled* observation warped, then noised (Vincent et al. 2008)."""
        cfg = self.cfg
        return self.noise(
            random_affine(clean, cfg.warp_degrees, cfg.warp_scale, cfg.warp_shift, self.warp_generator)
        )

    def noise(self, clean: torch.Tensor) -> torch.Tensor:
        """``agent.noise`` alone: what the layer-wise phase applies to the codes of the layer below."""
        if self.cfg.noise == "gaussian":
            return gaussian_noise(clean, self.cfg.noise_std, self.generator)
        if self.cfg.noise == "masking":
            return masking_noise(clean, self.cfg.mask_prob, self.generator)
        return clean

    def losses(self, obs: torch.Tensor, corrupt: bool = True) -> dict[str, torch.Tensor]:
        """``loss`` (what is minimised), ``recon_loss`` and each active penalty term (unweighted)."""
        cfg = self.cfg
        target = self.model.target(obs)
        # scale_observation leaves floats alone, so the encoder sees the corrupted [0, 1] input as is
        corrupted = corrupt and (cfg.noise != "none" or self.warps)
        reconstruction, code = self.model(self.corrupt(target) if corrupted else obs)
        out = {"recon_loss": reconstruction_loss(reconstruction, target, cfg.loss)}
        loss = out["recon_loss"]
        if cfg.l1_activity > 0:
            out["l1_activity"] = l1_activity_penalty(code)
            loss = loss + cfg.l1_activity * out["l1_activity"]
        if cfg.kl_weight > 0:
            out["kl_sparsity"] = kl_sparsity_penalty(code, cfg.rho)
            loss = loss + cfg.kl_weight * out["kl_sparsity"]
        if cfg.l2_weight > 0:
            out["l2_weight"] = l2_weight_penalty(self.model)
            loss = loss + cfg.l2_weight * out["l2_weight"]
        out["loss"] = loss
        return out

    # -- learning ----------------------------------------------------------------------------------------
    def update(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on a batch of raw observations; returns detached metrics (tensors: no GPU sync)."""
        self.model.train()
        terms = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def validation_loss(self, obs: torch.Tensor, batch_size: int = 512) -> float:
        """Mean reconstruction loss of clean inputs in eval mode (BN running statistics, no dropout)."""
        self.model.eval()
        total = 0.0
        for start in range(0, obs.shape[0], batch_size):
            chunk = obs[start : start + batch_size]
            total += self.losses(chunk, corrupt=False)["recon_loss"].item() * chunk.shape[0]
        self.model.train()
        return total / obs.shape[0]

    @torch.no_grad()
    def reconstruct(self, obs: torch.Tensor) -> torch.Tensor:
        """Reconstructions in the target's units (a sigmoid undoes the BCE logits)."""
        self.model.eval()
        reconstruction, _ = self.model(obs)
        self.model.train()
        return torch.sigmoid(reconstruction) if self.cfg.loss == "bce" else reconstruction

    def pretrain_layerwise(self, data: torch.Tensor) -> list[list[float]]:
        """Greedy layer-wise phase of a stacked (denoising) autoencoder; per hidden layer, MSE per epoch.

        Each hidden layer learns to reconstruct the (corrupted, when denoising) codes of the layer below
        (Bengio et al. 2007; Vincent et al. 2010). ``nets.pretrain_stacked`` trains with its own Adam, so
        the end-to-end optimizer starts fresh afterwards.
        """
        corruption: Callable[[torch.Tensor], torch.Tensor] | None = (
            self.noise if self.cfg.noise != "none" else None
        )
        return pretrain_stacked(
            self.encoder,  # type: ignore[arg-type]
            data,
            epochs=self.cfg.layerwise_epochs,
            lr=self.cfg.lr,
            batch_size=self.cfg.batch_size,
            corruption=corruption,
            seed=self.seed,
        )

    # -- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "warp_generator": self.warp_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if "warp_generator" in state:  # checkpoints written before the warp keys existed have none
            self.warp_generator.set_state(state["warp_generator"])
