"""Image classification as a one-step RL task: see an image, answer a class, get a reward, episode over.

Two forms serve the same data:

* :class:`ClassificationEnv` (``MNISTEnv`` = ``rlcore/MNIST-v0``, ``DigitsEnv`` = ``rlcore/Digits-v0``) is a
  plain Gymnasium env, one image per episode, for tools that expect ``gym.make``.
* :class:`DatasetVectorEnv` answers ``n_envs`` images per ``step`` from the in-memory arrays with numpy
  indexing, so training is not limited by one Python ``step`` per image. It follows the same-step
  autoreset contract of every rlcore vector env: each step terminates all episodes, ``info["final_obs"]``
  holds the images that were answered and the returned observation is the next batch.

**Evaluation over the whole test set.** ``make_env(cfg, seed, evaluation=True)`` serves the test split in
file order without shuffling, starting at image 0 on every ``reset``. Reading the answers of each step in
env order (env 0, 1, ..., n_envs-1), the first ``len(env.labels)`` answers are every test image exactly once
(10,000 episodes for MNIST), whatever ``n_envs`` is; the last batch wraps around to image 0 when ``n_envs``
does not divide the test size. ``info["first_pass"]`` marks the answers that belong to that first pass, so
an evaluator can also just count the answers where it is True, and ``info["index"]`` names each image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypedDict

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.datasets import ImageDataset, load_dataset, train_val_split
from rlcore.base.validation import require, require_choice

DATASETS = ("mnist", "digits")
SPLITS = ("train", "test")


@dataclass
class DatasetEnvConfig:
    name: str = "MNIST"  # short name used in run directories
    dataset: str = (
        "mnist"  # mnist: IDX files (any dataset with MNIST's file names); digits: scikit-learn's 8x8 digits
    )
    data_dir: str | None = (
        None  # folder of the IDX files; null: $RLCORE_MNIST_DIR, else ~/.cache/rlcore/mnist
    )
    download: bool = False  # fetch missing MNIST files from the standard mirrors (MD5-checked)
    split: str = (
        "train"  # split the training env serves; evaluation always uses the whole test split in order
    )
    n_envs: int = 32  # images answered per vector-env step
    correct_reward: float = 1.0
    wrong_reward: float = 0.0
    validation_fraction: float = 0.1  # share of the train split held out (by seed) for early stopping
    clip_rewards: bool = False  # store sign(reward) in the replay; logged returns stay raw
    labels_per_class: int = (
        0  # keep only this many training examples per class (0 = all), e.g. 100 for 1,000 MNIST labels
    )

    def __post_init__(self) -> None:
        require_choice(self.dataset, "env.dataset", DATASETS)
        require_choice(self.split, "env.split", SPLITS)
        require(self.n_envs > 0, "env.n_envs", f"must be > 0 (got {self.n_envs})")
        require(
            0.0 <= self.validation_fraction < 1.0,
            "env.validation_fraction",
            f"must be in [0, 1) (got {self.validation_fraction})",
        )
        require(
            self.labels_per_class >= 0, "env.labels_per_class", f"must be >= 0 (got {self.labels_per_class})"
        )
        require(
            self.correct_reward > self.wrong_reward,
            "env.correct_reward",
            f"must be greater than env.wrong_reward (got {self.correct_reward} <= {self.wrong_reward})",
        )


class _IndexStream:
    """Serves example indices, every example once per epoch, in a fresh seeded order per epoch when shuffling."""

    def __init__(self, n: int, shuffle: bool, rng: np.random.Generator) -> None:
        self.n, self.shuffle, self.rng = n, shuffle, rng
        self.order = self._epoch()
        self.pos = 0
        self.served = 0

    def _epoch(self) -> np.ndarray:
        return self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``k`` indices and, for each, whether it belongs to the first pass over the data."""
        parts, need = [], k
        while need:
            if self.pos == self.n:
                self.order, self.pos = self._epoch(), 0
            chunk = self.order[self.pos : self.pos + need]
            parts.append(chunk)
            self.pos += len(chunk)
            need -= len(chunk)
        first_pass = self.served + np.arange(k) < self.n
        self.served += k
        return np.concatenate(parts), first_pass


def _spaces(dataset: ImageDataset) -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    obs = gym.spaces.Box(0, 255, dataset.images.shape[1:], np.uint8)
    return obs, gym.spaces.Discrete(dataset.num_classes)


