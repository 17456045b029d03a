"""Restricted Boltzmann machines, their training by contrastive divergence, and the deep belief net.

Read top to bottom: the model (energy, conditionals, free energy, Gibbs sampling), the learning rule
(CD-k, Hinton 2002; persistent CD, Tieleman 2008; momentum, weight decay and a sparsity target as in
Hinton's "A practical guide to training RBMs", 2010), then the DBN (Hinton, Osindero & Teh 2006):
a stack of RBMs trained greedily, unrolled into an MLP encoder of sigmoid units that any agent loads with
``net.pretrained=``. The partition function (exact, and AIS) is :mod:`nets.rbm_ais`.

Conventions: ``weight`` has shape (hidden, visible), as ``nn.Linear`` stores it, so the unrolled layer copies
it unchanged; visible inputs are flat floats in [0, 1] for Bernoulli units (grey values act as probabilities,
Hinton 2010 section 3.2) or real numbers for the Gaussian visible layer, whose variance is fixed at 1 (Hinton
2010 section 13.2: standardise the data and keep sigma = 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nets.mlp import MLP

VISIBLE_UNITS = ("bernoulli", "gaussian")


class RBM(nn.Module):
    """Energy E(v, h) = -b.v - c.h - h.W.v (Bernoulli) or ||v - b||^2 / 2 - c.h - h.W.v (Gaussian, sigma 1)."""

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        visible: str = "bernoulli",
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if visible not in VISIBLE_UNITS:
            raise ValueError(f"unknown visible units {visible!r}; choose one of {list(VISIBLE_UNITS)}")
        if n_visible <= 0 or n_hidden <= 0:
            raise ValueError(
                f"an RBM needs positive layer sizes, got {n_visible} visible and {n_hidden} hidden"
            )
        self.visible = visible
        # Hinton 2010 section 8: small random weights N(0, 0.01^2), zero hidden biases
        self.weight = nn.Parameter(torch.randn(n_hidden, n_visible, generator=generator) * init_std)
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))

    @property
    def n_visible(self) -> int:
        return self.weight.shape[1]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[0]

    def init_visible_bias(self, data: torch.Tensor) -> None:
        """Bernoulli: b_i = log(p_i / (1 - p_i)) of the data's marginals (Hinton 2010 section 8); Gaussian: the mean."""
        with torch.no_grad():
            mean = data.float().mean(0)
            if self.visible == "bernoulli":
                p = mean.clamp(1e-3, 1 - 1e-3)
                self.visible_bias.copy_(torch.log(p / (1 - p)))
            else:
                self.visible_bias.copy_(mean)

    # -- conditionals -------------------------------------------------------------------------------------
    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return F.linear(v, self.weight, self.hidden_bias)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) = sigmoid(c_j + W_j . v): the deterministic up-pass of the DBN."""
        return torch.sigmoid(self.hidden_input(v))

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h]: sigmoid(b + W^T h) for Bernoulli units, b + W^T h for Gaussian ones."""
        mean = h @ self.weight + self.visible_bias
        return torch.sigmoid(mean) if self.visible == "bernoulli" else mean

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.hidden_probs(v), generator=generator)

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean = self.visible_mean(h)
        if self.visible == "bernoulli":
            return torch.bernoulli(mean, generator=generator)
        return mean + torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)), per sample: p(v) = exp(-F(v)) / Z."""
        hidden = F.softplus(self.hidden_input(v)).sum(-1)
        if self.visible == "bernoulli":
            return -(v @ self.visible_bias) - hidden
        return 0.5 * ((v - self.visible_bias) ** 2).sum(-1) - hidden

    def gibbs(
        self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` full sweeps v -> h -> v from ``v``; returns the last visible sample and p(h | it)."""
        for _ in range(steps):
            v = self.sample_visible(self.sample_hidden(v, generator), generator)
        return v, self.hidden_probs(v)

    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """Mean-field reconstruction E[v | p(h | v)], the usual (if rough) monitor of CD training."""
        return self.visible_mean(self.hidden_probs(v))


# ------------------------------------------------------------------------------------------ learning rule


