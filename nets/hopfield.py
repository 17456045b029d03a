"""Hopfield networks: the classical binary associative memory and the modern continuous one.

Classical (Hopfield 1982): N units with states s_i in {-1, +1}, symmetric weights with a zero diagonal and the
energy E(s) = -1/2 s^T W s. Storing patterns xi^mu (rows of a (P, N) tensor of +-1):

* :func:`hebbian_weights`: W = (1/N) sum_mu xi^mu xi^mu^T, diagonal zeroed. Retrieval breaks down at a load
  alpha = P/N of about 0.138 (Amit, Gutfreund & Sompolinsky 1985).
* :func:`storkey_weights`: Storkey's (1997) incremental rule, which subtracts the local fields that the other
  patterns already produce; local, incremental and of higher capacity than Hebb's.

Recall from a corrupted state: :func:`update_async` (one unit at a time, in a random order per sweep: the
energy never rises, so it ends in a fixed point) or :func:`update_sync` (all units at once: may oscillate in a
2-cycle). Every function works on a batch of states (B, N) at once.

Modern (Ramsauer et al. 2020, "Hopfield networks is all you need"): continuous states and the update
xi_new = X^T softmax(beta X xi) for stored patterns X (P, N): one step retrieves a pattern with exponentially
many patterns storable, as long as they are well separated at inverse temperature beta
(:func:`modern_retrieve`).
"""

from __future__ import annotations

import torch


def _check_patterns(patterns: torch.Tensor) -> torch.Tensor:
    if patterns.dim() != 2:
        raise ValueError(f"patterns must be a (P, N) tensor of +-1, got shape {tuple(patterns.shape)}")
    if not bool(((patterns == 1) | (patterns == -1)).all()):
        raise ValueError("patterns must hold only -1 and +1 (binarise them first)")
    return patterns.double()


def hebbian_weights(patterns: torch.Tensor) -> torch.Tensor:
    """W = (1/N) sum_mu xi^mu (xi^mu)^T with a zero diagonal (Hopfield 1982), float64."""
    xi = _check_patterns(patterns)
    w = xi.T @ xi / xi.shape[1]
    w.fill_diagonal_(0.0)
    return w


def storkey_weights(patterns: torch.Tensor) -> torch.Tensor:
    """Storkey's (1997) rule, one pattern at a time (float64, symmetric, zero diagonal):

    w_ij += (1/N) (xi_i xi_j - xi_i h_ji - h_ij xi_j),  h_ij = sum_{k != i, j} w_ik xi_k,

    the local field at unit i from every unit but i and j, under the weights before this pattern.
    """
    xi = _check_patterns(patterns)
    n = xi.shape[1]
    w = torch.zeros(n, n, dtype=torch.float64)
    for p in xi:
        field = w @ p  # h_i = sum_k w_ik xi_k (w_ii = 0, so k = i adds nothing)
        h = field[:, None] - w * p[None, :]  # h_ij: the same sum without k = j
        w = w + (torch.outer(p, p) - p[:, None] * h.T - h * p[None, :]) / n
        w.fill_diagonal_(0.0)
    return w


def energy(weights: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """E(s) = -1/2 s^T W s for each row of ``states`` (B, N) -> (B,)."""
    s = states.to(weights.dtype)
    return -0.5 * ((s @ weights) * s).sum(dim=-1)


def _sign_keep(field: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """sign(field), keeping the current state where the field is exactly 0 (so ties never cost energy)."""
    return torch.where(field > 0, 1.0, torch.where(field < 0, -1.0, current))


def update_sync(weights: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """One synchronous step: every unit s_i <- sign(sum_j w_ij s_j) at once (Little 1974's dynamics)."""
    s = states.to(weights.dtype)
    return _sign_keep(s @ weights, s)  # W is symmetric: (s W)_i = sum_j w_ij s_j


def update_async(
    weights: torch.Tensor,
    states: torch.Tensor,
    max_sweeps: int = 100,
    generator: torch.Generator | None = None,
    trace: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, int]:
    """Asynchronous dynamics: sweeps over the units in a fresh random order, one unit updated at a time, until
    a sweep changes nothing (a fixed point) or ``max_sweeps``. Returns the states and the sweeps taken.

    With symmetric W and a zero diagonal each single-unit update changes E by -|h_i| |ds_i| <= 0 (Hopfield
    1982), so the energy never rises. ``trace`` (a list) receives the energy after every single-unit update.
    """
    s = states.to(weights.dtype).clone()
    n = s.shape[-1]
    for sweep in range(1, max_sweeps + 1):
        changed = False
        for i in torch.randperm(n, generator=generator).tolist():
            new = _sign_keep(s @ weights[:, i], s[:, i])
            if bool((new != s[:, i]).any()):
                changed = True
                s[:, i] = new
            if trace is not None:
                trace.append(energy(weights, s))
        if not changed:
            return s, sweep
    return s, max_sweeps


def modern_retrieve(stored: torch.Tensor, queries: torch.Tensor, beta: float, steps: int = 1) -> torch.Tensor:
    """xi <- X^T softmax(beta X xi), ``steps`` times (Ramsauer et al. 2020, eq. 3; one step usually suffices).

    ``stored`` is X (P, N), ``queries`` a batch (B, N); returns the (B, N) continuous retrieved states (take
    their sign for binary patterns).
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    x = stored.double()
    xi = queries.double()
    for _ in range(steps):
        xi = torch.softmax(beta * xi @ x.T, dim=-1) @ x
    return xi
