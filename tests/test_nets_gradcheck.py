"""Numerical gradient checks (float64) of our own composite code, not just of PyTorch's layers.

* stochastic pooling (``nets/pooling.py``): the eval path's probability-weighted average, whose gradient
  is checked against the hand-derived formula too, and the training path's sampled pick with the randomness
  fixed (a generator, or the global seed reset before every call), alone and inside LeNet5;
* the recurrent wrappers' reset masking (``nets/recurrent.py``): gradcheck over sequences with resets, and
  the gradient of the outputs at and after a reset with respect to everything before it is exactly zero;
* the dueling head (``nets/q_network.py``): ``dueling_q``'s exact Jacobian and ``QNetwork(dueling=True)``.

Each check fails if the code it covers is changed: e.g. a detached weight in the eval average, a detached
pick in training, a reset that zeroes the state's value but lets its gradient through, or a dueling mean
taken over the batch instead of the actions (all tried on a scratch copy).
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from nets import MLP, LeNet5, RecurrentNet, stochastic_pool2d
from nets.q_network import QNetwork, dueling_q

F64 = torch.float64


def by_params(module: torch.nn.Module, fn) -> tuple[tuple[torch.Tensor, ...], object]:
    """(leaf copies of the parameters, a function of them) for gradcheck with respect to the parameters."""
    names = [n for n, _ in module.named_parameters()]
    leaves = tuple(p.detach().clone().requires_grad_() for _, p in module.named_parameters())

    def call(*ps: torch.Tensor) -> torch.Tensor:
        return fn(lambda *args: functional_call(module, dict(zip(names, ps, strict=True)), args))

    return leaves, call


# -- the feed-forward nets (kept from the first version of this file) --------------------------------------
def test_gradcheck_mlp() -> None:
    torch.manual_seed(0)
    net = MLP((3,), hidden_sizes=[4, 3], activation="tanh", norm="layer").double()
    x = torch.randn(2, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda t: net(t)[0], (x,))
    params, call = by_params(net, lambda f: f(x.detach())[0])
    assert gradcheck(call, params)


def test_gradcheck_cnn() -> None:
    torch.manual_seed(0)
    net = LeNet5((1, 16, 16), features_dim=3).double()
    x = torch.rand(1, 1, 16, 16, dtype=F64, requires_grad=True)
    assert gradcheck(lambda t: net(t)[0], (x,))


# -- stochastic pooling ------------------------------------------------------------------------------------
def mixed_sign_input(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Entries bounded away from 0 (|x| >= 0.1, where the clamp has no kink), about a quarter negative."""
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(shape, generator=g, dtype=F64) + 0.1
    sign = torch.where(torch.rand(shape, generator=g, dtype=F64) < 0.25, -1.0, 1.0).to(F64)
    return magnitude * sign


def test_stochastic_pool_eval_gradient_is_the_hand_derived_one() -> None:
    # overlapping windows (3x3, stride 2) with zero padding: a pixel's gradient sums over several windows
    x = mixed_sign_input(0, (2, 2, 5, 5)).requires_grad_()
    assert gradcheck(lambda t: stochastic_pool2d(t, 3, stride=2, padding=1, training=False), (x,))

    # out = sum_i a_i w_i / S with w_i = max(a_i, 0), S = sum_k w_k; d out / d a_j = (2 a_j - out) / S for
    # a_j > 0 and 0 for a_j < 0 (w_j = dw_j/da_j = 0): built window by window, folded back onto the pixels
    out = stochastic_pool2d(x, 3, stride=2, padding=1, training=False)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    (grad,) = torch.autograd.grad(out, x, upstream)
    windows = torch.nn.functional.unfold(x.detach(), 3, padding=1, stride=2).view(2, 2, 9, -1)
    total = windows.clamp(min=0).sum(2, keepdim=True)
    local = torch.where(windows > 0, (2 * windows - out.detach().flatten(2).unsqueeze(2)) / total, 0.0)
    expected = torch.nn.functional.fold(
        (local * upstream.flatten(2).unsqueeze(2)).view(2, 18, -1), (5, 5), 3, padding=1, stride=2
    )
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    assert (grad[x.detach() < 0] == 0).all() and (grad[x.detach() > 0] != 0).any()


def test_stochastic_pool_eval_zero_window_has_zero_not_nan_gradient() -> None:
    # an all-zero window and an all-negative one output 0; their gradient is 0 (the clamped denominator)
    x = torch.tensor([[[[0.0, 0.0, -1.0, -2.0], [0.0, 0.0, -3.0, -0.5]]]], dtype=F64, requires_grad=True)
    out = stochastic_pool2d(x, 2, training=False)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert out.tolist() == [[[[0.0, 0.0]]]]
    assert torch.equal(grad, torch.zeros_like(x))


