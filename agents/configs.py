"""The agents' config schemas (the ``agent`` group): one dataclass per agent, range-checked in ``__post_init__``.

Kept apart from the agents (and free of torch) so that composing and validating a config, ``train.py --help``
and a config error cost no torch import; each agent module imports its schema from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlcore.base.validation import require, require_choice


@dataclass
class DQNConfig:
    """DQN hyperparameters; defaults follow Stable-Baselines3's DQN, per-env tunings live in configs/tuned/."""

    name: str = "dqn"
    lr: float = 1e-4
    gamma: float = 0.99
    buffer_size: int = 1_000_000
    batch_size: int = 32
    learning_starts: int = 100  # env steps of pure exploration before the first update
    train_freq: int = 4  # env steps between rounds of updates
    gradient_steps: int = 1  # updates per round
    target_update_interval: int = 10_000  # env steps between target syncs
    tau: float = 1.0  # 1 = hard copy; < 1 = Polyak averaging at each sync
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    exploration_fraction: float = 0.1  # fraction of total_steps over which ε decays linearly
    max_grad_norm: float = 10.0
    double: bool = False  # Double DQN target (van Hasselt et al. 2016)
    adam_eps: float = 1e-8
    lr_final: float | None = (
        None  # set: lr decays linearly to this over total_steps (stabilises late training)
    )
    loss: str = "huber"  # huber (smooth L1, as Mnih et al. 2015) or mse
    dueling: bool = False  # value + mean-subtracted advantage streams (Wang et al. 2016)
    n_step: int = 1  # n-step returns, built from the replay's one-step transitions (Hessel et al. 2018: 3)
    prioritized: bool = False  # proportional prioritized replay (Schaul et al. 2016)
    per_alpha: float = 0.6  # priority exponent: 0 = uniform sampling (Schaul et al.: 0.6; Rainbow: 0.5)
    per_beta0: float = (
        0.4  # importance-sampling exponent at the start, annealed linearly to 1 over total_steps
    )
    per_eps: float = 1e-6  # added to |TD error| so no transition's priority is 0
    # DRQN: used only when the net is recurrent (feed-forward nets ignore them; docs/drqn.md)
    sequence_length: int = 20  # steps per replayed sequence that the loss uses
    burn_in: int = 10  # steps before them that only warm up the hidden state (R2D2; no gradient)
    stored_state: bool = False  # start each sequence from the actor's stored hidden state, not zeros (R2D2)
    # DrQ (Kostrikov et al. 2021): shift obs and next_obs of every sampled batch by up to this many pixels per
    # axis, border pixels replicated, inside the update (acting and evaluation see the frames unshifted); 0 = off
    augment_shift: int = 0

    def __post_init__(self) -> None:
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(0.0 <= self.gamma <= 1.0, "agent.gamma", f"must be in [0, 1] (got {self.gamma})")
        require(self.buffer_size > 0, "agent.buffer_size", f"must be > 0 (got {self.buffer_size})")
        require(self.batch_size > 0, "agent.batch_size", f"must be > 0 (got {self.batch_size})")
        require(
            self.batch_size <= self.buffer_size,
            "agent.batch_size",
            f"{self.batch_size} is larger than agent.buffer_size={self.buffer_size}; lower the batch or grow the buffer",
        )
        require(
            self.learning_starts >= 0, "agent.learning_starts", f"must be >= 0 (got {self.learning_starts})"
        )
        require(self.train_freq > 0, "agent.train_freq", f"must be > 0 (got {self.train_freq})")
        require(self.gradient_steps > 0, "agent.gradient_steps", f"must be > 0 (got {self.gradient_steps})")
        require(
            self.target_update_interval > 0,
            "agent.target_update_interval",
            f"must be > 0 (got {self.target_update_interval})",
        )
        require(0.0 < self.tau <= 1.0, "agent.tau", f"must be in (0, 1] (got {self.tau})")
        for key in ("exploration_initial_eps", "exploration_final_eps", "exploration_fraction"):
            value = getattr(self, key)
            require(0.0 <= value <= 1.0, f"agent.{key}", f"must be in [0, 1] (got {value})")
        require(self.max_grad_norm > 0, "agent.max_grad_norm", f"must be > 0 (got {self.max_grad_norm})")
        require(self.adam_eps > 0, "agent.adam_eps", f"must be > 0 (got {self.adam_eps})")
        require(
            self.lr_final is None or 0.0 <= self.lr_final <= self.lr,
            "agent.lr_final",
            f"must be null or in [0, agent.lr={self.lr}] (got {self.lr_final})",
        )
        require_choice(self.loss, "agent.loss", ["huber", "mse"])
        require(1 <= self.n_step <= 100, "agent.n_step", f"must be in [1, 100] (got {self.n_step})")
        require(0.0 <= self.per_alpha <= 1.0, "agent.per_alpha", f"must be in [0, 1] (got {self.per_alpha})")
        require(0.0 <= self.per_beta0 <= 1.0, "agent.per_beta0", f"must be in [0, 1] (got {self.per_beta0})")
        require(self.per_eps > 0, "agent.per_eps", f"must be > 0 (got {self.per_eps})")
        require(
            self.sequence_length > 0, "agent.sequence_length", f"must be > 0 (got {self.sequence_length})"
        )
        require(self.burn_in >= 0, "agent.burn_in", f"must be >= 0 (got {self.burn_in})")
        require(
            self.augment_shift >= 0, "agent.augment_shift", f"must be >= 0 pixels (got {self.augment_shift})"
        )


OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("none", "step", "exponential", "cosine")


@dataclass
class SupervisedConfig:
    """Classifier training hyperparameters (defaults: Adam 1e-3, batch 64, 10 epochs, no early stopping)."""

    name: str = "supervised"
    optimizer: str = "adam"  # sgd | adam
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only: Nesterov momentum (Sutskever et al. 2013)
    weight_decay: float = 0.0  # L2 penalty through the optimizer (coupled, as torch's SGD/Adam apply it)
    lr_schedule: str = "none"  # none | step | exponential | cosine, applied per gradient step
    lr_step_epochs: int = 1  # step: multiply by lr_gamma every lr_step_epochs epochs
    lr_gamma: float = 0.1  # step: factor per step; exponential: factor per epoch
    lr_min_fraction: float = 0.0  # cosine: final lr as a fraction of lr
    epochs: int = 10
    max_steps: int = 0  # stop after this many gradient steps (0 = only epochs limit training)
    batch_size: int = 64
    eval_batch_size: int = 1000  # images per forward pass when scoring validation/test sets
    patience: int = 0  # epochs without a better validation accuracy before stopping (0 = never stop early)
    max_grad_norm: float = 0.0  # clip the gradient norm to this (0 = no clipping)
    label_smoothing: float = 0.0
    augment_shift: int = 0  # translate each training image by up to this many pixels per axis (0 = off)

    def __post_init__(self) -> None:
        require_choice(self.optimizer, "agent.optimizer", OPTIMIZERS)
        require_choice(self.lr_schedule, "agent.lr_schedule", LR_SCHEDULES)
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(0.0 <= self.momentum < 1.0, "agent.momentum", f"must be in [0, 1) (got {self.momentum})")
        require(
            not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0),
            "agent.nesterov",
            "needs agent.optimizer=sgd and agent.momentum > 0",
        )
        require(self.weight_decay >= 0, "agent.weight_decay", f"must be >= 0 (got {self.weight_decay})")
        require(self.lr_step_epochs > 0, "agent.lr_step_epochs", f"must be > 0 (got {self.lr_step_epochs})")
        require(0.0 < self.lr_gamma <= 1.0, "agent.lr_gamma", f"must be in (0, 1] (got {self.lr_gamma})")
        require(
            0.0 <= self.lr_min_fraction <= 1.0,
            "agent.lr_min_fraction",
            f"must be in [0, 1] (got {self.lr_min_fraction})",
        )
        require(self.epochs > 0, "agent.epochs", f"must be > 0 (got {self.epochs})")
        require(self.max_steps >= 0, "agent.max_steps", f"must be >= 0 (got {self.max_steps})")
        require(self.batch_size > 0, "agent.batch_size", f"must be > 0 (got {self.batch_size})")
        require(
            self.eval_batch_size > 0, "agent.eval_batch_size", f"must be > 0 (got {self.eval_batch_size})"
        )
        require(self.patience >= 0, "agent.patience", f"must be >= 0 (got {self.patience})")
        require(self.max_grad_norm >= 0, "agent.max_grad_norm", f"must be >= 0 (got {self.max_grad_norm})")
        require(
            0.0 <= self.label_smoothing < 1.0,
            "agent.label_smoothing",
            f"must be in [0, 1) (got {self.label_smoothing})",
        )
        require(
            self.augment_shift >= 0, "agent.augment_shift", f"must be >= 0 pixels (got {self.augment_shift})"
        )


