"""Shapes, scaling and options of the stateless extractors (MLP and CNNs)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from nets import MLP, VGG, AlexNet, LeNet5, NatureCNN, StochasticPool2d
from nets.cnn import minimum_input_size

torch.set_num_threads(1)

CNN_SIZES = {
    # net class, kwargs, input sizes that must work
    "nature": (NatureCNN, {"features_dim": 32}, [36, 64, 84]),
    "nature_same": (NatureCNN, {"features_dim": 32, "padding": "same"}, [28, 32, 64, 84]),
    "lenet5": (LeNet5, {}, [28, 32, 64, 84]),
    "lenet5_same_bn_stoch": (
        LeNet5,
        {"padding": "same", "batch_norm": True, "pooling": "stochastic", "activation": "relu"},
        [28, 32],
    ),
    "alexnet": (AlexNet, {"channels": [4, 8, 8, 8, 8], "features_dim": 16, "dropout": 0.5}, [28, 32, 64, 84]),
    "alexnet_valid_avg": (
        AlexNet,
        {"channels": [4, 8, 8, 8, 8], "features_dim": 16, "padding": "valid", "pooling": "avg"},
        [64, 84],
    ),
    "vgg": (VGG, {"channels": [4, 8, 8], "features_dim": 16, "batch_norm": True}, [28, 32, 64, 84]),
    "vgg_valid_stoch": (
        VGG,
        {"channels": [4, 8], "features_dim": 16, "padding": "valid", "pooling": "stochastic"},
        [28, 32],
    ),
}


@pytest.mark.parametrize("key", sorted(CNN_SIZES))
def test_cnn_output_matches_output_dim_for_every_allowed_size(key: str) -> None:
    cls, kwargs, sizes = CNN_SIZES[key]
    for size in sizes:
        for shape in [(3, size, size), (size, size)]:
            net = cls(gym.spaces.Box(0, 255, shape, np.uint8), **kwargs)
            obs = torch.randint(0, 256, (2, *shape), dtype=torch.uint8)
            features, state = net(obs)
            assert state is None
            assert features.shape == (2, net.features_dim)
            assert net.input_shape == shape


def test_cnn_accepts_non_square_inputs() -> None:
    net = NatureCNN((4, 84, 40), features_dim=8)
    assert net(torch.zeros(3, 4, 84, 40))[0].shape == (3, 8)


@pytest.mark.parametrize(
    ("cls", "kwargs", "minimum"),
    [
        (NatureCNN, {}, 36),
        (LeNet5, {}, 16),
        (AlexNet, {"channels": [4, 4, 4, 4, 4]}, 15),
        (AlexNet, {"channels": [4, 4, 4, 4, 4], "padding": "valid"}, 51),
        (VGG, {"channels": [4, 4, 4]}, 8),
    ],
)
def test_too_small_input_names_shape_and_minimum(cls: type, kwargs: dict, minimum: int) -> None:
    cls((1, minimum, minimum), **kwargs)  # the minimum itself works
    with pytest.raises(
        ValueError, match=rf"at least {minimum}x{minimum}.*\(1, {minimum - 1}, {minimum + 5}\)"
    ):
        cls((1, minimum - 1, minimum + 5), **kwargs)


def test_minimum_input_size_walks_layers_backwards() -> None:
    trunk = nn.Sequential(nn.Conv2d(1, 1, 8, 4), nn.Conv2d(1, 1, 4, 2), nn.Conv2d(1, 1, 3, 1))
    assert minimum_input_size(trunk) == (36, 36)
    trunk = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), StochasticPool2d(2), nn.MaxPool2d(3, 2))
    assert minimum_input_size(trunk) == (6, 6)


def test_cnn_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(H, W\).*\(5,\)"):
        NatureCNN((5,))


@pytest.mark.parametrize(
    "net", [MLP((3, 8, 8), hidden_sizes=[16]), LeNet5((3, 32, 32)), NatureCNN((3, 36, 36), features_dim=8)]
)
def test_uint8_input_is_scaled_once(net: nn.Module) -> None:
    obs = torch.randint(0, 256, (2, *net.input_shape), dtype=torch.uint8)
    from_uint8, _ = net(obs)
    from_float, _ = net(obs.float() / 255.0)
    torch.testing.assert_close(from_uint8, from_float)


def test_mlp_options_and_shapes() -> None:
    space = gym.spaces.Box(-1, 1, (4, 3), np.float32)
    for norm in ("none", "batch", "layer"):
        for init in ("default", "xavier", "he", "orthogonal"):
            for activation in ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"):
                net = MLP(
                    space, hidden_sizes=[8, 5], activation=activation, dropout=0.1, norm=norm, init=init
                )
                features, _ = net(torch.randn(3, 4, 3))
                assert features.shape == (3, net.features_dim) == (3, 5)
    # keywords of the original constructor still work positionally and by name
    assert MLP((4,), (32,), "tanh").features_dim == 32


def test_mlp_init_schemes() -> None:
    torch.manual_seed(0)
    he = MLP((512,), hidden_sizes=[512], init="he")
    weight = he.blocks[0][0].weight
    assert weight.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.05)
    assert torch.count_nonzero(he.blocks[0][0].bias) == 0
    ortho = MLP((64,), hidden_sizes=[64], init="orthogonal", activation="tanh")
    w = ortho.blocks[0][0].weight
    gain = nn.init.calculate_gain("tanh")
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(64), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="unknown init"):
        MLP((4,), init="lecun")


def test_mlp_without_hidden_layers_is_identity() -> None:
    net = MLP((2, 3), hidden_sizes=[])
    obs = torch.randn(4, 2, 3)
    features, _ = net(obs)
    assert net.features_dim == 6
    torch.testing.assert_close(features, obs.reshape(4, 6))
    assert sum(p.numel() for p in net.parameters()) == 0


def test_mlp_layer_norm_and_dropout_placement() -> None:
    net = MLP((4,), hidden_sizes=[8], norm="layer", dropout=0.5, activation="tanh")
    kinds = [type(m) for m in net.blocks[0]]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.Tanh, nn.Dropout]
    net.eval()
    x = torch.randn(5, 4)
    torch.testing.assert_close(net(x)[0], net(x)[0])  # dropout off in eval mode


def test_cached_param_dtype_follows_dtype_changes() -> None:
    net = MLP((4,), hidden_sizes=[8])
    assert net.param_dtype() == torch.float32
    net.double()  # nn.Module._apply clears the cache
    assert net.param_dtype() == torch.float64
    assert net(torch.zeros(2, 4, dtype=torch.float32))[0].dtype == torch.float64
