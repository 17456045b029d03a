"""Restricted Boltzmann machines, their training by contrastive divergence, AIS, and the deep belief net.

Read top to bottom: the model (energy, conditionals, free energy, Gibbs sampling), the learning rule
(CD-k, Hinton 2002; persistent CD, Tieleman 2008; momentum, weight decay and a sparsity target as in
Hinton's "A practical guide to training RBMs", 2010), the partition function (exact by enumeration for tiny
models; annealed importance sampling, Salakhutdinov & Murray 2008), then the DBN (Hinton, Osindero & Teh 2006):
a stack of RBMs trained greedily, unrolled into an MLP encoder of sigmoid units that any agent loads with
``net.pretrained=``.

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


# ---------------------------------------------------------------------------------- the partition function


def exact_log_partition(rbm: RBM) -> torch.Tensor:
    """log Z by summing over every hidden state (2^hidden terms): the reference for tiny Bernoulli RBMs."""
    if rbm.visible != "bernoulli" or rbm.n_hidden > 20:
        raise ValueError(
            "exact log Z enumerates 2^hidden states of a Bernoulli RBM; use at most 20 hidden units"
        )
    n = rbm.n_hidden
    states = ((torch.arange(2**n)[:, None] >> torch.arange(n)) & 1).to(rbm.weight.dtype)
    # sum_v exp(-E(v, h)) factorises over visible units: exp(c.h) prod_i (1 + exp(b_i + W_:i . h))
    terms = states @ rbm.hidden_bias + F.softplus(states @ rbm.weight + rbm.visible_bias).sum(-1)
    return torch.logsumexp(terms, 0)


def ais_betas(n_intermediate: int = 14_500) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1. Salakhutdinov & Murray 2008 (section 4.2) use 500 steps
    of 1e-3 in [0, 0.5], 4,000 of 1e-4 in [0.5, 0.9] and 10,000 of 1e-5 in [0.9, 1] (K = 14,500); another K
    keeps those proportions."""
    parts = [(0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000)]
    scale = n_intermediate / 14_500
    pieces = [
        torch.linspace(lo, hi, max(1, round(n * scale)) + 1, dtype=torch.float64)[:-1] for lo, hi, n in parts
    ]
    return torch.cat([*pieces, torch.ones(1, dtype=torch.float64)])


@dataclass
class AISResult:
    log_z: float  # log of the mean importance weight, plus log Z of the base-rate model
    log_z_low: float  # log(mean - 3 std_err) and log(mean + 3 std_err) of the weights, as Salakhutdinov & Murray report
    log_z_high: float
    log_weights: torch.Tensor


@torch.no_grad()
def ais_log_partition(
    rbm: RBM,
    base_visible_bias: torch.Tensor,
    runs: int = 100,
    betas: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> AISResult:
    """Annealed importance sampling estimate of log Z (Salakhutdinov & Murray 2008, section 4.1).

    The base model A has no weights and the visible biases ``base_visible_bias`` (the data's marginals make a
    good start), so log Z_A = sum_i softplus(b^A_i) + H log 2. The intermediate models are
    p_k(v) ∝ exp((1 - beta_k) b^A . v + beta_k b . v) prod_j (1 + exp(beta_k (c_j + W_j . v))), moved between by
    one Gibbs sweep each; ``runs`` independent chains give the importance weights.
    """
    if rbm.visible != "bernoulli":
        raise ValueError(
            "AIS here anneals from a Bernoulli base-rate model: it needs Bernoulli visible units"
        )
    betas = ais_betas() if betas is None else betas
    w, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
    b_a = base_visible_bias.detach().to(w)
    visible_gap = (b - b_a).double()
    # The matrix products run in the RBM's dtype; the log weights add up in float64 from the per-step
    # difference log p*_k(v) - log p*_{k-1}(v) = (beta_k - beta_{k-1}) v.(b - b^A)
    #   + sum_j [softplus(beta_k x_j) - softplus(beta_{k-1} x_j)],  x = c + W v  (one product per step).
    v = torch.bernoulli(torch.sigmoid(b_a).expand(runs, -1).contiguous(), generator=generator)
    log_w = torch.zeros(runs, dtype=torch.float64, device=w.device)
    for prev, beta in zip(betas[:-1].tolist(), betas[1:].tolist(), strict=True):
        x = F.linear(v, w, c).double()
        log_w += (beta - prev) * (v.double() @ visible_gap)
        log_w += (F.softplus(beta * x) - F.softplus(prev * x)).sum(-1)
        h = torch.bernoulli(torch.sigmoid(beta * x), generator=generator).to(w)
        v = torch.bernoulli(torch.sigmoid((1 - beta) * b_a + beta * (h @ w + b)), generator=generator)
    log_z_a = float(F.softplus(b_a.double()).sum()) + rbm.n_hidden * math.log(2.0)
    log_mean = torch.logsumexp(log_w, 0) - math.log(runs)
    # spread: the weights relative to their maximum, so exp() cannot overflow; mean - 3 s.e. <= 0 gives -inf
    shifted = torch.exp(log_w - log_w.max())
    mean = shifted.mean()
    err = shifted.std() / math.sqrt(runs) if runs > 1 else torch.zeros((), dtype=torch.float64)
    low = torch.log(mean - 3 * err) if mean > 3 * err else torch.tensor(-math.inf, dtype=torch.float64)
    low, high = low + log_w.max(), torch.log(mean + 3 * err) + log_w.max()
    return AISResult(
        log_z=float(log_z_a + log_mean),
        log_z_low=float(log_z_a + low),
        log_z_high=float(log_z_a + high),
        log_weights=log_w.cpu(),
    )


@torch.no_grad()
def average_log_likelihood(rbm: RBM, data: torch.Tensor, log_z: float, batch_size: int = 1000) -> float:
    """Mean log p(v) = -F(v) - log Z over ``data`` (nats per example)."""
    total = 0.0
    for start in range(0, len(data), batch_size):
        total += float(-rbm.free_energy(data[start : start + batch_size].to(rbm.weight.dtype)).double().sum())
    return total / len(data) - log_z


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
