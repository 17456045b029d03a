"""Config schemas of the ``net`` group: one dataclass per option file in ``configs/net/``.

Every schema has ``pretrained`` (a file written by :func:`nets.pretrained.save_encoder`, or a run directory
holding ``encoder.pt``) and ``freeze`` (stop gradients into the extractor; without ``pretrained`` this gives
fixed random features). Range and choice checks run in ``__post_init__`` and name the offending key.

Recurrent nets wrap another net as their per-frame encoder: ``encoder`` names the encoder's option
(``mlp``, ``nature_cnn``, ``lenet5``, ``alexnet``, ``vgg``) and ``encoder_kwargs`` holds that option's
settings, checked by the encoder's own schema, e.g.::

    net=lstm net.encoder=nature_cnn net.hidden_size=256 +net.encoder_kwargs.features_dim=256

(keys absent from the YAML file's ``encoder_kwargs`` are added with Hydra's ``+`` prefix). An encoder can
have its own ``pretrained``/``freeze`` inside ``encoder_kwargs`` (e.g. a CNN from an autoencoder run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rlcore.base.errors import ConfigError
from rlcore.base.validation import require, require_choice

# The choices of the string keys, here (torch-free) so that validating a config needs no torch; the modules
# that build the nets map them to layers (nets.mlp.ACTIVATIONS, nets.recurrent.CELLS; tests check the keys agree).
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu")
NORMS = ("none", "batch", "layer")
INITS = ("default", "xavier", "he", "orthogonal")
PADDINGS = ("same", "valid")
POOLINGS = ("max", "avg", "stochastic")
CELLS = ("rnn", "lstm", "gru")


def _check_dropout(dropout: float) -> None:
    require(0.0 <= dropout < 1.0, "net.dropout", f"must be in [0, 1) (got {dropout})")


def _check_positive(value: int, key: str) -> None:
    require(value > 0, key, f"must be > 0 (got {value})")


@dataclass
class MLPConfig:
    """Fully connected net; ``hidden_sizes: []`` gives the identity (perceptron / softmax regression)."""

    name: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "none"  # none | batch | layer
    init: str = "default"  # default | xavier | he | orthogonal
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        require(
            all(w > 0 for w in self.hidden_sizes),
            "net.hidden_sizes",
            f"widths must be > 0 (got {self.hidden_sizes})",
        )
        require_choice(self.activation, "net.activation", ACTIVATIONS)
        _check_dropout(self.dropout)
        require_choice(self.norm, "net.norm", NORMS)
        require_choice(self.init, "net.init", INITS)


@dataclass
class NatureCNNConfig:
    """Mnih et al. 2015 DQN trunk."""

    name: str = "nature_cnn"
    features_dim: int = 512
    padding: str = "valid"
    batch_norm: bool = False
    dropout: float = 0.0
    dilation: int = 1  # every conv's dilation (Yu & Koltun 2016); 'same' padding keeps sizes
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        _check_positive(self.dilation, "net.dilation")
        _check_positive(self.features_dim, "net.features_dim")
        require_choice(self.padding, "net.padding", PADDINGS)
        _check_dropout(self.dropout)


@dataclass
class LeNet5Config:
    """LeCun et al. 1998, for 28x28/32x32 inputs."""

    name: str = "lenet5"
    features_dim: int = 84
    activation: str = "tanh"
    pooling: str = "avg"
    padding: str = "valid"
    batch_norm: bool = False
    dropout: float = 0.0
    dilation: int = 1  # every conv's dilation (Yu & Koltun 2016); 'same' padding keeps sizes
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        _check_positive(self.dilation, "net.dilation")
        _check_positive(self.features_dim, "net.features_dim")
        require_choice(self.activation, "net.activation", ACTIVATIONS)
        require_choice(self.pooling, "net.pooling", POOLINGS)
        require_choice(self.padding, "net.padding", PADDINGS)
        _check_dropout(self.dropout)


@dataclass
class AlexNetConfig:
    """AlexNet-style (Krizhevsky et al. 2012) scaled for 28-84 px inputs; ``channels`` has 5 conv widths."""

    name: str = "alexnet"
    channels: list[int] = field(default_factory=lambda: [32, 96, 192, 128, 128])
    features_dim: int = 512
    pooling: str = "max"
    padding: str = "same"
    batch_norm: bool = False
    dropout: float = 0.0
    dilation: int = 1  # every conv's dilation (Yu & Koltun 2016); 'same' padding keeps sizes
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        _check_positive(self.dilation, "net.dilation")
        require(
            len(self.channels) == 5 and all(c > 0 for c in self.channels),
            "net.channels",
            f"needs 5 positive conv widths (got {self.channels})",
        )
        _check_positive(self.features_dim, "net.features_dim")
        require_choice(self.pooling, "net.pooling", POOLINGS)
        require_choice(self.padding, "net.padding", PADDINGS)
        _check_dropout(self.dropout)


@dataclass
class VGGConfig:
    """VGG-style (Simonyan & Zisserman 2015): one block of stacked 3x3 convs per ``channels`` entry."""

    name: str = "vgg"
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    convs_per_block: int = 2
    features_dim: int = 512
    pooling: str = "max"
    padding: str = "same"
    batch_norm: bool = False
    dropout: float = 0.0
    dilation: int = 1  # every conv's dilation (Yu & Koltun 2016); 'same' padding keeps sizes
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        _check_positive(self.dilation, "net.dilation")
        require(
            len(self.channels) > 0 and all(c > 0 for c in self.channels),
            "net.channels",
            f"needs at least one positive block width (got {self.channels})",
        )
        _check_positive(self.convs_per_block, "net.convs_per_block")
        _check_positive(self.features_dim, "net.features_dim")
        require_choice(self.pooling, "net.pooling", POOLINGS)
        require_choice(self.padding, "net.padding", PADDINGS)
        _check_dropout(self.dropout)


@dataclass
class LISTAConfig:
    """Learned ISTA encoder (Gregor & LeCun 2010): ``atoms`` sparse-code features after ``iterations`` refinements.

    Trained by ``agent=sparse_coding``, which writes it as encoder.pt; load it with ``net.pretrained=<run>``.
    """

    name: str = "lista"
    atoms: int = 256
    iterations: int = 3
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        _check_positive(self.atoms, "net.atoms")
        require(self.iterations >= 0, "net.iterations", f"must be >= 0 (got {self.iterations})")


# The nets a recurrent net can use as its per-frame encoder, by option name.
ENCODER_CONFIGS: dict[str, type] = {
    "mlp": MLPConfig,
    "nature_cnn": NatureCNNConfig,
    "lenet5": LeNet5Config,
    "alexnet": AlexNetConfig,
    "vgg": VGGConfig,
}


@dataclass
class Conv1dConfig:
    """1-D convolutions over time (a temporal-conv net): over a (time, features) observation, e.g. the last k
    observations that ``env.frame_stack=k`` stacks, or over an image's rows (time = H, channels = C*W).
    One conv per ``channels`` entry with kernel ``kernel_size`` and dilation ``dilations[i]`` (1, 2, 4, ...:
    WaveNet's doubling, van den Oord et al. 2016), then one FC layer of ``features_dim``."""

    name: str = "conv1d"
    channels: list[int] = field(default_factory=lambda: [64, 64])
    kernel_size: int = 3
    dilations: list[int] = field(default_factory=lambda: [1, 1])
    padding: str = "same"
    activation: str = "relu"
    features_dim: int = 128
    dropout: float = 0.0
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        require(
            len(self.channels) > 0 and all(c > 0 for c in self.channels),
            "net.channels",
            f"needs at least one positive conv width (got {self.channels})",
        )
        _check_positive(self.kernel_size, "net.kernel_size")
        require(
            len(self.dilations) == len(self.channels) and all(d > 0 for d in self.dilations),
            "net.dilations",
            f"needs one positive dilation per conv in net.channels ({len(self.channels)}; got {self.dilations})",
        )
        require_choice(self.padding, "net.padding", PADDINGS)
        require_choice(self.activation, "net.activation", ACTIVATIONS)
        _check_positive(self.features_dim, "net.features_dim")
        _check_dropout(self.dropout)


@dataclass
class RecurrentConfig:
    """Encoder per frame, then an Elman RNN / LSTM / GRU (chosen by ``name``) with ``hidden_size`` units."""

    name: str = "lstm"
    encoder: str = "mlp"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    hidden_size: int = 128
    num_layers: int = 1
    rows: bool = (
        False  # read each (C, H, W) image as a sequence of its H rows (e.g. an LSTM over MNIST's rows)
    )
    pretrained: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        self._check_name()
        require_choice(self.encoder, "net.encoder", ENCODER_CONFIGS)
        _check_positive(self.hidden_size, "net.hidden_size")
        _check_positive(self.num_layers, "net.num_layers")
        self.encoder_config()  # fail at config time, not at build time

    def _check_name(self) -> None:
        require_choice(self.name, "net.name", CELLS)

    def encoder_config(self) -> Any:
        """The encoder's typed config, built (and range-checked) from ``encoder`` and ``encoder_kwargs``."""
        kwargs = dict(self.encoder_kwargs)
        require(
            kwargs.pop("name", self.encoder) == self.encoder,
            "net.encoder_kwargs.name",
            f"must match net.encoder ({self.encoder!r}) or be left out",
        )
        schema = ENCODER_CONFIGS[self.encoder]
        try:
            return schema(name=self.encoder, **kwargs)
        except TypeError as exc:
            allowed = [f.name for f in dataclasses.fields(schema) if f.name != "name"]
            unknown = sorted(set(kwargs) - set(allowed))
            detail = (
                f"unknown keys {unknown} for encoder {self.encoder!r}; allowed keys: {', '.join(allowed)}"
            )
            raise ConfigError(f"config key 'net.encoder_kwargs': {detail if unknown else exc}") from None
        except ConfigError as exc:
            raise ConfigError(
                str(exc).replace("config key 'net.", "config key 'net.encoder_kwargs.", 1)
            ) from None


def is_recurrent_config(cfg: object) -> bool:
    """Whether ``cfg`` builds a net that carries a hidden state across calls (``net.rows=true`` does not:
    each image is a whole sequence)."""
    return isinstance(cfg, RecurrentConfig) and not cfg.rows


@dataclass
class JordanConfig(RecurrentConfig):
    """Encoder per frame, then Jordan's network (Jordan 1986; nets/jordan.py): a tanh hidden layer of
    ``hidden_size`` units whose context is the previous output (``output_size`` units, the features), kept
    with self-connections of weight ``context_decay`` (0: exactly the previous output)."""

    name: str = "jordan"
    output_size: int = 64
    context_decay: float = 0.0

    def _check_name(self) -> None:
        require(self.name == "jordan", "net.name", f"must be 'jordan' for this option (got {self.name!r})")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.num_layers == 1,
            "net.num_layers",
            f"Jordan's network has one hidden layer: leave net.num_layers at 1 (got {self.num_layers})",
        )
        _check_positive(self.output_size, "net.output_size")
        require(
            0.0 <= self.context_decay < 1.0,
            "net.context_decay",
            f"must be in [0, 1) (got {self.context_decay})",
        )


@dataclass
class RNNConfig(RecurrentConfig):
    name: str = "rnn"


@dataclass
class LSTMConfig(RecurrentConfig):
    name: str = "lstm"


@dataclass
class GRUConfig(RecurrentConfig):
    name: str = "gru"


# Every net option by name (the ``name`` key), e.g. for the SB3 adapter's ``net="nature_cnn"``.
NET_CONFIGS: dict[str, type] = {
    **ENCODER_CONFIGS,
    "conv1d": Conv1dConfig,
    "rnn": RNNConfig,
    "lstm": LSTMConfig,
    "gru": GRUConfig,
    "jordan": JordanConfig,
    "lista": LISTAConfig,
}

SCHEMAS: dict[str, type] = {f"{name}_schema": schema for name, schema in NET_CONFIGS.items()}