def log_likelihood_gradient(
    rbm: RBM, v_data: torch.Tensor, v_model: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """<.>_data - <.>_model for (W, b, c), with the model side estimated from the samples ``v_model``.

    Uses p(h | v) rather than sampled hiddens on both sides (Hinton 2010 section 3.3: less sampling noise).
    Gaussian units (sigma 1) have the same statistics v and h.
    """
    h_data, h_model = rbm.hidden_probs(v_data), rbm.hidden_probs(v_model)
    d_weight = h_data.T @ v_data / len(v_data) - h_model.T @ v_model / len(v_model)
    d_visible = v_data.mean(0) - v_model.mean(0)
    d_hidden = h_data.mean(0) - h_model.mean(0)
    return d_weight, d_visible, d_hidden


@dataclass
class CDSettings:
    """One RBM's learning settings (Hinton 2010: lr 0.1 for Bernoulli units, 0.001-0.01 for Gaussian ones)."""

    lr: float = 0.1
    k: int = 1  # Gibbs sweeps per negative phase
    persistent: bool = (
        False  # PCD (Tieleman 2008): chains carry over between updates instead of restarting at the data
    )
    chains: int = 100  # persistent chains (PCD); CD starts one chain per training example
    momentum: float = 0.5  # Hinton 2010 section 9: 0.5 at first, 0.9 once the reconstruction error settles
    final_momentum: float = 0.9
    momentum_switch: int = 5  # epochs (counted by the caller) before momentum goes to final_momentum
    weight_decay: float = 2e-4  # L2 on the weights only (Hinton 2010 section 10)
    sparsity_target: float = (
        0.0  # > 0: push each hidden unit's mean activation towards it (Hinton 2010 section 11)
    )
    sparsity_cost: float = 0.0
    sparsity_decay: float = 0.95  # of the running estimate q of each unit's activation


class CDTrainer:
    """Applies CD-k / PCD-k updates to one RBM; holds the velocities, the persistent chains and the sparsity estimate."""

    def __init__(self, rbm: RBM, settings: CDSettings, generator: torch.Generator) -> None:
        self.rbm, self.s, self.generator = rbm, settings, generator
        self.velocity = [torch.zeros_like(p) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
        self.chains: torch.Tensor | None = None  # PCD's fantasy particles
        self.activity = torch.full((rbm.n_hidden,), settings.sparsity_target, device=rbm.weight.device)
        self.epoch = 0

    def negative_samples(self, batch: torch.Tensor) -> torch.Tensor:
        """CD-k starts its chains at the data; PCD continues its own chains by k sweeps."""
        s, rbm = self.s, self.rbm
        if not s.persistent:
            return rbm.gibbs(batch, s.k, self.generator)[0]
        if self.chains is None:  # the chains start at (sampled) training data, as Tieleman 2008 did
            start = batch[
                torch.randint(len(batch), (s.chains,), generator=self.generator, device=batch.device)
            ]
            self.chains = (
                torch.bernoulli(start, generator=self.generator) if rbm.visible == "bernoulli" else start
            )
        self.chains = rbm.gibbs(self.chains, s.k, self.generator)[0]
        return self.chains

    @torch.no_grad()
    def step(self, batch: torch.Tensor) -> dict[str, float]:
        """One update on a batch of flat visible vectors; returns the batch's reconstruction error (squared, per sample)."""
        s, rbm = self.s, self.rbm
        negative = self.negative_samples(batch)
        d_weight, d_visible, d_hidden = log_likelihood_gradient(rbm, batch, negative)
        d_weight = d_weight - s.weight_decay * rbm.weight
        if (
            s.sparsity_cost > 0
        ):  # the penalty's derivative w.r.t. a unit's total input is q - p (Hinton 2010 11.2)
            q = rbm.hidden_probs(batch).mean(0)
            self.activity = s.sparsity_decay * self.activity + (1 - s.sparsity_decay) * q
            push = s.sparsity_cost * (self.activity - s.sparsity_target)
            d_hidden = d_hidden - push
            d_weight = d_weight - push[:, None] * batch.mean(0)[None, :]
        momentum = s.momentum if self.epoch < s.momentum_switch else s.final_momentum
        for param, velocity, grad in zip(
            (rbm.weight, rbm.visible_bias, rbm.hidden_bias),
            self.velocity,
            (d_weight, d_visible, d_hidden),
            strict=True,
        ):
            velocity.mul_(momentum).add_(grad, alpha=s.lr)
            param.add_(velocity)  # ascent on the log-likelihood
        error = ((batch - rbm.reconstruct(batch)) ** 2).sum(-1).mean()
        return {"recon_error": float(error)}

    def state_dict(self) -> dict:
        return {
            "velocity": self.velocity,
            "chains": self.chains,
            "activity": self.activity,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.velocity = [v.clone() for v in state["velocity"]]
        self.chains = None if state["chains"] is None else state["chains"].clone()
        self.activity = state["activity"].clone()
        self.epoch = int(state["epoch"])


# ------------------------------------------------------------------------------------ the deep belief net


class DBN(nn.Module):
    """A stack of RBMs, each one's visible layer the hidden layer of the one below (Hinton et al. 2006).

    Only the bottom RBM may have Gaussian visible units; the layers above see hidden probabilities in [0, 1].
    """

    def __init__(
        self,
        n_visible: int,
        hidden_sizes: Sequence[int],
        visible: str = "bernoulli",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [int(n_visible), *(int(h) for h in hidden_sizes)]
        if len(sizes) < 2:
            raise ValueError("a DBN needs at least one hidden layer")
        self.rbms = nn.ModuleList(
            RBM(n_in, n_out, visible if i == 0 else "bernoulli", generator=generator)
            for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False))
        )

    @property
    def layers(self) -> list[RBM]:
        """The RBMs bottom-up, typed (``nn.ModuleList`` items are plain modules to a type checker)."""
        return [rbm for rbm in self.rbms if isinstance(rbm, RBM)]

    @property
    def hidden_sizes(self) -> list[int]:
        return [rbm.n_hidden for rbm in self.layers]

    def up(self, v: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """Hidden probabilities after the first ``layers`` RBMs (all by default): the recognition pass."""
        for rbm in self.layers[: len(self.rbms) if layers is None else layers]:
            v = rbm.hidden_probs(v)
        return v

    def down(self, h: torch.Tensor) -> torch.Tensor:
        """Mean-field generative pass from the top hidden layer to the visible units."""
        for rbm in reversed(self.layers):
            h = rbm.visible_mean(h)
        return h

    def to_mlp(self, input_shape: Sequence[int]) -> MLP:
        """The unrolled encoder: ``MLP(hidden_sizes, activation="sigmoid")`` whose layer i is RBM i's up-pass."""
        mlp = MLP(tuple(input_shape), hidden_sizes=self.hidden_sizes, activation="sigmoid")
        if math.prod(mlp.input_shape) != self.layers[0].n_visible:
            raise ValueError(
                f"input shape {tuple(input_shape)} does not flatten to {self.layers[0].n_visible} visible units"
            )
        with torch.no_grad():
            for block, rbm in zip(mlp.blocks, self.layers, strict=True):
                linear = block[0]
                assert isinstance(linear, nn.Linear)  # MLP blocks start with their Linear
                linear.weight.copy_(rbm.weight)
                linear.bias.copy_(rbm.hidden_bias)
        return mlp
