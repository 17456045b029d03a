"""Autoencoder modules, their losses and corruptions, and greedy layer-wise pretraining.

An :class:`Autoencoder` pairs one of our stateless extractors (the encoder, whose features are the code)
with a decoder that maps the code back to the *scaled* observation (``scale_observation(obs)``, so pixels
in [0, 1]). :func:`build_decoder` mirrors the encoder: dense layers for an MLP, transposed convolutions for
a CNN trunk. Decoders output unbounded values: ``reconstruction_loss(..., kind="bce")`` treats them as
logits (apply a sigmoid to look at an image). The training loop lives with the agents; here are the modules
and pure functions:

* sparse codes: :func:`l1_activity_penalty` and :func:`kl_sparsity_penalty` (Ng's sparse autoencoder,
  for sigmoid codes), plus :func:`l2_weight_penalty` (weight decay);
* denoising (Vincent et al. 2008): train on ``corrupt(x)`` against the clean ``x`` with
  :func:`gaussian_noise` or :func:`masking_noise`;
* :func:`pretrain_stacked`: greedy layer-wise pretraining of an MLP (Bengio et al. 2007).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nets.base import FeatureExtractor, flat_size, scale_observation
from nets.cnn import ConvNet
from nets.mlp import ACTIVATIONS, MLP
from nets.pooling import StochasticPool2d


class DenseDecoder(nn.Module):
    """``code_dim -> hidden widths -> prod(output_shape)``, activation between layers, linear output."""

    def __init__(
        self,
        code_dim: int,
        hidden_sizes: Sequence[int],
        output_shape: Sequence[int],
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.output_shape = tuple(int(d) for d in output_shape)
        layers: list[nn.Module] = []
        in_dim = int(code_dim)
        for width in hidden_sizes:
            layers += [nn.Linear(in_dim, int(width)), ACTIVATIONS[activation]()]
            in_dim = int(width)
        layers.append(nn.Linear(in_dim, flat_size(self.output_shape)))
        self.layers = nn.Sequential(*layers)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.layers(code).view(code.shape[0], *self.output_shape)


def _pair(value: object) -> tuple[int, int]:
    """A conv layer's int-or-pair setting as a pair of ints (a string padding cannot reach a decoder)."""
    if isinstance(value, int):
        return (value, value)
    assert isinstance(value, tuple) and len(value) == 2, f"expected an int or a pair, got {value!r}"
    return (int(value[0]), int(value[1]))


class ConvDecoder(nn.Module):
    """The mirror of a :class:`ConvNet`: FC layers in reverse, unflatten, then the trunk in reverse.

    Each Conv2d becomes a ConvTranspose2d with the same kernel, stride and padding, whose
    ``output_padding`` restores exactly the spatial size that conv received (the pixels a strided conv's
    floor dropped); each pooling layer becomes a nearest-neighbour upsampling to the size it pooled. So the
    output has exactly the encoder's input shape for every input size the encoder accepts.
    """

    def __init__(self, encoder: ConvNet) -> None:
        super().__init__()
        self.output_shape = encoder.input_shape
        linears = [m for m in encoder.head if isinstance(m, nn.Linear)]
        fc: list[nn.Module] = []
        for linear in reversed(linears):
            fc += [nn.Linear(linear.out_features, linear.in_features), nn.ReLU()]
        self.fc = nn.Sequential(*fc)
        self.unflatten = nn.Unflatten(1, encoder.trunk_output_shape)
        mirrored: list[nn.Module] = []
        for layer, in_shape in reversed(list(zip(encoder.trunk, encoder.layer_input_shapes, strict=True))):
            size = (int(in_shape[1]), int(in_shape[2]))
            if isinstance(layer, nn.Conv2d):
                k, s = _pair(layer.kernel_size), _pair(layer.stride)
                p = _pair(
                    layer.padding
                )  # ConvNet builds explicit (int, int) paddings; 'same' is resolved there
                dil = _pair(layer.dilation)
                span = [dil[d] * (k[d] - 1) + 1 for d in range(2)]  # a dilated kernel's extent
                out_pad = []
                for d in range(2):
                    # A conv maps n -> floor((n + 2p - span) / s) + 1; a transposed conv maps m ->
                    # (m - 1) * s - 2p + span + output_padding, so output_padding = the remainder the floor lost.
                    m = (size[d] + 2 * p[d] - span[d]) // s[d] + 1
                    out_pad.append(size[d] - ((m - 1) * s[d] - 2 * p[d] + span[d]))
                mirrored += [
                    nn.ConvTranspose2d(
                        layer.out_channels,
                        layer.in_channels,
                        k,
                        s,
                        p,
                        output_padding=(out_pad[0], out_pad[1]),
                        dilation=dil,
                    ),
                    nn.ReLU(),
                ]
            elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d, StochasticPool2d)):
                mirrored.append(nn.Upsample(size=size, mode="nearest"))
        if mirrored and isinstance(mirrored[-1], nn.ReLU):
            mirrored.pop()  # linear output layer
        self.deconv = nn.Sequential(*mirrored)
        self.image_shape = encoder.image_shape

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = self.deconv(self.unflatten(self.fc(code)))
        if x.shape[1:] != self.image_shape:  # cannot happen by construction; a guard against future layers
            x = F.interpolate(x, size=self.image_shape[1:], mode="nearest")
        return x.view(code.shape[0], *self.output_shape)


