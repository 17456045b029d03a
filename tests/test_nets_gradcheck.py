"""Numerical gradient checks (float64) for one net of each family; stochastic pooling's are in its own file."""

from __future__ import annotations

import torch

from nets import MLP, LeNet5, RecurrentNet


def test_gradcheck_mlp() -> None:
    torch.manual_seed(0)
    net = MLP((3,), hidden_sizes=[4, 3], activation="tanh", norm="layer").double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net(t)[0], (x,))
    # and with respect to the parameters
    params = tuple(p for p in net.parameters())
    func = torch.func.functional_call

    def by_params(*ps: torch.Tensor) -> torch.Tensor:
        names = [n for n, _ in net.named_parameters()]
        return func(net, dict(zip(names, ps, strict=True)), (x.detach(),))[0]

    assert torch.autograd.gradcheck(by_params, tuple(p.detach().clone().requires_grad_() for p in params))


def test_gradcheck_cnn() -> None:
    torch.manual_seed(0)
    net = LeNet5((1, 16, 16), features_dim=3).double()
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net(t)[0], (x,))


def test_gradcheck_recurrent() -> None:
    torch.manual_seed(0)
    net = RecurrentNet(MLP((2,), hidden_sizes=[3], activation="tanh"), cell="lstm", hidden_size=3).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    starts = torch.tensor([[False, False, True, False], [False, True, False, False]])
    h0 = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, h, c: net(t, (h, c), starts)[0], (x, h0, c0))
