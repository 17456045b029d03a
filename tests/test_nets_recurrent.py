"""Recurrent extractors: state shapes, single-step vs sequence equivalence, episode-start resets."""

from __future__ import annotations

import pytest
import torch

from nets import MLP, LeNet5, RecurrentNet

torch.set_num_threads(1)


def make(cell: str, num_layers: int = 2) -> RecurrentNet:
    torch.manual_seed(0)
    return RecurrentNet(MLP((3,), hidden_sizes=[8]), cell=cell, hidden_size=6, num_layers=num_layers)


def states_close(a: object, b: object) -> None:
    if isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y)
    else:
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_state_and_output_shapes(cell: str) -> None:
    net = make(cell)
    assert net.is_recurrent and net.features_dim == 6
    state = net.initial_state(4)
    tensors = state if cell == "lstm" else (state,)
    assert all(t.shape == (2, 4, 6) and not t.any() for t in tensors)
    seq, seq_state = net(torch.randn(4, 5, 3))
    assert seq.shape == (4, 5, 6)
    step, step_state = net(torch.randn(4, 3), state)
    assert step.shape == (4, 6)
    for s in (seq_state, step_state):
        assert all(t.shape == (2, 4, 6) for t in (s if cell == "lstm" else (s,)))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_single_steps_equal_one_sequence(cell: str) -> None:
    net = make(cell)
    obs = torch.randn(3, 7, 3)
    starts = torch.zeros(3, 7, dtype=torch.bool)
    starts[0, 2] = starts[2, 5] = starts[1, 0] = True
    seq, seq_state = net(obs, None, starts)
    state = None
    steps = []
    for t in range(7):
        out, state = net(obs[:, t], state, starts[:, t])
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), seq)
    states_close(state, seq_state)
    # without starts, too
    seq, _ = net(obs)
    state, steps = None, []
    for t in range(7):
        out, state = net(obs[:, t], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), seq)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_start_resets_to_fresh_state(cell: str) -> None:
    net = make(cell)
    obs = torch.randn(2, 6, 3)
    starts = torch.zeros(2, 6, dtype=torch.bool)
    starts[0, 3] = True
    out, _ = net(obs, net.initial_state(2), starts)
    fresh, _ = net(obs[:1, 3:])  # row 0 from its episode start, fresh state
    torch.testing.assert_close(out[:1, 3:], fresh)
    # row 1 carried on unaffected
    whole, _ = net(obs[1:])
    torch.testing.assert_close(out[1:], whole)
    # a carried (non-zero) state is discarded on a single-step start
    _, carried = net(torch.randn(2, 4, 3))
    step, after = net(obs[:, 0], carried, torch.tensor([True, False]))
    fresh_step, fresh_state = net(obs[:1, 0])
    torch.testing.assert_close(step[:1], fresh_step)
    first = after[0] if cell == "lstm" else after
    fresh_first = fresh_state[0] if cell == "lstm" else fresh_state
    torch.testing.assert_close(first[:, :1], fresh_first)


def test_cnn_encoder_and_uint8_frames() -> None:
    net = RecurrentNet(LeNet5((1, 28, 28)), cell="gru", hidden_size=5)
    obs = torch.randint(0, 256, (2, 3, 1, 28, 28), dtype=torch.uint8)
    out, _ = net(obs)
    assert out.shape == (2, 3, 5)
    torch.testing.assert_close(out, net(obs.float() / 255)[0])


def test_bad_shapes_raise() -> None:
    net = make("gru")
    with pytest.raises(ValueError, match="expected observations"):
        net(torch.randn(2, 3, 4, 3))
    with pytest.raises(ValueError, match="starts must have shape"):
        net(torch.randn(2, 4, 3), None, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown recurrent cell"):
        RecurrentNet(MLP((3,)), cell="transformer")
