"""Recurrent feature extractors: any per-frame extractor followed by an Elman RNN, an LSTM or a GRU.

Recurrence lets a value function integrate information over time when one frame does not show the whole
state (Hausknecht & Stone 2015, DRQN). Cells: Elman 1990 (tanh RNN), Hochreiter & Schmidhuber 1997 (LSTM),
Cho et al. 2014 (GRU).

Call convention (``is_recurrent = True``)::

    features, state = net(obs, state=None, starts=None)

* ``obs`` is a sequence ``(batch, time, *obs_shape)`` -> features ``(batch, time, hidden_size)``, or one step
  ``(batch, *obs_shape)`` -> features ``(batch, hidden_size)``.
* ``state`` is what the previous call returned (``None`` = :meth:`RecurrentNet.initial_state`): a tensor
  ``(num_layers, batch, hidden_size)`` for rnn/gru, a pair ``(h, c)`` of those for lstm.
* ``starts`` is a bool mask ``(batch, time)`` (or ``(batch,)`` for one step) marking the first step of an
  episode; the state of those rows is reset to the initial state *before* that step is processed, so one
  sequence may span episode boundaries (as replayed sequences and rollouts do).
"""

from __future__ import annotations

import torch
from torch import nn

from nets.base import FeatureExtractor

CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}

RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RecurrentNet(FeatureExtractor):
    """Encoder (applied to every frame) then a stacked recurrent cell; ``features_dim`` is ``hidden_size``.

    The encoder is any stateless :class:`FeatureExtractor` (MLP, NatureCNN, LeNet5, ...); it does the uint8
    scaling, so this module never touches pixel values. Gradient clipping, which recurrent nets usually
    need, is the agent's job.
    """

    is_recurrent = True

    def __init__(
        self, encoder: FeatureExtractor, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1
    ) -> None:
        if cell not in CELLS:
            raise ValueError(f"unknown recurrent cell {cell!r}; choose one of {list(CELLS)}")
        if encoder.is_recurrent:
            raise ValueError("the encoder of a recurrent net must be stateless")
        if hidden_size < 1 or num_layers < 1:
            raise ValueError(f"hidden_size and num_layers must be >= 1, got {hidden_size}, {num_layers}")
        super().__init__(encoder.input_shape, hidden_size)
        self.cell_type = cell
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.encoder = encoder
        self.rnn = CELLS[cell](encoder.features_dim, hidden_size, num_layers=num_layers, batch_first=True)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> RecurrentState:
        """Zeros of shape ``(num_layers, batch_size, hidden_size)`` (a pair of them for an LSTM)."""
        dtype = next(self.rnn.parameters()).dtype
        h = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device, dtype=dtype)
        return (h, h.clone()) if self.cell_type == "lstm" else h

    @property
    def state_size(self) -> int:
        """Floats per env in a flat stored state (:func:`flatten_state`)."""
        return self.num_layers * self.hidden_size * (2 if self.cell_type == "lstm" else 1)

    def unflatten_state(self, flat: torch.Tensor) -> RecurrentState:
        """A stored flat row per env back to this net's state (:func:`unflatten_state`)."""
        return unflatten_state(flat, self.num_layers, self.cell_type == "lstm")

    def _reset(self, state: RecurrentState, mask: torch.Tensor) -> RecurrentState:
        """Rows of ``state`` where ``mask`` (batch,) is true go back to the (zero) initial state."""
        keep = (~mask).to(self._state_dtype(state)).view(1, -1, 1)
        if isinstance(state, tuple):
            return (state[0] * keep, state[1] * keep)
        return state * keep

    @staticmethod
    def _state_dtype(state: RecurrentState) -> torch.dtype:
        return state[0].dtype if isinstance(state, tuple) else state.dtype

    def forward(  # type: ignore[override]
        self,
        obs: torch.Tensor,
        state: RecurrentState | None = None,
        starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, RecurrentState]:
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
        features = frames.view(batch, time, -1)
        if state is None:
            state = self.initial_state(batch, obs.device)
        if starts is None:
            out, state = self.rnn(features, state)
        else:
            starts = starts.to(device=obs.device, dtype=torch.bool)
            if starts.shape != (batch, time):
                raise ValueError(f"starts must have shape {(batch, time)}, got {tuple(starts.shape)}")
            # Run the cell over the stretches between time steps where some row starts an episode: one fused
            # call per stretch instead of one per step, with the resets applied at the stretch boundaries.
            boundaries = sorted({0, *starts.any(dim=0).nonzero().flatten().tolist()})
            outputs = []
            for i, t0 in enumerate(boundaries):
                t1 = boundaries[i + 1] if i + 1 < len(boundaries) else time
                state = self._reset(state, starts[:, t0])
                out_part, state = self.rnn(features[:, t0:t1], state)
                outputs.append(out_part)
            out = torch.cat(outputs, dim=1)
        return (out[:, 0] if single_step else out), state


class RowSequenceNet(FeatureExtractor):
    """An image read as a sequence of its rows: the encoder sees one row (C*W values), the cell runs over the
    H rows, and the features are the last row's output (the "pixel-row LSTM" of sequential MNIST).

    ``rows`` is any recurrent extractor with the call convention above (an Elman RNN / LSTM / GRU
    :class:`RecurrentNet`, or a Jordan net) whose encoder takes a flat row ``(C * W,)``. Stateless across
    calls (``is_recurrent = False``): each image is a whole sequence, so agents treat it like any
    feed-forward extractor.
    """

    def __init__(self, image_shape: tuple[int, int, int], rows: FeatureExtractor) -> None:
        c, h, w = image_shape
        if not rows.is_recurrent:
            raise ValueError(f"the row net must be recurrent, got {type(rows).__name__}")
        if rows.input_shape != (c * w,):
            raise ValueError(f"the row encoder must take rows of shape {(c * w,)}, got {rows.input_shape}")
        super().__init__(image_shape, rows.features_dim)
        self.rows = rows

    def forward(self, obs: torch.Tensor, state: object | None = None) -> tuple[torch.Tensor, object | None]:
        # (B, C, H, W) -> (B, H, C*W): time runs down the image; the encoder scales uint8 pixels itself
        sequence = obs.movedim(-3, -2).reshape(obs.shape[0], obs.shape[-2], -1)
        out, _ = self.rows(sequence)
        return out[:, -1], state


def flatten_state(state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """A recurrent state ``(layers, B, H)`` (or an LSTM's pair of them) as one ``(B, layers * H [* 2])`` row
    per env, the form the sequence replay stores."""
    parts = state if isinstance(state, tuple) else (state,)
    return torch.cat([p.transpose(0, 1).reshape(p.shape[1], -1) for p in parts], dim=1)


def unflatten_state(
    flat: torch.Tensor, num_layers: int, lstm: bool
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`flatten_state`."""
    parts = flat.chunk(2, dim=1) if lstm else (flat,)
    out = [p.reshape(p.shape[0], num_layers, -1).transpose(0, 1).contiguous() for p in parts]
    return (out[0], out[1]) if lstm else out[0]
