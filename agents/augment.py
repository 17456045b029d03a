"""Random-translation and random-affine augmentation of image batches, vectorised on the batch's device.

Small random shifts are the classic MNIST augmentation (Simard et al. 2003 used elastic distortions; a shift
of up to 2 pixels is torchvision's ``RandomCrop(28, padding=2)``) and, as DrQ's "random shift" (Kostrikov
et al. 2021, pad 4 then random-crop 84x84), also the standard one for pixel-based RL. Here it works on a whole
uint8 batch at once, one independent offset per image, with no per-image Python loop.

:func:`random_affine` adds small rotations and zooms to the shift (the affine part of Simard et al. 2003's
distortions); the MNIST benchmark's denoising autoencoder uses it as a corruption (benchmarks/mnist.py).
"""

from __future__ import annotations

import math

import torch

from rlcore.base.validation import require


def require_image_shift(shape: tuple[int, ...], pixels: int, key: str) -> None:
    """The start-up check of every image-moving option (``key``): observations must be (C, H, W) images, and a
    shift of ``pixels`` must leave part of each one in view."""
    require(
        len(shape) == 3 and pixels < min(shape[1:]),
        key,
        f"shifts (C, H, W) images by fewer than H and W pixels; got {pixels} for observations of shape {shape}",
    )


PADDINGS = ("zeros", "replicate")


def random_shift(
    images: torch.Tensor, pixels: int, generator: torch.Generator | None = None, padding: str = "zeros"
) -> torch.Tensor:
    """Each image of ``images`` (N, C, H, W) translated by its own random (dy, dx) in [-pixels, pixels]^2.

    Equivalent to padding every side by ``pixels`` and cropping an HxW window at a uniformly random position,
    as ``torchvision.transforms.RandomCrop(size, padding=pixels)`` does per image. ``padding="zeros"``: the
    pixels shifted in are 0 (MNIST's background); ``"replicate"``: they repeat the border pixels, DrQ's
    random shift for Atari frames (Kostrikov et al. 2021, ``nn.ReplicationPad2d(4)`` then a random 84x84 crop).
    No padded copy is made: the pixels are gathered with indices clamped to the image. Keeps dtype and device;
    ``pixels=0`` returns ``images`` itself. Offsets are drawn on the CPU from ``generator`` (a CPU generator),
    so a seeded generator gives the same shifts on any device.
    """
    if pixels < 0:
        raise ValueError(f"shift must be >= 0 pixels, got {pixels}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    if pixels == 0:
        return images
    if images.ndim != 4:
        raise ValueError(f"expected a (N, C, H, W) image batch, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    offsets = torch.randint(0, 2 * pixels + 1, (2, n), generator=generator).to(images.device)
    # row r of image n's output shows row offsets[0, n] - pixels + r of the input (columns alike); one gather
    # over the flattened H*W pixels, with the indices clamped to the border (replicate) or masked (zeros), is
    # several times faster than indexing with four broadcast index tensors
    rows = offsets[0][:, None] - pixels + torch.arange(h, device=images.device)  # (N, H)
    cols = offsets[1][:, None] - pixels + torch.arange(w, device=images.device)  # (N, W)
    flat = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]  # (N, H, W)
    index = flat.view(n, 1, h * w).expand(n, c, h * w)
    out = images.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
    if padding == "zeros":
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        out.masked_fill_(~inside[:, None], 0)
    return out


def affine_warp(
    images: torch.Tensor, angles: torch.Tensor, scales: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor:
    """Each image of ``images`` (N, C, H, W) rotated by ``angles[n]`` radians and zoomed by ``scales[n]`` about
    its centre, and moved by ``offsets[n] = (ox, oy)`` whole pixels.

    Output pixel p shows the input at ``R(angle) p / scale + offset`` (centred pixel coordinates, y down; the
    inverse map of ``torch.nn.functional.affine_grid``), sampled bilinearly with zeros outside the image: a
    positive offset moves the content left/up, a scale above 1 enlarges it, ``angle = pi/2`` is
    ``torch.rot90(image, 1, (-2, -1))``. uint8 images come back as uint8 (rounded); float images as float.
    """
    if images.ndim != 4:
        raise ValueError(f"expected a (N, C, H, W) image batch, got shape {tuple(images.shape)}")
    n, _, h, w = images.shape
    cos, sin = torch.cos(angles).float(), torch.sin(angles).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos / scales, -sin / scales
    theta[:, 1, 0], theta[:, 1, 1] = sin / scales, cos / scales
    # affine_grid's coordinates run over [-1, 1] across the image: one pixel is 2/W horizontally, 2/H vertically
    theta[:, 0, 2] = offsets[:, 0].float() * 2 / w
    theta[:, 1, 2] = offsets[:, 1].float() * 2 / h
    grid = torch.nn.functional.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    warped = torch.nn.functional.grid_sample(images.float(), grid, align_corners=False)
    if images.dtype == torch.uint8:
        return warped.round().clamp(0, 255).to(torch.uint8)
    return warped.to(images.dtype)


def random_affine(
    images: torch.Tensor, degrees: float, scale: float, shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """:func:`affine_warp` with, per image, an angle uniform in ±``degrees``, a zoom uniform in 1 ± ``scale``
    and a whole-pixel offset uniform in [-shift, shift] per axis; all drawn on the CPU from ``generator`` (in
    that order), so a seeded generator gives the same warps on any device. All three 0 returns ``images``."""
    if degrees < 0 or not 0 <= scale < 1 or shift < 0:
        raise ValueError(f"need degrees >= 0, 0 <= scale < 1 and shift >= 0; got {degrees}, {scale}, {shift}")
    if degrees == 0 and scale == 0 and shift == 0:
        return images
    n = images.shape[0]
    angles = (torch.rand(n, generator=generator) * 2 - 1) * degrees * math.pi / 180
    scales = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    offsets = torch.randint(-shift, shift + 1, (n, 2), generator=generator)
    return affine_warp(images, angles, scales, offsets)