# ---------------------------------------------------------------------------------------------- the math


NOISES = ("none", "gaussian", "masking")
LOSSES = ("mse", "bce")


@dataclass
class AutoencoderConfig:
    """Autoencoder hyperparameters; the architecture is the ``net`` group (the encoder), mirrored by the decoder."""

    name: str = "autoencoder"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 10  # passes over the training frames (ignored when steps > 0)
    steps: int = 0  # > 0: train for exactly this many gradient steps instead of `epochs`
    loss: str = "mse"  # mse | bce (bce treats the decoder output as logits; needs observations in [0, 1])
    frames: int = 20_000  # frames collected from a (non-dataset) env with a random policy
    policy: str | None = None  # or with a trained agent's policy: its run directory or checkpoint file
    policy_epsilon: float = 0.05  # ε-greedy around that policy, for some variety in the frames
    val_fraction: float = 0.05  # held out for val/recon_loss (dataset envs use env.validation_fraction)
    # sparse codes
    l1_activity: float = 0.0  # weight of the batch mean of sum_j |h_j|
    kl_weight: float = 0.0  # weight of sum_j KL(rho || rho_hat_j); needs sigmoid codes
    rho: float = 0.05  # target mean activation of each code unit
    # denoising
    noise: str = "none"  # none | gaussian | masking
    noise_std: float = 0.1  # gaussian: std of the noise added to the scaled input
    mask_prob: float = 0.25  # masking: probability that an input element is set to 0
    # geometric corruption (image observations): rotate ±warp_degrees, zoom 1 ± warp_scale, shift ±warp_shift px
    warp_degrees: float = 0.0
    warp_scale: float = 0.0
    warp_shift: int = 0
    # L2
    weight_decay: float = 0.0  # Adam's (coupled) L2 weight decay
    l2_weight: float = 0.0  # explicit L2 penalty on every weight matrix/kernel (biases excluded)
    # stacked
    stacked: bool = False  # greedy layer-wise pretraining of an MLP encoder first
    layerwise_epochs: int = 5  # epochs per hidden layer in the layer-wise phase

    def __post_init__(self) -> None:
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(
            0.0 <= self.policy_epsilon <= 1.0,
            "agent.policy_epsilon",
            f"must be in [0, 1] (got {self.policy_epsilon})",
        )
        require(self.batch_size > 0, "agent.batch_size", f"must be > 0 (got {self.batch_size})")
        require(self.epochs > 0, "agent.epochs", f"must be > 0 (got {self.epochs})")
        require(self.steps >= 0, "agent.steps", f"must be >= 0 (got {self.steps})")
        require_choice(self.loss, "agent.loss", LOSSES)
        require(self.frames > 1, "agent.frames", f"must be > 1 (got {self.frames})")
        require(
            0.0 < self.val_fraction < 1.0,
            "agent.val_fraction",
            f"must be in (0, 1) (got {self.val_fraction})",
        )
        for key in ("l1_activity", "kl_weight", "noise_std", "weight_decay", "l2_weight"):
            value = getattr(self, key)
            require(value >= 0, f"agent.{key}", f"must be >= 0 (got {value})")
        require(0.0 < self.rho < 1.0, "agent.rho", f"must be in (0, 1) (got {self.rho})")
        require_choice(self.noise, "agent.noise", NOISES)
        require(0.0 <= self.mask_prob < 1.0, "agent.mask_prob", f"must be in [0, 1) (got {self.mask_prob})")
        require(self.warp_degrees >= 0, "agent.warp_degrees", f"must be >= 0 (got {self.warp_degrees})")
        require(
            0.0 <= self.warp_scale < 1.0, "agent.warp_scale", f"must be in [0, 1) (got {self.warp_scale})"
        )
        require(self.warp_shift >= 0, "agent.warp_shift", f"must be >= 0 pixels (got {self.warp_shift})")
        require(
            self.layerwise_epochs > 0, "agent.layerwise_epochs", f"must be > 0 (got {self.layerwise_epochs})"
        )


GAN_LOSSES = ("non_saturating", "minimax")


