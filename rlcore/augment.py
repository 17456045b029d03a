"""Random-translation augmentation of image batches, vectorised on the batch's device.

Small random shifts are the classic MNIST augmentation (Simard et al. 2003 used elastic distortions; a shift
of up to 2 pixels is torchvision's ``RandomCrop(28, padding=2)``) and, as DrQ's "random shift" (Kostrikov
et al. 2021, pad 4 then random-crop 84x84), also the standard one for pixel-based RL. Here it works on a whole
uint8 batch at once, one independent offset per image, with no per-image Python loop.
"""

from __future__ import annotations

import torch


def random_shift(images: torch.Tensor, pixels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of ``images`` (N, C, H, W) translated by its own random (dy, dx) in [-pixels, pixels]^2.

    Equivalent to zero-padding every side by ``pixels`` and cropping an HxW window at a uniformly random
    position, as ``torchvision.transforms.RandomCrop(size, padding=pixels)`` does per image; the pixels shifted
    in are 0 (MNIST's background). Keeps dtype and device; ``pixels=0`` returns ``images`` itself. Offsets are
    drawn on the CPU from ``generator`` (a CPU generator), so a seeded generator gives the same shifts on any
    device.
    """
    if pixels < 0:
        raise ValueError(f"shift must be >= 0 pixels, got {pixels}")
    if pixels == 0:
        return images
    if images.ndim != 4:
        raise ValueError(f"expected a (N, C, H, W) image batch, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    offsets = torch.randint(0, 2 * pixels + 1, (2, n), generator=generator).to(images.device)
    padded = images.new_zeros((n, c, h + 2 * pixels, w + 2 * pixels))
    padded[:, :, pixels : pixels + h, pixels : pixels + w] = images
    rows = offsets[0][:, None] + torch.arange(h, device=images.device)  # (N, H): row r of the crop of image n
    cols = offsets[1][:, None] + torch.arange(w, device=images.device)  # (N, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
