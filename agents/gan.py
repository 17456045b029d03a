"""A DCGAN-style generative adversarial network (Goodfellow et al. 2014; Radford et al. 2015) on image observations.

Read top to bottom: the agent builds the discriminator from the ``net`` group (any stateless extractor of
:mod:`nets`, so ``net.pretrained=`` and the net's options apply to it) and the generator as that extractor's
mirror (:class:`nets.gan.Generator`); ``update`` is one discriminator step then one generator step on the
pure losses of :mod:`nets.gan`. With ``agent.conditional=true`` both see the class: the generator gets it as a
one-hot input, the discriminator as a projection term (Miyato & Koyama 2018). The loop that feeds it, draws
the sample grids and writes ``encoder.pt`` (the discriminator's extractor, for ``net.pretrained=<run>``) is
:mod:`rlcore.training.gan`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import nets
from agents.configs import GANConfig
from nets.gan import Discriminator, Generator, discriminator_loss, generator_loss
from rlcore.base.errors import ConfigError, RLCoreError
from rlcore.base.validation import require


class GANAgent:
    """Owns G, D and their Adam optimizers; ``update(images, labels)`` is one D step and one G step."""

    def __init__(
        self,
        cfg: GANConfig,
        net_cfg: object,
        observation_space: gym.Space,
        action_space: gym.Space | None,
        *,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        require(
            not getattr(net_cfg, "freeze", False),
            "net.freeze",
            "a GAN trains its discriminator; drop net.freeze (use it in the agent that reuses the features)",
        )
        n_classes = int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else 0
        require(
            not cfg.conditional or n_classes > 1,
            "agent.conditional",
            "a class-conditional GAN needs a labelled dataset env (env=MNIST or env=Digits)",
        )
        extractor = nets.build_extractor(net_cfg, observation_space)  # net.pretrained= continues from it
        if extractor.is_recurrent:
            raise ConfigError(
                f"config key 'net.name': a discriminator needs a stateless extractor, not "
                f"{getattr(net_cfg, 'name', '?')!r}; use net=lenet5, net=vgg or net=mlp"
            )
        classes = n_classes if cfg.conditional else 0
        try:
            generator = Generator(extractor, cfg.z_dim, classes)
        except TypeError as exc:
            raise ConfigError(f"config key 'net.name': {exc}") from None
        self.cfg = cfg
        self.device = device
        self.n_classes = classes
        self.discriminator = Discriminator(extractor, classes).to(device)
        self.generator = generator.to(device)
        betas = (cfg.beta1, 0.999)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d, betas=betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=betas)
        self.rng = torch.Generator(device=device).manual_seed(seed)  # noise and fake labels

    @property
    def encoder(self) -> nets.FeatureExtractor:
        """The discriminator's extractor: what other agents reuse (``encoder.pt``, Radford et al. 2015 sec. 5.1)."""
        return self.discriminator.extractor

    # stateless, and no policy: the per-env hooks of the Actor protocol do nothing
    recurrent = False

    def reset_state(self, starts: np.ndarray) -> None:
        """Nothing to reset."""

    def swap_state(self, state: object = None) -> object:
        return None

    def act(
        self,
        obs: np.ndarray,
        explore: bool = True,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        raise RLCoreError("a GAN run has no policy; reuse its discriminator via net.pretrained=<run_dir>")

    # -- sampling ----------------------------------------------------------------------------------------
    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, generator=self.rng, device=self.device)

    def fake_labels(self, n: int) -> torch.Tensor | None:
        """Uniform classes for the fakes of a conditional GAN (None when unconditional)."""
        if not self.n_classes:
            return None
        return torch.randint(self.n_classes, (n,), generator=self.rng, device=self.device)

    @torch.no_grad()
    def sample(
        self, n: int, labels: torch.Tensor | None = None, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` generated images in [0, 1] (eval mode: batch-norm running statistics) and their classes."""
        z = self.noise(n) if z is None else z.to(self.device)
        if labels is None:
            labels = self.fake_labels(n)
        elif not self.n_classes:
            raise ValueError("an unconditional generator takes no labels")
        self.generator.eval()
        images = self.generator(z, None if labels is None else labels.to(self.device))
        self.generator.train()
        return images, labels

    # -- learning ----------------------------------------------------------------------------------------
    def update(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One discriminator step on real ``images`` (and their ``labels`` when conditional) against fresh
        fakes, then one generator step; returns detached metrics (tensors: no device sync)."""
        cfg, n = self.cfg, images.shape[0]
        real_labels = labels if self.n_classes else None
        if self.n_classes and labels is None:
            raise ValueError("a conditional GAN needs the labels of the real images")
        fake_labels = self.fake_labels(n)
        fakes = self.generator(self.noise(n), fake_labels)

        real_logits = self.discriminator(images, real_labels)
        fake_logits = self.discriminator(fakes.detach(), fake_labels)
        d_loss = discriminator_loss(real_logits, fake_logits, cfg.real_target)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        g_loss = generator_loss(self.discriminator(fakes, fake_labels), cfg.loss)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()  # D's gradients from this pass are cleared by its next zero_grad
        self.opt_g.step()
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
        }

    # -- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
