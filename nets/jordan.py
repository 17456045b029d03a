"""Jordan's simple recurrent network (Jordan 1986, "Serial order: a parallel distributed processing approach").

Elman's network (``net=rnn``, :class:`nets.recurrent.RecurrentNet`) feeds the hidden layer back to itself;
Jordan's feeds the network's *output* back: its context (“state”) units hold the previous output, and the
hidden layer sees them beside the current input::

    h_t = tanh(W_x e_t + W_c c_t + b_h)        e_t: the per-frame encoder's features of x_t
    y_t = tanh(W_y h_t + b_y)                  the output, the extractor's features (features_dim = output_size)
    c_{t+1} = μ c_t + y_t                      c_0 = 0; μ = context_decay (0: the context is exactly y_{t-1})

Jordan's state units also had a self-connection μ, so that they hold a decaying sum of the past outputs; it is
``context_decay`` here, 0 by default (the context is the previous output, as usually stated). The output
goes through tanh so that what is fed back stays bounded; an agent puts its own linear head on top (a
Q-head, a classifier), so the fed-back output is the last layer the extractor owns.

Same call convention and state contract as :class:`nets.recurrent.RecurrentNet` (``is_recurrent = True``)::

    features, state = net(obs, state=None, starts=None)

with ``state`` the context, a tensor ``(1, batch, output_size)``, and ``starts`` a bool mask ``(batch, time)``
(or ``(batch,)``) that resets the context of those rows to zero before that step. The output feeds back, so
the steps run one at a time (the encoder and the input projection still run on the whole sequence at once).
"""

from __future__ import annotations

import torch
from torch import nn

from nets.base import FeatureExtractor


class JordanNet(FeatureExtractor):
    """Encoder (applied to every frame), one tanh hidden layer, a tanh output layer fed back as context."""

    is_recurrent = True
    num_layers = 1  # one context tensor (1, batch, output_size), like a one-layer Elman RNN's state

    def __init__(
        self,
        encoder: FeatureExtractor,
        hidden_size: int = 128,
        output_size: int = 64,
        context_decay: float = 0.0,
    ) -> None:
        if encoder.is_recurrent:
            raise ValueError("the encoder of a recurrent net must be stateless")
        if hidden_size < 1 or output_size < 1:
            raise ValueError(f"hidden_size and output_size must be >= 1, got {hidden_size}, {output_size}")
        if not 0.0 <= context_decay < 1.0:
            raise ValueError(f"context_decay must be in [0, 1), got {context_decay}")
        super().__init__(encoder.input_shape, output_size)
        self.hidden_size = int(hidden_size)
        self.output_size = int(output_size)
        self.context_decay = float(context_decay)
        self.encoder = encoder
        self.input_to_hidden = nn.Linear(encoder.features_dim, hidden_size)  # W_x, b_h
        self.context_to_hidden = nn.Linear(output_size, hidden_size, bias=False)  # W_c
        self.hidden_to_output = nn.Linear(hidden_size, output_size)  # W_y, b_y

    @property
    def state_size(self) -> int:
        """Floats per env in a flat stored state (:func:`nets.recurrent.flatten_state`)."""
        return self.output_size

    def unflatten_state(self, flat: torch.Tensor) -> torch.Tensor:
        """A stored ``(batch, output_size)`` row per env back to the context ``(1, batch, output_size)``."""
        return flat.reshape(flat.shape[0], 1, self.output_size).transpose(0, 1).contiguous()

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Zeros ``(1, batch_size, output_size)``: no previous output at an episode start."""
        dtype = self.hidden_to_output.weight.dtype
        return torch.zeros(1, batch_size, self.output_size, device=device, dtype=dtype)

    def step(self, projected: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """One step's output y_t from W_x e_t + b_h (``projected``, (B, hidden)) and the context (B, output)."""
        hidden = torch.tanh(projected + self.context_to_hidden(context))
        return torch.tanh(self.hidden_to_output(hidden))

    def forward(  # type: ignore[override]
        self,
        obs: torch.Tensor,
        state: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        obs_dims = len(self.input_shape)
        if obs.dim() == obs_dims + 1:
            single_step = True
            obs = obs.unsqueeze(1)
            if starts is not None:
                starts = starts.reshape(-1, 1)
        elif obs.dim() == obs_dims + 2:
            single_step = False
        else:
            raise ValueError(
                f"expected observations (batch, time, *{self.input_shape}) or (batch, *{self.input_shape}), "
                f"got shape {tuple(obs.shape)}"
            )
        batch, time = obs.shape[:2]
        frames, _ = self.encoder(obs.reshape(batch * time, *obs.shape[2:]))
        projected = self.input_to_hidden(frames).view(batch, time, -1)  # W_x e_t + b_h for every t at once
        if state is None:
            state = self.initial_state(batch, obs.device)
        if starts is not None:
            starts = starts.to(device=obs.device, dtype=torch.bool)
            if starts.shape != (batch, time):
                raise ValueError(f"starts must have shape {(batch, time)}, got {tuple(starts.shape)}")
            keep = (~starts).to(state.dtype).unsqueeze(-1)  # (B, T, 1)
        context = state[0]
        outputs = []
        for t in range(time):
            if starts is not None:
                context = context * keep[:, t]  # an episode starts: no previous output
            y = self.step(projected[:, t], context)
            outputs.append(y)
            context = self.context_decay * context + y if self.context_decay else y
        out = torch.stack(outputs, dim=1)
        return (out[:, 0] if single_step else out), context.unsqueeze(0)
