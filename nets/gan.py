"""Generative adversarial network pieces (Goodfellow et al. 2014) built from the project's own modules.

* :class:`Discriminator`: any stateless extractor of :mod:`nets` (e.g. a VGG or LeNet-5 trunk) with a linear
  head giving one logit; in the class-conditional mode the head adds a projection term ``<embed(y), h>``
  (Miyato & Koyama 2018), so the discriminator judges an image *as a digit of class y*.
* :class:`Generator`: the decoder that mirrors the discriminator's extractor (:func:`nets.autoencoder.build_decoder`:
  transposed convolutions for a CNN, dense layers for an MLP), fed by a linear layer from the noise (and, when
  conditional, the one-hot class), with batch norm after every hidden layer and a sigmoid output in [0, 1]
  (the DCGAN recipe of Radford et al. 2015, scaled pixels instead of tanh's [-1, 1]).
* The losses as pure functions of logits: :func:`discriminator_loss` and :func:`generator_loss`
  (``non_saturating``: minimise -log D(G(z)), Goodfellow et al. 2014 sec. 3; ``minimax``: log(1 - D(G(z))),
  whose gradient vanishes while D wins).
* :func:`frechet_distance` between two Gaussians fitted to features (Heusel et al. 2017's FID formula).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nets.autoencoder import build_decoder
from nets.base import FeatureExtractor

GENERATOR_LOSSES = ("non_saturating", "minimax")


def _with_batch_norm(layers: nn.Sequential) -> nn.Sequential:
    """``layers`` with a BatchNorm after every Linear / ConvTranspose2d that an activation follows (DCGAN)."""
    out: list[nn.Module] = []
    items = list(layers)
    for i, layer in enumerate(items):
        out.append(layer)
        followed_by_activation = i + 1 < len(items) and not isinstance(
            items[i + 1], (nn.Linear, nn.ConvTranspose2d, nn.Upsample)
        )
        if isinstance(layer, nn.Linear) and followed_by_activation:
            out.append(nn.BatchNorm1d(layer.out_features))
        elif isinstance(layer, nn.ConvTranspose2d) and followed_by_activation:
            out.append(nn.BatchNorm2d(layer.out_channels))
    return nn.Sequential(*out)


class Generator(nn.Module):
    """``z`` (and a class) -> an image in [0, 1] of the template extractor's input shape.

    ``forward(z, labels=None)``: ``z`` is (B, z_dim); ``labels`` (B,) integer classes, required when
    ``n_classes`` > 0 (their one-hot code is concatenated to ``z``, Mirza & Osindero 2014).
    """

    def __init__(self, template: FeatureExtractor, z_dim: int, n_classes: int = 0) -> None:
        super().__init__()
        if z_dim <= 0:
            raise ValueError(f"z_dim must be > 0, got {z_dim}")
        self.z_dim, self.n_classes = int(z_dim), int(n_classes)
        self.output_shape = tuple(template.input_shape)
        decoder = build_decoder(template)  # the autoencoders' mirror of the extractor
        for name in ("fc", "deconv", "layers"):  # ConvDecoder has fc + deconv, DenseDecoder has layers
            part = getattr(decoder, name, None)
            if isinstance(part, nn.Sequential):
                setattr(decoder, name, _with_batch_norm(part))
        self.stem = nn.Sequential(
            nn.Linear(self.z_dim + self.n_classes, template.features_dim),
            nn.BatchNorm1d(template.features_dim),
            nn.ReLU(),
        )
        self.decoder = decoder

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            if labels is None:
                raise ValueError("a conditional generator needs the class of each sample")
            z = torch.cat([z, F.one_hot(labels.long(), self.n_classes).to(z.dtype)], dim=1)
        return torch.sigmoid(self.decoder(self.stem(z)))


class Discriminator(nn.Module):
    """``extractor`` (its features h) and a linear head: one logit per image, plus ``<embed(y), h>`` if conditional."""

    def __init__(self, extractor: FeatureExtractor, n_classes: int = 0) -> None:
        super().__init__()
        if extractor.is_recurrent:
            raise ValueError("a discriminator needs a stateless extractor")
        self.extractor = extractor
        self.head = nn.Linear(extractor.features_dim, 1)
        self.n_classes = int(n_classes)
        self.embed = nn.Embedding(n_classes, extractor.features_dim) if n_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h, _ = self.extractor(images)
        logits = self.head(h).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs the class of each image")
            logits = logits + (self.embed(labels.long()) * h).sum(dim=1)  # projection (Miyato & Koyama 2018)
        return logits


# --- losses (pure functions of the discriminator's logits) --------------------------------------------


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0
) -> torch.Tensor:
    """-E[t log D(x) + (1 - t) log(1 - D(x))] - E[log(1 - D(G(z)))] with D = sigmoid(logit).

    ``real_target`` < 1 is one-sided label smoothing (Salimans et al. 2016). ``-log sigmoid(a) = softplus(-a)``
    and ``-log(1 - sigmoid(a)) = softplus(a)`` keep it exact for large logits.
    """
    real = real_target * F.softplus(-real_logits) + (1.0 - real_target) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """``non_saturating``: -E[log D(G(z))] (strong gradients early, when D rejects the fakes);
    ``minimax``: E[log(1 - D(G(z)))], the game's value, whose gradient vanishes as D(G(z)) -> 0."""
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"unknown generator loss {kind!r}; choose one of {list(GENERATOR_LOSSES)}")


# --- measurement --------------------------------------------------------------------------------------


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of a (n, d) batch of features, in float64."""
    x = features.double().flatten(1)
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / max(1, x.shape[0] - 1)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Fréchet (2-Wasserstein) distance of two Gaussians.

    tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the inner matrix is symmetric PSD, so symmetric
    eigendecompositions suffice (no general matrix square root).
    """
    root1 = _sqrt_psd(sigma1.double())
    inner = _sqrt_psd(root1 @ sigma2.double() @ root1)
    diff = mu1.double() - mu2.double()
    return float(
        diff @ diff + torch.trace(sigma1.double()) + torch.trace(sigma2.double()) - 2 * torch.trace(inner)
    )