def build_decoder(encoder: FeatureExtractor) -> nn.Module:
    """A decoder mirroring ``encoder`` (an :class:`MLP` or a :class:`ConvNet`)."""
    if isinstance(encoder, MLP):
        widths = [int(block[0].out_features) for block in encoder.blocks]  # type: ignore[arg-type]  # Linear first
        return DenseDecoder(
            encoder.features_dim, list(reversed(widths[:-1])), encoder.input_shape, encoder.activation
        )
    if isinstance(encoder, ConvNet):
        return ConvDecoder(encoder)
    raise TypeError(f"no decoder for {type(encoder).__name__}; pass one to Autoencoder explicitly")


class Autoencoder(nn.Module):
    """``encoder`` (a stateless extractor; its features are the code) followed by ``decoder``.

    ``forward(obs)`` returns ``(reconstruction, code)``; compare the reconstruction with
    :meth:`target` (the scaled observation). The encoder alone is what gets saved with
    :func:`nets.pretrained.save_encoder` and reused by agents.
    """

    def __init__(self, encoder: FeatureExtractor, decoder: nn.Module | None = None) -> None:
        super().__init__()
        if encoder.is_recurrent:
            raise ValueError("autoencoders need a stateless encoder")
        self.encoder = encoder
        self.decoder = decoder if decoder is not None else build_decoder(encoder)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        code, _ = self.encoder(obs)
        return code

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encode(obs)
        return self.decode(code), code

    @staticmethod
    def target(obs: torch.Tensor) -> torch.Tensor:
        """What the reconstruction should match: the observation as the encoder sees it."""
        return scale_observation(obs)


# --- losses -------------------------------------------------------------------------------------------


def reconstruction_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, kind: str = "mse"
) -> torch.Tensor:
    """Mean squared error, or (``kind="bce"``) binary cross-entropy with ``reconstruction`` as logits.

    BCE suits targets in [0, 1] such as scaled pixels (the Bernoulli view of Vincent et al. 2008); the
    logits form is the numerically stable one.
    """
    if kind == "mse":
        return F.mse_loss(reconstruction, target)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(reconstruction, target)
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose 'mse' or 'bce'")


def l1_activity_penalty(code: torch.Tensor) -> torch.Tensor:
    """Batch mean of sum_j |h_j|: pushes most code units to exactly zero (sparse codes)."""
    return code.abs().flatten(1).sum(dim=1).mean()


def kl_sparsity_penalty(code: torch.Tensor, rho: float = 0.05, eps: float = 1e-6) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j), rho_hat_j the batch-mean activation of unit j (Ng, CS294A notes).

    Needs codes in (0, 1), i.e. sigmoid-activated; each unit is then pushed to be active a fraction rho of
    the time.
    """
    if not 0.0 < rho < 1.0:
        raise ValueError(f"target sparsity rho must be in (0, 1), got {rho}")
    rho_hat = code.flatten(1).mean(dim=0).clamp(eps, 1.0 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def l2_weight_penalty(module: nn.Module) -> torch.Tensor:
    """sum of squared weights of every weight matrix/kernel (biases and norm scales excluded)."""
    terms = [p.pow(2).sum() for p in module.parameters() if p.dim() > 1]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


# --- corruptions (denoising autoencoders) -------------------------------------------------------------


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` plus isotropic Gaussian noise of standard deviation ``std`` (for scaled, float inputs)."""
    if not x.is_floating_point():
        raise TypeError("gaussian_noise needs float input; corrupt scale_observation(obs), not raw pixels")
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def masking_noise(x: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` with each element set to 0 with probability ``fraction`` (Vincent et al. 2008); keeps the dtype."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"masking fraction must be in [0, 1), got {fraction}")
    drop = torch.rand(x.shape, generator=generator, device=x.device) < fraction
    return x.masked_fill(drop, 0)


# --- greedy layer-wise pretraining ------------------------------------------------------------------------


def pretrain_stacked(
    mlp: MLP,
    data: torch.Tensor,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    corruption: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> list[list[float]]:
    """Greedy layer-wise pretraining of ``mlp``'s hidden blocks (Bengio et al. 2007), in place.

    Block k is trained as a shallow autoencoder (block k, then a fresh linear decoder) to reconstruct the
    codes of blocks 1..k-1 on ``data`` (raw observations, scaled here); with ``corruption`` (e.g.
    ``lambda h: masking_noise(h, 0.25)``) it is a stacked denoising autoencoder (Vincent et al. 2010).
    Afterwards the whole MLP is usually fine-tuned on the real task. Returns the mean reconstruction MSE
    of every epoch, one list per block.
    """
    if not mlp.blocks:
        raise ValueError("the MLP has no hidden layers to pretrain")
    param = next(mlp.parameters())
    generator = torch.Generator().manual_seed(seed)
    was_training = mlp.training
    with torch.no_grad():
        codes = mlp.layers[0](scale_observation(data.to(param.device)))  # flatten
    history: list[list[float]] = []
    for block in mlp.blocks:
        linear = block[0]
        assert isinstance(linear, nn.Linear)
        decoder = nn.Linear(linear.out_features, linear.in_features).to(param.device, param.dtype)
        optimizer = torch.optim.Adam([*block.parameters(), *decoder.parameters()], lr=lr)
        block.train()
        losses = []
        for _ in range(epochs):
            order = torch.randperm(codes.shape[0], generator=generator).to(codes.device)
            total, count = 0.0, 0
            for start in range(0, codes.shape[0], batch_size):
                clean = codes[order[start : start + batch_size]]
                noisy = corruption(clean) if corruption is not None else clean
                loss = F.mse_loss(decoder(block(noisy)), clean)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * clean.shape[0]
                count += clean.shape[0]
            losses.append(total / count)
        history.append(losses)
        block.eval()
        with torch.no_grad():
            codes = block(codes)
    mlp.train(was_training)
    return history