@dataclass
class GANConfig:
    """GAN hyperparameters; the discriminator is the ``net`` group's extractor, the generator its mirror.

    Defaults follow DCGAN (Radford et al. 2015): Adam with lr 2e-4 and beta1 0.5, batch 64.
    """

    name: str = "gan"
    z_dim: int = 64  # noise dimensions fed to the generator
    conditional: bool = False  # class-conditional G and D (needs a labelled dataset env: MNIST, Digits)
    loss: str = "non_saturating"  # the generator's loss: non_saturating | minimax
    lr: float = 2e-4  # the generator's Adam step
    lr_d: float = 2e-4  # the discriminator's Adam step
    beta1: float = 0.5
    batch_size: int = 64
    epochs: int = 5  # passes over the training images (ignored when steps > 0)
    steps: int = 0  # > 0: exactly this many (D, G) update pairs instead of `epochs`
    real_target: float = 1.0  # < 1: one-sided label smoothing of the real images (Salimans et al. 2016)
    sample_every: int = 1  # epochs between sample grids (samples/epoch_<k>.png); the final grid always
    grid_size: int = 10  # the grids show grid_size x grid_size samples (conditional: one row per class)

    def __post_init__(self) -> None:
        require(self.z_dim > 0, "agent.z_dim", f"must be > 0 (got {self.z_dim})")
        require_choice(self.loss, "agent.loss", GAN_LOSSES)
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(self.lr_d > 0, "agent.lr_d", f"must be > 0 (got {self.lr_d})")
        require(0.0 <= self.beta1 < 1.0, "agent.beta1", f"must be in [0, 1) (got {self.beta1})")
        require(self.batch_size > 1, "agent.batch_size", f"must be > 1 (batch norm) (got {self.batch_size})")
        require(self.epochs > 0, "agent.epochs", f"must be > 0 (got {self.epochs})")
        require(self.steps >= 0, "agent.steps", f"must be >= 0 (got {self.steps})")
        require(
            0.5 <= self.real_target <= 1.0,
            "agent.real_target",
            f"must be in [0.5, 1] (got {self.real_target})",
        )
        require(self.sample_every > 0, "agent.sample_every", f"must be > 0 epochs (got {self.sample_every})")
        require(self.grid_size > 0, "agent.grid_size", f"must be > 0 (got {self.grid_size})")


# ------------------------------------------------------------- RBM / DBN and sparse coding (layer-wise loop)


VISIBLE_UNITS = ("bernoulli", "gaussian")


def _check_frame_source(cfg: DBNConfig | SparseCodingConfig) -> None:
    """The keys that say where the training observations come from (as agent=autoencoder has them)."""
    require(cfg.frames > 1, "agent.frames", f"must be > 1 (got {cfg.frames})")
    require(
        0.0 <= cfg.policy_epsilon <= 1.0,
        "agent.policy_epsilon",
        f"must be in [0, 1] (got {cfg.policy_epsilon})",
    )
    require(0.0 < cfg.val_fraction < 1.0, "agent.val_fraction", f"must be in (0, 1) (got {cfg.val_fraction})")
    require(cfg.batch_size > 0, "agent.batch_size", f"must be > 0 (got {cfg.batch_size})")
    require(cfg.epochs > 0, "agent.epochs", f"must be > 0 (got {cfg.epochs})")