class ClassificationEnv(gym.Env):
    """One image per episode: the action is the predicted class; reward ``correct_reward`` or ``wrong_reward``.

    ``info["label"]`` (returned by ``step``) is the true class. With ``shuffle=True`` every epoch visits the
    examples in a fresh order drawn from the env's seed; ``reset(seed=...)`` restarts from a new epoch.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        dataset: ImageDataset,
        *,
        correct_reward: float = 1.0,
        wrong_reward: float = 0.0,
        shuffle: bool = True,
    ) -> None:
        self.dataset = dataset
        self.correct_reward, self.wrong_reward = float(correct_reward), float(wrong_reward)
        self.shuffle = shuffle
        self.observation_space, self.action_space = _spaces(dataset)
        self._stream: _IndexStream | None = None
        self._index: int | None = None

    @property
    def images(self) -> np.ndarray:
        return self.dataset.images

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None or self._stream is None:
            self._stream = _IndexStream(len(self.dataset), self.shuffle, self.np_random)
        self._index = int(self._stream.take(1)[0][0])
        return self.dataset.images[self._index].copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._index is None:
            raise gym.error.ResetNeeded("the episode is over (one image per episode); call reset() first")
        index, self._index = self._index, None
        label = int(self.dataset.labels[index])
        reward = self.correct_reward if int(action) == label else self.wrong_reward
        return self.dataset.images[index].copy(), reward, True, False, {"label": label, "index": index}


class MNISTEnv(ClassificationEnv):
    """MNIST (or any dataset in MNIST's IDX files) from ``data_dir``; see :func:`envs.datasets.load_mnist`."""

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike | None = None,
        download: bool = False,
        correct_reward: float = 1.0,
        wrong_reward: float = 0.0,
        shuffle: bool = True,
    ) -> None:
        dataset = load_dataset("mnist", split, data_dir, download)
        super().__init__(dataset, correct_reward=correct_reward, wrong_reward=wrong_reward, shuffle=shuffle)


class DigitsEnv(ClassificationEnv):
    """scikit-learn's bundled 8x8 digits: a seconds-long sanity check that needs no download."""

    def __init__(
        self,
        split: str = "train",
        correct_reward: float = 1.0,
        wrong_reward: float = 0.0,
        shuffle: bool = True,
    ) -> None:
        dataset = load_dataset("digits", split)
        super().__init__(dataset, correct_reward=correct_reward, wrong_reward=wrong_reward, shuffle=shuffle)


class DatasetVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` one-step classification episodes per ``step``, served straight from the dataset arrays.

    Every step returns ``terminated`` all True and ``truncated`` all False, rewards as float64, and an
    info with ``label`` (int64), ``index`` (dataset row) and ``first_pass`` (bool) per answered image plus
    ``final_obs`` (the answered images, with ``_final_obs`` all True); the returned observation is the next
    batch. ``images``/``labels`` expose the raw arrays for supervised loops.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        dataset: ImageDataset,
        num_envs: int,
        *,
        correct_reward: float = 1.0,
        wrong_reward: float = 0.0,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> None:
        if num_envs <= 0:
            raise ValueError(f"num_envs must be > 0, got {num_envs}")
        self.dataset = dataset
        self.num_envs = num_envs
        self.correct_reward, self.wrong_reward = float(correct_reward), float(wrong_reward)
        self.shuffle = shuffle
        self.single_observation_space, self.single_action_space = _spaces(dataset)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = None
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
            self.action_space.seed(seed)
        self._stream: _IndexStream | None = None
        self._obs: np.ndarray | None = None
        self._indices: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        return self.dataset.images

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels

    def _serve(self) -> None:
        assert self._stream is not None
        self._indices, self._first_pass = self._stream.take(self.num_envs)
        self._obs = self.dataset.images[self._indices]

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new epoch (a new seeded order when shuffling, image 0 when not) and serve the first batch."""
        if isinstance(seed, list):
            seed = seed[0] if seed else None
        super().reset(seed=seed)
        self._stream = _IndexStream(len(self.dataset), self.shuffle, self.np_random)
        self._serve()
        assert self._obs is not None
        return self._obs, {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._obs is None or self._indices is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} actions, got an array of shape {actions.shape}")
        labels = self.dataset.labels[self._indices]
        rewards = np.where(actions.astype(np.int64) == labels, self.correct_reward, self.wrong_reward)
        done = np.ones(self.num_envs, dtype=bool)
        info = {
            "label": labels,
            "index": self._indices,
            "first_pass": self._first_pass,
            "final_obs": self._obs,
            "_final_obs": done.copy(),
        }
        self._serve()
        return self._obs, rewards.astype(np.float64), done, np.zeros(self.num_envs, dtype=bool), info


def mnist_vector_env(num_envs: int = 32, split: str = "train", **kwargs: Any) -> DatasetVectorEnv:
    """``gym.make_vec("rlcore/MNIST-v0", num_envs=...)``: the batched env, not a SyncVectorEnv of copies."""
    return _vector_env("mnist", num_envs, split, **kwargs)


def digits_vector_env(num_envs: int = 32, split: str = "train", **kwargs: Any) -> DatasetVectorEnv:
    """``gym.make_vec("rlcore/Digits-v0", num_envs=...)``."""
    return _vector_env("digits", num_envs, split, **kwargs)


def _vector_env(
    dataset: str,
    num_envs: int,
    split: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    **kwargs: Any,
) -> DatasetVectorEnv:
    return DatasetVectorEnv(load_dataset(dataset, split, data_dir, download), num_envs, **kwargs)


def register_envs() -> None:
    """Register ``rlcore/MNIST-v0`` and ``rlcore/Digits-v0`` (idempotent; through ``envs.register_gym_ids``)."""
    for env_id, single, vector in (
        ("rlcore/MNIST-v0", "MNISTEnv", "mnist_vector_env"),
        ("rlcore/Digits-v0", "DigitsEnv", "digits_vector_env"),
    ):
        if env_id not in gym.registry:
            gym.register(
                env_id, entry_point=f"{__name__}:{single}", vector_entry_point=f"{__name__}:{vector}"
            )


def per_class_subset(dataset: ImageDataset, per_class: int, seed: int) -> ImageDataset:
    """The first ``per_class`` examples of each class in a seeded shuffle (all of a class that has fewer)."""
    if per_class <= 0:
        return dataset
    order = np.random.default_rng(seed).permutation(len(dataset))
    keep = np.concatenate([order[dataset.labels[order] == c][:per_class] for c in range(dataset.num_classes)])
    return dataset.subset(np.sort(keep))


def validation_per_class(labels_per_class: int, validation_fraction: float) -> int:
    """Validation labels per class when training labels are limited: the validation split keeps the same
    share of the labelled budget as ``validation_fraction`` is of a full split (100 per class at 0.1: 11).

    Model selection on thousands of held-out labels would be label information a 1,000-label learner does
    not have (Oliver et al. 2018, "Realistic Evaluation of Deep Semi-Supervised Learning Algorithms", §4.6).
    """
    return max(1, round(labels_per_class * validation_fraction / (1.0 - validation_fraction)))


class DatasetSplits(TypedDict):
    train: ImageDataset
    val: ImageDataset | None
    test: ImageDataset


def dataset_splits(cfg: DatasetEnvConfig, seed: int) -> DatasetSplits:
    """The arrays a supervised loop needs: ``train`` (minus validation), ``val`` (or None) and ``test``.

    The train/val cut depends only on (dataset, ``cfg.validation_fraction``, ``seed``); the training env
    that ``make_env(cfg, seed)`` builds with ``split=train`` serves exactly this ``train`` part. With
    ``cfg.labels_per_class`` both parts are cut down per class: train to ``labels_per_class``, validation
    to :func:`validation_per_class` (so early stopping and best.pt see a budget-sized validation set).
    """
    train, val = train_val_split(
        load_dataset(cfg.dataset, "train", cfg.data_dir, cfg.download), cfg.validation_fraction, seed
    )
    train = per_class_subset(train, cfg.labels_per_class, seed)
    if val is not None and cfg.labels_per_class > 0:
        val = per_class_subset(val, validation_per_class(cfg.labels_per_class, cfg.validation_fraction), seed)
    return {"train": train, "val": val, "test": load_dataset(cfg.dataset, "test", cfg.data_dir, cfg.download)}


def make_dataset_env(
    cfg: DatasetEnvConfig, seed: int, *, evaluation: bool = False, n_envs: int | None = None
) -> DatasetVectorEnv:
    """Training: ``cfg.split`` (train minus validation), shuffled by ``seed``. Evaluation: the whole test split in order."""
    count = n_envs if n_envs is not None else cfg.n_envs
    if evaluation:
        dataset = load_dataset(cfg.dataset, "test", cfg.data_dir, cfg.download)
    elif cfg.split == "train":
        full = load_dataset(cfg.dataset, "train", cfg.data_dir, cfg.download)
        dataset, _ = train_val_split(full, cfg.validation_fraction, seed)
        dataset = per_class_subset(dataset, cfg.labels_per_class, seed)
    else:
        dataset = load_dataset(cfg.dataset, cfg.split, cfg.data_dir, cfg.download)
    return DatasetVectorEnv(
        dataset,
        count,
        correct_reward=cfg.correct_reward,
        wrong_reward=cfg.wrong_reward,
        shuffle=not evaluation,
        seed=seed,
    )