def test_stochastic_pool_training_gradcheck_with_fixed_samples() -> None:
    x = mixed_sign_input(2, (2, 3, 6, 6)).requires_grad_()

    def pool(t: torch.Tensor) -> torch.Tensor:  # the same uniforms on every call: a fixed sample per window
        return stochastic_pool2d(t, 2, stride=1, training=True, generator=torch.Generator().manual_seed(3))

    assert gradcheck(pool, (x,))
    # each window passes its upstream gradient to exactly the entry it picked: with stride 1 a pixel collects
    # from every window that picked it, so the gradient counts the picks per pixel
    out = pool(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    windows = torch.nn.functional.unfold(x.detach(), 2, stride=1).view(2, 3, 4, -1)
    picked = (windows == out.detach().flatten(2).unsqueeze(2)).to(F64)
    assert torch.equal(
        picked.sum(2), torch.ones_like(picked.sum(2))
    )  # one entry per window, never a negative
    assert (windows[picked.bool()] > 0).all()
    counts = torch.nn.functional.fold(picked.view(2, 12, -1), (6, 6), 2, stride=1)
    assert torch.equal(grad, counts)


@pytest.mark.parametrize("training", [False, True])
def test_lenet5_with_stochastic_pooling_gradcheck(training: bool) -> None:
    torch.manual_seed(0)
    net = (
        LeNet5((1, 16, 16), features_dim=3, activation="relu", pooling="stochastic").double().train(training)
    )
    x = torch.rand(2, 1, 16, 16, dtype=F64, requires_grad=True)

    def forward(f, t: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(7)  # training mode samples from the global generator: the same picks every call
        return f(t)[0]

    # fast_mode: the Jacobian checked along random directions (a full check over LeNet5's ~5,000 parameters
    # takes minutes); the pooling layers alone have the full check above
    assert gradcheck(lambda t: forward(net, t), (x,), fast_mode=True)
    params, call = by_params(net, lambda f: forward(f, x.detach()))
    assert gradcheck(call, params, fast_mode=True)
    if training:  # and the samples are real: another seed picks other entries
        torch.manual_seed(8)
        assert not torch.equal(net(x)[0], forward(net, x))


# -- recurrent wrappers: resets cut the gradient -----------------------------------------------------------
RESETS = {0: 2, 1: 1, 2: 4}  # row -> the time step at which its episode restarts (row 3 never resets)


def recurrent_case(cell: str) -> tuple[RecurrentNet, torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    torch.manual_seed(0)
    net = RecurrentNet(
        MLP((2,), hidden_sizes=[3], activation="tanh"), cell=cell, hidden_size=3, num_layers=2
    ).double()
    x = torch.randn(4, 6, 2, dtype=F64, requires_grad=True)
    starts = torch.zeros(4, 6, dtype=torch.bool)
    for row, t in RESETS.items():
        starts[row, t] = True
    n_states = 2 if cell == "lstm" else 1
    states = tuple(torch.randn(2, 4, 3, dtype=F64, requires_grad=True) for _ in range(n_states))
    return net, x, states, starts


def run_recurrent(
    net: RecurrentNet, x: torch.Tensor, states: tuple[torch.Tensor, ...], starts
) -> torch.Tensor:
    out, _ = net(x, states if len(states) == 2 else states[0], starts)
    return out


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_reset_masking_gradcheck(cell: str) -> None:
    net, x, states, starts = recurrent_case(cell)
    assert gradcheck(lambda t, *s: run_recurrent(net, t, s, starts), (x, *states))

    def final_state(t: torch.Tensor, *s: torch.Tensor) -> torch.Tensor:  # what the next call continues from
        _, state = net(t, s if len(s) == 2 else s[0], starts)
        return torch.cat([h.flatten() for h in (state if isinstance(state, tuple) else (state,))])

    assert gradcheck(final_state, (x, *states))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_gradient_flows_across_a_reset(cell: str) -> None:
    net, x, states, starts = recurrent_case(cell)
    jac = torch.autograd.functional.jacobian(lambda t, *s: run_recurrent(net, t, s, starts), (x, *states))
    d_x, d_states = jac[0], jac[1:]  # d_x: (B, T, H, B, T, 2); each state's: (B, T, H, layers, B, H)
    for row in range(4):
        reset = RESETS.get(row)
        for t in range(6):
            # every output depends on its own row only, and on no later input
            others = [r for r in range(4) if r != row]
            assert (d_x[row, t][:, others] == 0).all()
            assert (d_x[row, t, :, row, t + 1 :] == 0).all()
            if reset is not None and t >= reset:
                # at and after the reset: exactly zero with respect to the inputs before it and the initial state
                assert (d_x[row, t, :, row, :reset] == 0).all(), (cell, row, t)
                for d_s in d_states:
                    assert (d_s[row, t, :, :, row] == 0).all(), (cell, row, t)
            else:
                # before a reset (or without one) the gradient does reach back to the start and the initial state
                assert (d_x[row, t, :, row, 0] != 0).any(), (cell, row, t)
                assert any((d_s[row, t, :, :, row] != 0).any() for d_s in d_states), (cell, row, t)
        if reset is not None:  # after the reset the new episode's inputs do drive the later outputs
            assert (d_x[row, 5, :, row, reset] != 0).any()


def test_recurrent_reset_matches_a_fresh_start() -> None:
    # the outputs from a reset on equal the outputs of the same steps run alone from the initial state
    net, x, states, starts = recurrent_case("lstm")
    out = run_recurrent(net, x, states, starts)
    fresh, _ = net(x[0:1, 2:], None)
    torch.testing.assert_close(out[0:1, 2:], fresh, rtol=0, atol=1e-12)


# -- the dueling head --------------------------------------------------------------------------------------
def test_dueling_q_values_and_exact_jacobian() -> None:
    value = torch.tensor([[1.0], [-2.0]], dtype=F64)
    adv = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]], dtype=F64)
    # row 0: mean A = 3 -> Q = 1 + A - 3 = [-1, 0, 4]; row 1: mean A = 1 -> Q = -2 + A - 1 = [-3, -3, 0]
    assert dueling_q(value, adv).tolist() == [[-1.0, 0.0, 4.0], [-3.0, -3.0, 0.0]]
    d_v, d_a = torch.autograd.functional.jacobian(dueling_q, (value, adv))
    n = 3
    for b in range(2):
        for other in range(2):  # rows never mix
            assert torch.equal(d_v[b, :, other], torch.full((n, 1), float(b == other), dtype=F64))
            expected = (torch.eye(n, dtype=F64) - 1.0 / n) if b == other else torch.zeros(n, n, dtype=F64)
            torch.testing.assert_close(d_a[b, :, other], expected, rtol=0, atol=1e-15)
    # DRQN's (B, T, A): the mean runs over the actions, the last axis
    v3, a3 = (
        torch.randn(2, 4, 1, dtype=F64, requires_grad=True),
        torch.randn(2, 4, 5, dtype=F64, requires_grad=True),
    )
    assert gradcheck(dueling_q, (v3, a3))
    torch.testing.assert_close(dueling_q(v3, a3).mean(-1, keepdim=True), v3)


