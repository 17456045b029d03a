"""Gradients in one flat buffer: one zeroing and one norm clip per update instead of one per tensor.

On small networks (CartPole's 256-256 MLP) the per-tensor Python and kernel launches of ``zero_grad`` and
``clip_grad_norm_`` are a visible part of an update (docs/performance.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.adam import adam as functional_adam


def flat_gradients(params: list[nn.Parameter]) -> torch.Tensor:
    """One zeroed buffer holding every parameter's gradient; each ``p.grad`` becomes a view into it.

    Backward then accumulates in place into the views (autograd adds into an existing ``.grad``), so zeroing
    and norm clipping are one operation each instead of one per tensor and the Python around them: about
    0.1 ms of a 1 ms CartPole update (docs/performance.md). Views keep each parameter's strides
    (channels_last conv weights too), so the gradient layout matches the parameter's.
    """
    flat = torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype if params else torch.float32,
                       device=params[0].device if params else None)
    offset = 0
    for p in params:
        p.grad = flat.as_strided(p.shape, p.stride(), offset)
        offset += p.numel()
    return flat


def clip_flat_grad_(flat_grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """``nn.utils.clip_grad_norm_`` on a flat gradient: scale it to norm ``max_norm`` if larger; returns the norm."""
    norm = torch.linalg.vector_norm(flat_grad)
    flat_grad.mul_((max_norm / (norm + 1e-6)).clamp_(max=1.0))  # the same 1e-6 as clip_grad_norm_
    return norm


def adam_step(optimizer: torch.optim.Adam) -> None:
    """``optimizer.step()`` through torch's functional Adam on the optimizer's own state: the same numbers.

    ``Adam.step`` spends ~30 µs per call in Python around the fused kernel (per-group state initialisation
    checks, the profiler's record_function, hooks): 3% of a CartPole update (docs/performance.md). The state
    stays in ``optimizer.state``, so ``state_dict``/``load_state_dict`` (checkpoints, resume) are unchanged.
    Optimizer step hooks do not run. The first step of each parameter (state not yet created) goes through
    ``optimizer.step()``, which creates it.
    """
    state = optimizer.state
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        states = [state.get(p) for p in params]
        if any(s is None or "step" not in s for s in states) or group["amsgrad"]:
            optimizer.step()
            return
        beta1, beta2 = group["betas"]
        functional_adam(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            [s["step"] for s in states],
            foreach=group["foreach"],
            fused=group["fused"],
            capturable=group["capturable"],
            differentiable=group["differentiable"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
        )
