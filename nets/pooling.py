"""Stochastic pooling (Zeiler & Fergus 2013, "Stochastic Pooling for Regularization of Deep CNNs").

PyTorch has no such layer. In training, each pooling window outputs one of its activations, drawn with
probability proportional to the activation (p_i = a_i / sum_k a_k), which regularises like dropout without
discarding the strong responses; a window of zeros outputs 0. At test time the window outputs the
probability-weighted average sum_i p_i a_i = sum a_i^2 / sum a_i (the paper's "probabilistic weighting").

The paper assumes non-negative (post-ReLU) inputs. Negative activations are given probability 0 here, so
with other activations the layer still works but only ever picks (and weights) the positive responses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair


def _pool_geometry(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None,
    padding: int | tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    kernel = _pair(kernel_size)
    step = _pair(stride if stride is not None else kernel_size)
    pad = _pair(padding)
    out_h = (x.shape[-2] + 2 * pad[0] - kernel[0]) // step[0] + 1
    out_w = (x.shape[-1] + 2 * pad[1] - kernel[1]) // step[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"stochastic pooling window {kernel} with padding {pad} does not fit input of spatial size "
            f"{tuple(x.shape[-2:])}"
        )
    return kernel, step, pad, (out_h, out_w)


def stochastic_pool2d(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stochastic pooling of an ``(N, C, H, W)`` tensor; ``stride`` defaults to ``kernel_size`` as in MaxPool2d.

    ``generator`` fixes the training-mode samples (used by tests and for reproducible draws). Zero padding
    contributes windows entries of probability 0.
    """
    if x.dim() != 4:
        raise ValueError(f"stochastic_pool2d expects (N, C, H, W) input, got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    kernel, step, pad, (out_h, out_w) = _pool_geometry(x, kernel_size, stride, padding)
    # (N, C*kh*kw, L) -> (N, C, kh*kw, L): one column per window.
    windows = F.unfold(x, kernel, padding=pad, stride=step).view(n, c, kernel[0] * kernel[1], out_h * out_w)
    weights = windows.clamp(min=0)
    total = weights.sum(dim=2, keepdim=True)
    if training:
        # Inverse-CDF sampling: the first index whose cumulative weight exceeds u * total, u ~ U[0, 1).
        # This draws index i with probability a_i / total without torch.multinomial's row-by-row cost; with
        # `<=`, u = 0 (torch.rand can return it) still skips the leading zero-probability entries.
        uniform = torch.rand(total.shape, generator=generator, device=x.device, dtype=x.dtype)
        below = weights.cumsum(dim=2) <= uniform * total
        index = below.sum(dim=2, keepdim=True).clamp(max=windows.shape[2] - 1)
        picked = windows.gather(2, index)
        out = torch.where(total > 0, picked, torch.zeros_like(picked))
    else:
        # sum_i a_i * (a_i / sum_k a_k); an all-zero window has numerator 0, so clamping the denominator
        # gives 0 without a NaN (or NaN gradient).
        out = (windows * weights).sum(dim=2, keepdim=True) / total.clamp(min=torch.finfo(x.dtype).tiny)
    return out.view(n, c, out_h, out_w)


class StochasticPool2d(nn.Module):
    """Stochastic pooling layer with MaxPool2d-style ``kernel_size``, ``stride`` and ``padding``.

    Samples in ``train()`` mode, uses the probability-weighted average in ``eval()`` mode.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return stochastic_pool2d(x, self.kernel_size, self.stride, self.padding, self.training, generator)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
