"""Autoencoder modules, decoders that mirror their encoders, losses, corruptions, layer-wise pretraining."""

from __future__ import annotations

import math

import pytest
import torch

from nets import MLP, VGG, AlexNet, LeNet5, NatureCNN
from nets.autoencoder import (
    Autoencoder,
    ConvDecoder,
    DenseDecoder,
    gaussian_noise,
    kl_sparsity_penalty,
    l1_activity_penalty,
    l2_weight_penalty,
    masking_noise,
    pretrain_stacked,
    reconstruction_loss,
)

torch.set_num_threads(1)


def blobs(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """``n`` uint8 images (1, size, size), each a Gaussian blob at a random position."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g) * (size - 4) + 2
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    d2 = (ys - centres[:, :1, None]) ** 2 + (xs - centres[:, 1:, None]) ** 2
    return (255 * torch.exp(-d2 / 8.0)).round().to(torch.uint8).unsqueeze(1)


@pytest.mark.parametrize(
    "encoder",
    [
        NatureCNN((1, 36, 36), features_dim=8),
        NatureCNN((3, 37, 41), features_dim=8),
        NatureCNN((1, 28, 28), features_dim=8, padding="same"),
        LeNet5((1, 28, 28)),
        LeNet5((30, 30), pooling="stochastic", activation="relu"),
        AlexNet((3, 33, 33), channels=[4, 4, 4, 4, 4], features_dim=8),
        VGG((1, 37, 39), channels=[4, 4, 4], features_dim=8, padding="valid"),
        MLP((2, 5, 5), hidden_sizes=[16, 4]),
        MLP((6,), hidden_sizes=[]),
    ],
)
def test_decoder_output_matches_input_shape_exactly(encoder: torch.nn.Module) -> None:
    ae = Autoencoder(encoder)
    assert isinstance(ae.decoder, DenseDecoder if isinstance(encoder, MLP) else ConvDecoder)
    obs = torch.randint(0, 256, (2, *encoder.input_shape), dtype=torch.uint8)
    recon, code = ae(obs)
    assert recon.shape == (2, *encoder.input_shape) == ae.target(obs).shape
    assert code.shape == (2, encoder.features_dim)


def test_conv_decoder_mirrors_the_trunk() -> None:
    decoder = ConvDecoder(NatureCNN((4, 84, 84)))
    deconvs = [m for m in decoder.deconv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in deconvs] == [
        (64, 64, (3, 3), (1, 1)),
        (64, 32, (4, 4), (2, 2)),
        (32, 4, (8, 8), (4, 4)),
    ]


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_reconstruction_loss_falls_on_blobs(kind: str) -> None:
    torch.manual_seed(0)
    data = blobs(64)
    ae = Autoencoder(VGG((1, 16, 16), channels=[8, 8], convs_per_block=1, features_dim=16))
    optimizer = torch.optim.Adam(ae.parameters(), lr=3e-3)
    target = ae.target(data)
    losses = []
    for _ in range(100):
        recon, _ = ae(data)
        loss = reconstruction_loss(recon, target, kind)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    if kind == "mse":
        assert last < 0.3 * first
    else:  # BCE has the targets' entropy as its floor
        assert last < first - 0.1


def test_denoising_mlp_autoencoder_learns() -> None:
    torch.manual_seed(0)
    data = blobs(64, size=8)
    ae = Autoencoder(MLP((1, 8, 8), hidden_sizes=[32, 8]))
    optimizer = torch.optim.Adam(ae.parameters(), lr=3e-3)
    clean = ae.target(data)
    losses = []
    for _ in range(200):
        recon, code = ae(masking_noise(clean, 0.2))
        loss = (
            reconstruction_loss(recon, clean)
            + 1e-4 * l1_activity_penalty(code)
            + 1e-5 * l2_weight_penalty(ae)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_sparsity_penalties() -> None:
    code = torch.tensor([[0.0, -2.0, 1.0], [3.0, 0.0, 0.0]])
    assert l1_activity_penalty(code).item() == pytest.approx(3.0)  # (3 + 3) / 2
    rho = 0.1
    at_target = torch.full((4, 5), rho)
    assert kl_sparsity_penalty(at_target, rho).item() == pytest.approx(0.0, abs=1e-6)
    half = torch.full((4, 5), 0.5)
    kl = rho * math.log(rho / 0.5) + (1 - rho) * math.log((1 - rho) / 0.5)
    assert kl_sparsity_penalty(half, rho).item() == pytest.approx(5 * kl, rel=1e-5)
    # gradient pushes the mean activation towards rho
    h = torch.full((4, 1), 0.5, requires_grad=True)
    kl_sparsity_penalty(h, rho).backward()
    assert (h.grad > 0).all()
    with pytest.raises(ValueError, match="rho"):
        kl_sparsity_penalty(half, 1.5)


def test_l2_weight_penalty_counts_weights_not_biases() -> None:
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(100.0)
    assert l2_weight_penalty(layer).item() == pytest.approx(24.0)


def test_corruptions() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.ones(100_000)
    masked = masking_noise(x, 0.3, generator=g)
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    pixels = torch.full((10,), 200, dtype=torch.uint8)
    assert masking_noise(pixels, 0.5, generator=g).dtype == torch.uint8
    noisy = gaussian_noise(x, 0.5, generator=g)
    assert (noisy - x).std().item() == pytest.approx(0.5, rel=0.02)
    with pytest.raises(TypeError, match="float"):
        gaussian_noise(pixels, 0.1)


def test_pretrain_stacked_trains_each_layer_in_place() -> None:
    torch.manual_seed(0)
    data = blobs(64, size=8)
    mlp = MLP((1, 8, 8), hidden_sizes=[16, 8], activation="sigmoid")
    before = [block[0].weight.detach().clone() for block in mlp.blocks]
    history = pretrain_stacked(
        mlp, data, epochs=30, lr=1e-2, batch_size=16, corruption=lambda h: masking_noise(h, 0.1)
    )
    assert len(history) == 2 and all(len(h) == 30 for h in history)
    for losses in history:
        assert losses[-1] < 0.5 * losses[0]
    for block, old in zip(mlp.blocks, before, strict=True):
        assert not torch.equal(block[0].weight, old)
    with pytest.raises(ValueError, match="no hidden layers"):
        pretrain_stacked(MLP((4,), hidden_sizes=[]), torch.zeros(8, 4))


def test_recurrent_encoder_is_rejected() -> None:
    from nets import RecurrentNet

    with pytest.raises(ValueError, match="stateless"):
        Autoencoder(RecurrentNet(MLP((3,)), "gru", 4))
