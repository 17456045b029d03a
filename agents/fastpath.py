"""The speed seam: everything that makes an agent's update fast without changing what it computes.

An algorithm (``agents/dqn.py``, ``agents/drqn.py``) builds its online network, hands it to a :class:`FastPath`
and from then on only calls ``fast.forward_online(x)``, ``fast.forward_target(x)``, ``fast.layout(x)``,
``with fast.autocast():`` and ``fast.step(loss, max_grad_norm)``. Behind those calls, and nowhere else
(docs/performance.md says what each buys):

* ``channels_last``: NHWC conv weights and image batches (oneDNN's convolutions are faster in it on CPU);
* ``amp``: bf16 autocast of the network passes (fp32 master weights; no loss scaling needed for bf16);
* ``compile``: ``torch.compile`` of the forward passes;
* flat gradients: every ``p.grad`` is a view into one buffer, so zeroing and norm clipping are one op each;
* the functional Adam step: ``Adam.step``'s numbers without its per-call Python;
* a separate actor (the loop's ``overlap``): a copy of the online net that acting reads while an update runs
  in a background thread, refreshed between updates.

With every switch off the update is plain PyTorch: ``zero_grad``, ``backward``, ``clip_grad_norm_``,
``Adam.step`` give the same numbers (tests/test_dqn_round.py checks it).
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn
from torch.optim.adam import adam as functional_adam

from rlcore.base.errors import ConfigError


class FastPath:
    """Holds the online net, its frozen target copy and (overlap) its actor copy, in the layout, precision
    and compiled form the update runs them in, and the optimizer over the online net's parameters."""

    def __init__(
        self,
        online: nn.Module,
        *,
        device: torch.device,
        lr: float,
        adam_eps: float,
        amp: bool = False,
        compile: bool = False,
        channels_last: bool = False,
        separate_actor: bool = False,
    ) -> None:
        self.device = device
        self.channels_last = channels_last
        if channels_last:
            online.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs
        self.online = online
        self.target = copy.deepcopy(online).requires_grad_(False)
        # A separate actor (the loop's `overlap`: updates run in a background thread) is a copy of the online
        # net that acting reads and `refresh_actor` overwrites between updates, so acting never sees weights
        # an update is halfway through writing; it lags the online net by the update in flight.
        self.actor = copy.deepcopy(online).requires_grad_(False) if separate_actor else online
        self.params = [p for p in online.parameters() if p.requires_grad]
        # Invariant: every p.grad is a view into flat_grad (never zero_grad(set_to_none=True): clipping the
        # flat buffer would then not reach the gradients Adam reads; tests/test_fastpath.py guards it).
        self.flat_grad = flat_gradients(self.params)
        # fused Adam on one device: one kernel for all parameters instead of one per tensor
        self.optimizer = torch.optim.Adam(self.params, lr=lr, eps=adam_eps, fused=True)
        # bf16 autocast: fp32's range, so no loss scaling is needed (fp16 would need a GradScaler)
        if amp and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                "amp=true autocasts to bfloat16, which this GPU does not support; use amp=false"
            )
        self.autocast_dtype = torch.bfloat16 if amp else None
        self.forward_online = torch.compile(online) if compile else online
        self.forward_target = torch.compile(self.target) if compile else self.target
        self.forward_actor = (
            self.forward_online
            if self.actor is online
            else (torch.compile(self.actor) if compile else self.actor)
        )

    def layout(self, obs: torch.Tensor) -> torch.Tensor:
        """Image batches in the nets' memory format (a copy of the uint8 pixels, before they become float)."""
        if self.channels_last and obs.dim() == 4:
            return obs.contiguous(memory_format=torch.channels_last)
        return obs

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:  # a disabled torch.autocast still costs ~3 us per use on CPU
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def step(self, loss: torch.Tensor, max_grad_norm: float) -> torch.Tensor:
        """One optimizer step on ``loss``: backward, norm clipping to ``max_grad_norm``, Adam; returns the
        gradient norm before clipping."""
        self.flat_grad.zero_()  # not zero_grad(): backward must accumulate into the views of flat_grad
        loss.backward()
        grad_norm = clip_flat_grad_(self.flat_grad, max_grad_norm)
        adam_step(self.optimizer)
        return grad_norm

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def refresh_actor(self) -> None:
        """Copy the online weights into the separate actor (a no-op when acting uses the online net)."""
        if self.actor is not self.online:
            torch._foreach_copy_(list(self.actor.parameters()), list(self.online.parameters()))
            for b_a, b_o in zip(self.actor.buffers(), self.online.buffers(), strict=True):
                b_a.copy_(b_o)


def flat_gradients(params: list[nn.Parameter]) -> torch.Tensor:
    """One zeroed buffer holding every parameter's gradient; each ``p.grad`` becomes a view into it.

    Backward then accumulates in place into the views (autograd adds into an existing ``.grad``), so zeroing
    and norm clipping are one operation each instead of one per tensor and the Python around them: about
    0.1 ms of a 1 ms CartPole update (docs/performance.md). Views keep each parameter's strides
    (channels_last conv weights too), so the gradient layout matches the parameter's.
    """
    flat = torch.zeros(
        sum(p.numel() for p in params),
        dtype=params[0].dtype if params else torch.float32,
        device=params[0].device if params else None,
    )
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
        ready = [s for s in states if s is not None]
        beta1, beta2 = group["betas"]
        functional_adam(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in ready],
            [s["exp_avg_sq"] for s in ready],
            [],
            [s["step"] for s in ready],
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