@dataclass
class DBNConfig:
    """A deep belief net (one RBM per hidden width, trained greedily bottom-up); ``agent=rbm`` is the one-layer case.

    Defaults follow Hinton's "A practical guide to training RBMs" (2010) for Bernoulli units.
    """

    name: str = "dbn"
    hidden_sizes: list[int] = field(default_factory=lambda: [500, 500, 2000])
    visible: str = "bernoulli"  # bernoulli (pixels in [0, 1]) | gaussian (real values, unit variance)
    binarize: bool = False  # sample the [0, 1] inputs to {0, 1} once (seeded): binarised MNIST, as for AIS
    epochs: int = 10  # per layer
    batch_size: int = 100
    lr: float = 0.1
    k: int = 1  # Gibbs sweeps of CD-k / PCD-k
    persistent: bool = False  # persistent CD (Tieleman 2008)
    chains: int = 100  # PCD's persistent chains (and the sample picture's)
    momentum: float = 0.5
    final_momentum: float = 0.9
    momentum_switch: int = 5  # epochs at `momentum` before `final_momentum`
    weight_decay: float = 2e-4
    sparsity_target: float = 0.0  # > 0 with sparsity_cost > 0: target mean activation of each hidden unit
    sparsity_cost: float = 0.0
    lr_decay: bool = (
        False  # lr falls linearly to 0 over each layer's epochs (helps PCD's chains mix, Tieleman 2008)
    )
    ais_runs: int = 0  # > 0 (one-layer, Bernoulli): estimate log Z by AIS and report log-likelihoods
    ais_steps: int = 14_500  # intermediate distributions (Salakhutdinov & Murray 2008's schedule, rescaled)
    frames: int = 20_000  # observations from a non-dataset env (random policy unless `policy`)
    policy: str | None = None
    policy_epsilon: float = 0.05
    val_fraction: float = 0.05

    def __post_init__(self) -> None:
        require(
            len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
            "agent.hidden_sizes",
            f"needs at least one positive width (got {self.hidden_sizes})",
        )
        require_choice(self.visible, "agent.visible", VISIBLE_UNITS)
        require(
            not (self.binarize and self.visible == "gaussian"),
            "agent.binarize",
            "binary inputs are for Bernoulli visible units; drop agent.binarize or use agent.visible=bernoulli",
        )
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(self.k > 0, "agent.k", f"must be >= 1 Gibbs sweep (got {self.k})")
        require(self.chains > 0, "agent.chains", f"must be > 0 (got {self.chains})")
        for key in ("momentum", "final_momentum"):
            value = getattr(self, key)
            require(0.0 <= value < 1.0, f"agent.{key}", f"must be in [0, 1) (got {value})")
        require(
            self.momentum_switch >= 0, "agent.momentum_switch", f"must be >= 0 (got {self.momentum_switch})"
        )
        require(self.weight_decay >= 0, "agent.weight_decay", f"must be >= 0 (got {self.weight_decay})")
        require(
            0.0 <= self.sparsity_target < 1.0,
            "agent.sparsity_target",
            f"must be in [0, 1) (got {self.sparsity_target})",
        )
        require(self.sparsity_cost >= 0, "agent.sparsity_cost", f"must be >= 0 (got {self.sparsity_cost})")
        require(
            self.sparsity_cost == 0 or self.sparsity_target > 0,
            "agent.sparsity_cost",
            "needs agent.sparsity_target > 0 (e.g. 0.1)",
        )
        require(self.ais_runs >= 0, "agent.ais_runs", f"must be >= 0 (got {self.ais_runs})")
        require(self.ais_steps > 0, "agent.ais_steps", f"must be > 0 (got {self.ais_steps})")
        require(
            self.ais_runs == 0 or (len(self.hidden_sizes) == 1 and self.visible == "bernoulli"),
            "agent.ais_runs",
            "AIS estimates one Bernoulli RBM's partition function: use agent=rbm with agent.visible=bernoulli",
        )
        _check_frame_source(self)


@dataclass
class SparseCodingConfig:
    """Dictionary learning with an L1 penalty (Olshausen & Field 1996), then a LISTA encoder (Gregor & LeCun 2010)."""

    name: str = "sparse_coding"
    atoms: int = 256
    lam: float = 0.1  # weight of ||z||_1 (inputs scaled to [0, 1], unit-norm atoms)
    lr: float = 0.1  # dictionary gradient step per batch
    inference_steps: int = 50  # FISTA iterations per batch, from zero codes
    epochs: int = 10  # dictionary-learning passes
    batch_size: int = 100
    lista_iterations: int = 3  # refinements of the learned encoder (the net=lista option net.iterations)
    lista_epochs: int = 5  # passes fitting LISTA to FISTA's codes (0: keep its ISTA initialisation)
    lista_lr: float = 1e-3  # Adam
    frames: int = 20_000
    policy: str | None = None
    policy_epsilon: float = 0.05
    val_fraction: float = 0.05

    def __post_init__(self) -> None:
        require(self.atoms > 0, "agent.atoms", f"must be > 0 (got {self.atoms})")
        require(self.lam > 0, "agent.lam", f"must be > 0 (got {self.lam})")
        require(self.lr > 0, "agent.lr", f"must be > 0 (got {self.lr})")
        require(
            self.inference_steps > 0, "agent.inference_steps", f"must be > 0 (got {self.inference_steps})"
        )
        require(
            self.lista_iterations >= 0,
            "agent.lista_iterations",
            f"must be >= 0 (got {self.lista_iterations})",
        )
        require(self.lista_epochs >= 0, "agent.lista_epochs", f"must be >= 0 (got {self.lista_epochs})")
        require(self.lista_lr > 0, "agent.lista_lr", f"must be > 0 (got {self.lista_lr})")
        _check_frame_source(self)
