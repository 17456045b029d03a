"""Sparse coding (Olshausen & Field 1996): a dictionary of unit-norm atoms, L1-sparse codes inferred by ISTA/FISTA,
and LISTA (Gregor & LeCun 2010), the feed-forward encoder trained to predict those codes in a few layers.

Objective per example x (flat, in the dictionary's units): f(z) = ||x - D z||^2 / 2 + lam ||z||_1, with the atoms
the columns of D (shape (features, atoms)). Inference minimises f over z with D fixed; learning takes a gradient
step on D with the codes fixed and puts every atom back on the unit sphere (without the norm constraint the L1
term could be made arbitrarily small by growing D and shrinking z).
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from nets.base import FeatureExtractor, flat_size, observation_shape


def soft_threshold(x: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """The proximal operator of threshold * ||.||_1: sign(x) max(|x| - threshold, 0)."""
    return torch.sign(x) * F.relu(x.abs() - threshold)


def objective(x: torch.Tensor, dictionary: torch.Tensor, codes: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-example ||x - D z||^2 / 2 + lam ||z||_1."""
    residual = x - codes @ dictionary.T
    return 0.5 * (residual**2).sum(-1) + lam * codes.abs().sum(-1)


def lipschitz(dictionary: torch.Tensor) -> torch.Tensor:
    """L = largest eigenvalue of D^T D, the Lipschitz constant of the smooth part's gradient (ISTA's step is 1/L)."""
    return torch.linalg.matrix_norm(dictionary, ord=2) ** 2


@torch.no_grad()
def ista(
    x: torch.Tensor,
    dictionary: torch.Tensor,
    lam: float,
    steps: int,
    fast: bool = True,
    codes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Codes minimising the objective: ISTA (Daubechies et al. 2004), or FISTA (Beck & Teboulle 2009) when ``fast``.

    ISTA's objective never rises (a majorise-minimise step); FISTA converges as O(1/k^2) but may rise now and then.
    ``codes`` warm-starts the iteration (zeros by default).
    """
    step = 1.0 / lipschitz(dictionary)
    gram, projected = dictionary.T @ dictionary, x @ dictionary  # D^T D and D^T x, once
    z = (
        torch.zeros(x.shape[0], dictionary.shape[1], dtype=x.dtype, device=x.device)
        if codes is None
        else codes
    )
    y, t = z, 1.0
    for _ in range(steps):
        z_next = soft_threshold(y - step * (y @ gram - projected), lam * step)
        if fast:
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            y = z_next + ((t - 1) / t_next) * (z_next - z)
            t = t_next
        else:
            y = z_next
        z = z_next
    return z


def normalize_atoms(dictionary: torch.Tensor) -> torch.Tensor:
    """Every column scaled to unit L2 norm (a zero column stays zero)."""
    return dictionary / dictionary.norm(dim=0, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def dictionary_step(
    x: torch.Tensor, dictionary: torch.Tensor, codes: torch.Tensor, lr: float
) -> torch.Tensor:
    """Olshausen & Field's learning rule: D += lr (x - D z) z^T (batch mean), then unit-norm atoms."""
    residual = x - codes @ dictionary.T
    return normalize_atoms(dictionary + lr * residual.T @ codes / len(x))


class LISTA(FeatureExtractor):
    """Learned ISTA (Gregor & LeCun 2010): z_0 = h(W_e x), z_{t+1} = h(W_e x + S z_t), h the soft threshold with a
    learned threshold per atom; ``iterations`` refinements after the first. Features: the ``atoms`` code values.

    :meth:`init_from_dictionary` sets W_e = D^T / L, S = I - D^T D / L, theta = lam / L, which makes the
    encoder exactly ``iterations + 1`` steps of ISTA from zero codes; training then fits it to FISTA's codes.
    """

    def __init__(
        self, observation_space: gym.Space | Sequence[int], atoms: int = 256, iterations: int = 3
    ) -> None:
        shape = observation_shape(observation_space)
        if atoms <= 0 or iterations < 0:
            raise ValueError(f"LISTA needs atoms > 0 and iterations >= 0, got {atoms} and {iterations}")
        super().__init__(shape, atoms)
        self.iterations = int(iterations)
        self.encode = nn.Linear(flat_size(shape), atoms, bias=False)  # W_e
        self.mutual = nn.Linear(atoms, atoms, bias=False)  # S
        self.threshold = nn.Parameter(torch.full((atoms,), 0.1))
        nn.init.zeros_(self.mutual.weight)

    @torch.no_grad()
    def init_from_dictionary(self, dictionary: torch.Tensor, lam: float) -> None:
        step = 1.0 / lipschitz(dictionary)
        self.encode.weight.copy_(dictionary.T * step)
        eye = torch.eye(dictionary.shape[1], dtype=dictionary.dtype, device=dictionary.device)
        self.mutual.weight.copy_(eye - step * dictionary.T @ dictionary)
        self.threshold.fill_(float(lam * step))

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        drive = self.encode(x.flatten(1))
        z = soft_threshold(drive, self.threshold)
        for _ in range(self.iterations):
            z = soft_threshold(drive + self.mutual(z), self.threshold)
        return z