def test_dueling_qnetwork_gradcheck() -> None:
    torch.manual_seed(0)
    net = QNetwork(MLP((3,), hidden_sizes=[4], activation="tanh"), n_actions=3, dueling=True).double()
    x = torch.randn(2, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda t: net(t)[0], (x,))
    params, call = by_params(net, lambda f: f(x.detach())[0])
    assert gradcheck(call, params)
    # Q is V + A - mean A from the two streams on the same features
    features, _ = net.extractor(x)
    adv, value = net.head(features), net.value(features)
    torch.testing.assert_close(net(x)[0], value + adv - adv.mean(1, keepdim=True), rtol=0, atol=1e-15)


def test_dueling_recurrent_qnetwork_gradcheck_with_resets() -> None:
    torch.manual_seed(0)
    extractor = RecurrentNet(MLP((2,), hidden_sizes=[3], activation="tanh"), cell="gru", hidden_size=3)
    net = QNetwork(extractor, n_actions=2, dueling=True).double()
    x = torch.randn(2, 4, 2, dtype=F64, requires_grad=True)
    starts = torch.tensor([[False, False, True, False], [True, False, False, False]])
    assert gradcheck(lambda t: net(t, None, starts)[0], (x,))
    params, call = by_params(net, lambda f: f(x.detach(), None, starts)[0])
    assert gradcheck(call, params)
    # a reset cuts the gradient through the head too
    jac = torch.autograd.functional.jacobian(lambda t: net(t, None, starts)[0], x)
    assert (jac[0, 2:, :, 0, :2] == 0).all() and (jac[0, 2:, :, 0, 2:] != 0).any()
