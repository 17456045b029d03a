"""Stochastic pooling (Zeiler & Fergus 2013): sampling distribution, eval expectation, gradients."""

from __future__ import annotations

import pytest
import torch

from nets import StochasticPool2d, stochastic_pool2d


def test_training_samples_follow_activation_proportional_distribution() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    n = 20_000
    # n copies of the same 2x2 window, as channels of one image
    x = values.view(1, 1, 2, 2).expand(1, n, 2, 2).contiguous()
    generator = torch.Generator().manual_seed(0)
    out = stochastic_pool2d(x, 2, training=True, generator=generator).flatten()
    counts = torch.stack([(out == v).sum() for v in values]).double()
    assert counts.sum() == n  # every output is one of the window's activations
    expected = n * values.double() / values.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def test_zero_window_gives_zero_and_negative_entries_are_never_picked() -> None:
    x = torch.tensor([[[[0.0, 0.0, -1.0, 2.0], [0.0, 0.0, -3.0, 0.0]]]])
    pool = StochasticPool2d(2)
    for _ in range(20):
        out = pool(x)
        assert out.tolist() == [[[[0.0, 2.0]]]]
    pool.eval()
    assert pool(x).tolist() == [[[[0.0, 2.0]]]]


def test_eval_equals_probability_weighted_average() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 6)
    pool = StochasticPool2d(3, stride=2, padding=1).eval()
    out = pool(x)
    assert out.shape == torch.nn.functional.max_pool2d(x, 3, 2, 1).shape
    windows = torch.nn.functional.unfold(x, 3, padding=1, stride=2).view(2, 3, 9, -1)
    expected = (windows**2).sum(2) / windows.sum(2)
    torch.testing.assert_close(out.flatten(2), expected)
    # ... which is the mean of the training-mode samples
    train = StochasticPool2d(3, stride=2, padding=1).train()
    big = x.repeat(2000, 1, 1, 1)
    samples = train(big, generator=torch.Generator().manual_seed(1)).view(2000, 2, 3, 3, 3)
    torch.testing.assert_close(samples.mean(0), out, atol=0.02, rtol=0)


def test_output_shape_matches_maxpool() -> None:
    x = torch.rand(2, 4, 9, 7)
    for kernel, stride in [(2, None), (3, 2), (2, 1)]:
        assert StochasticPool2d(kernel, stride)(x).shape == torch.nn.MaxPool2d(kernel, stride)(x).shape
    with pytest.raises(ValueError, match="does not fit"):
        StochasticPool2d(5)(torch.rand(1, 1, 3, 3))


def test_gradcheck_eval_mode() -> None:
    x = (torch.rand(1, 2, 4, 4, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: stochastic_pool2d(t, 2, training=False), (x,))


def test_gradcheck_training_mode_with_fixed_sample() -> None:
    x = (torch.rand(1, 2, 4, 4, dtype=torch.float64) + 0.1).requires_grad_()

    def pool(t: torch.Tensor) -> torch.Tensor:
        return stochastic_pool2d(t, 2, training=True, generator=torch.Generator().manual_seed(3))

    assert torch.autograd.gradcheck(pool, (x,))
    # the gradient goes to exactly the sampled entry of each window, like max pooling
    (grad,) = torch.autograd.grad(pool(x).sum(), x)
    assert grad.sum().item() == 8 and set(grad.unique().tolist()) <= {0.0, 1.0}


def test_a_draw_of_exactly_zero_never_picks_a_zero_probability_entry(monkeypatch):
    """torch.rand can return 0.0: the pick must still be an entry with positive weight (found by a test review)."""
    monkeypatch.setattr(
        torch, "rand", lambda *args, **kwargs: torch.zeros(*args[0], dtype=kwargs.get("dtype"))
    )
    out = stochastic_pool2d(torch.tensor([[[[-1.0, 2.0], [0.0, 0.0]]]]), 2, training=True)
    assert out.item() == 2.0
