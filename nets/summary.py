"""Parameter counts and a per-layer summary table (output shape, parameters), like Keras' ``model.summary()``.

Knowing where the parameters sit (e.g. most of a CNN's are in the first FC layer after the flatten) is the
quickest check that an architecture is scaled sensibly for its input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from nets.base import observation_shape


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _shape_of(output: object) -> str:
    if isinstance(output, torch.Tensor):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)) and output:
        return _shape_of(output[0])
    return "-"


def summarize(
    module: nn.Module,
    example: torch.Tensor | Sequence[int] | gym.Space,
    batch_size: int = 2,
) -> str:
    """A table of the leaf layers in call order with their output shapes and parameter counts, plus totals.

    ``example`` is an input batch, or one observation's shape (or Box space) without the batch dimension,
    in which case a zero batch of ``batch_size`` is used. The pass runs in eval mode under ``no_grad`` (so
    batch norm and stochastic layers behave deterministically); the module's mode is restored afterwards.
    A recurrent net given a shape is run for a single step.
    """
    if isinstance(example, torch.Tensor):
        x = example
    else:
        param = next(module.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        device = param.device if param is not None else "cpu"
        x = torch.zeros(batch_size, *observation_shape(example), dtype=dtype, device=device)

    rows: list[tuple[str, str, int]] = []
    called: set[str] = set()
    handles = []
    for name, layer in module.named_modules():
        if any(True for _ in layer.children()):
            continue

        def hook(mod: nn.Module, _inputs: object, output: object, name: str = name) -> None:
            own = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append((f"{name or type(mod).__name__} ({type(mod).__name__})", _shape_of(output), own))
            called.add(name)

        handles.append(layer.register_forward_hook(hook))
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with torch.no_grad():
            output = module(x)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training

    for name, layer in module.named_modules():
        own = sum(p.numel() for p in layer.parameters(recurse=False))
        if own and name not in called:  # a leaf the forward pass skipped, or a container's own parameters
            label = "-" if any(True for _ in layer.children()) else "(not called)"
            rows.append((f"{name or type(layer).__name__} ({type(layer).__name__})", label, own))
    total = count_parameters(module)
    trainable = count_parameters(module, trainable_only=True)

    header = ("Layer (type)", "Output shape", "Params")
    body = [(n, s, f"{p:,}") for n, s, p in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(3)]
    rule = "-" * (sum(widths) + 4)

    def line(cells: tuple[str, str, str]) -> str:
        return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}"

    lines = [
        f"{type(module).__name__} on input {tuple(x.shape)} -> output {_shape_of(output)}",
        rule,
        line(header),
        rule,
        *(line(r) for r in body),
        rule,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(lines)
