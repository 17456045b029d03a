"""The partition function of an RBM: exact by enumeration for tiny models, and annealed importance sampling
(Salakhutdinov & Murray 2008) for real ones; with log Z, the mean log-likelihood -F(v) - log Z of a data set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nets.rbm import RBM


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
