"""Parameter counting and the per-layer summary table."""

from __future__ import annotations

import torch

from nets import MLP, LeNet5, RecurrentNet, count_parameters, freeze_module, summarize


def test_count_parameters() -> None:
    net = MLP((4,), hidden_sizes=[8, 2])
    assert count_parameters(net) == (4 * 8 + 8) + (8 * 2 + 2)
    freeze_module(net.blocks[0])
    assert count_parameters(net, trainable_only=True) == 8 * 2 + 2


def test_summary_table_lists_layers_shapes_and_totals() -> None:
    net = LeNet5((1, 28, 28), batch_norm=True)
    net.train()
    text = summarize(net, (1, 28, 28))
    assert "trunk.0 (Conv2d)" in text and "(2, 6, 24, 24)" in text and "(2, 84)" in text
    assert f"Total params: {count_parameters(net):,}" in text
    assert "Non-trainable params: 0" in text
    assert net.training and all(m.training for m in net.modules())  # mode restored
    conv_row = next(line for line in text.splitlines() if line.startswith("trunk.0 "))
    assert conv_row.split()[-1] == f"{6 * 1 * 25:,}"  # no bias before batch norm


def test_summary_of_example_batch_and_recurrent_net() -> None:
    net = RecurrentNet(MLP((3,), hidden_sizes=[5]), "gru", 4)
    text = summarize(net, torch.zeros(2, 6, 3))
    assert "rnn (GRU)" in text and "(2, 6, 4)" in text
    assert f"Total params: {count_parameters(net):,}" in text
