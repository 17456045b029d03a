"""Dataset envs: IDX files, MNIST/digits loading, the one-step classification env and its batched form.

Everything runs on small IDX files written here and on scikit-learn's bundled digits; the real MNIST is
checked only when ``RLCORE_MNIST_DIR`` points at it (CI sets it).
"""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from omegaconf import OmegaConf

import envs
from envs import DatasetEnvConfig, DatasetError, DatasetVectorEnv, make_env
from envs.dataset_env import MNISTEnv, dataset_splits
from envs.datasets import MNIST_DIR_ENV, load_digits, load_mnist
from envs.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_image_label_pair, write_idx
from rlcore.base.errors import ConfigError, RLCoreError

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "env"
N_TRAIN, N_TEST = 50, 23  # 23 is not a multiple of the batch sizes used below

envs.register_gym_ids()  # the env checker below gym.makes rlcore/MNIST-v0 and rlcore/Digits-v0 itself


def fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    """A tiny MNIST-format folder: train files gzip-compressed, test files plain."""
    train_x, train_y = fake_split(N_TRAIN, 0)
    test_x, test_y = fake_split(N_TEST, 1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test_x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", test_y)
    return tmp_path


def no_warnings_check_env(env: gym.Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)


# ---------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip_plain_and_gzip(tmp_path: Path, suffix: str) -> None:
    images, labels = fake_split(7, 3)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    raw = (gzip.decompress if suffix else bytes)((tmp_path / f"img{suffix}").read_bytes())
    assert int.from_bytes(raw[:4], "big") == IMAGES_MAGIC and int.from_bytes(raw[4:8], "big") == 7
    x, y = read_image_label_pair(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    floats = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)  # other IDX types are big-endian too
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / f"f{suffix}", floats)), floats)


def test_idx_rejects_corrupt_files(tmp_path: Path) -> None:
    images, labels = fake_split(5, 0)
    good = write_idx(tmp_path / "images", images).read_bytes()

    (tmp_path / "garbage").write_bytes(b"\xff\xd8\xff\xe0" + good[4:])
    with pytest.raises(DatasetError, match=r"garbage: not an IDX file"):
        read_idx(tmp_path / "garbage", IMAGES_MAGIC)

    write_idx(tmp_path / "labels", labels)
    with pytest.raises(DatasetError, match=r"labels: magic number 2049, expected 2051 \(an image file\)"):
        read_idx(tmp_path / "labels", IMAGES_MAGIC)

    (tmp_path / "short").write_bytes(good[:-100])
    with pytest.raises(DatasetError, match=r"short: payload truncated.*5x28x28.*3920 bytes.*3820 bytes"):
        read_idx(tmp_path / "short", IMAGES_MAGIC)

    (tmp_path / "long").write_bytes(good + b"\0")
    with pytest.raises(DatasetError, match=r"long: payload has trailing bytes"):
        read_idx(tmp_path / "long", IMAGES_MAGIC)

    (tmp_path / "header").write_bytes(good[:10])
    with pytest.raises(DatasetError, match=r"header: header truncated"):
        read_idx(tmp_path / "header")

    packed = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match=r"cut\.gz: cannot read the gzip data"):
        read_idx(tmp_path / "cut.gz")

    write_idx(tmp_path / "more-labels", np.zeros(6, np.uint8))
    with pytest.raises(DatasetError, match=r"images holds 5 images but .*more-labels holds 6 labels"):
        read_image_label_pair(tmp_path / "images", tmp_path / "more-labels")

    assert issubclass(DatasetError, RLCoreError)
    assert read_idx(tmp_path / "labels", LABELS_MAGIC).shape == (5,)


def test_corrupt_file_in_data_dir_is_named(mnist_dir: Path) -> None:
    path = mnist_dir / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: payload truncated"):
        load_mnist("test", mnist_dir)


# ---------------------------------------------------------------- finding the files


def test_missing_files_offline_lists_them_and_the_folder(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DatasetError) as info:
        load_mnist("train", tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "env.data_dir" in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte," not in message
    assert "env.download=true" in message and MNIST_DIR_ENV in message

    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"):
        make_env(DatasetEnvConfig(data_dir=str(tmp_path)), seed=0, evaluation=True)


def test_data_dir_defaults_to_env_var_then_user_cache(
    mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MNIST_DIR_ENV, str(mnist_dir))
    assert len(load_mnist("test")) == N_TEST

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.delenv(MNIST_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    with pytest.raises(
        DatasetError, match=rf"missing in {cache / 'rlcore' / 'mnist'} \(from the default cache folder\)"
    ):
        load_mnist("test")


# ---------------------------------------------------------------- single-image env


def test_mnist_env_rewards_one_step_episodes(mnist_dir: Path) -> None:
    env = MNISTEnv(split="test", data_dir=mnist_dir, correct_reward=2.0, wrong_reward=-1.0)
    assert env.observation_space == gym.spaces.Box(0, 255, (1, 28, 28), np.uint8)
    assert env.action_space == gym.spaces.Discrete(10)
    for answer_right in (True, False):
        obs, _ = env.reset(seed=1)
        index = int(np.flatnonzero((env.images == obs).all(axis=(1, 2, 3)))[0])
        label = int(env.labels[index])
        action = label if answer_right else (label + 1) % 10
        _, reward, terminated, truncated, info = env.step(action)
        assert (reward, terminated, truncated, info["label"]) == (
            2.0 if answer_right else -1.0,
            True,
            False,
            label,
        )
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


def test_check_env_on_small_idx_mnist_and_digits(mnist_dir: Path) -> None:
    no_warnings_check_env(gym.make("rlcore/MNIST-v0", data_dir=str(mnist_dir)).unwrapped)
    no_warnings_check_env(gym.make("rlcore/Digits-v0", split="test").unwrapped)


def test_single_env_seeded_shuffle_visits_each_image_once_per_epoch(mnist_dir: Path) -> None:
    def episode_indices(env: gym.Env, seed: int, n: int) -> list[int]:
        env.reset(seed=seed)
        out = []
        for _ in range(n):
            out.append(env.step(0)[4]["index"])
            env.reset()
        return out

    env = MNISTEnv(data_dir=mnist_dir)
    first = episode_indices(env, 7, N_TRAIN)
    assert sorted(first) == list(range(N_TRAIN)) and first != sorted(first)
    assert episode_indices(env, 7, N_TRAIN) == first  # reset(seed=...) reseeds
    assert episode_indices(MNISTEnv(data_dir=mnist_dir), 8, N_TRAIN) != first


def test_digits_images_and_fixed_split() -> None:
    train, test = load_digits("train"), load_digits("test")
    assert (len(train), len(test)) == (1438, 359)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == np.uint8
    assert train.images.max() == 255 and train.num_classes == test.num_classes == 10
    from sklearn.datasets import load_digits as sklearn_digits

    np.testing.assert_array_equal(np.concatenate([train.labels, test.labels]), sklearn_digits().target)


# ---------------------------------------------------------------- batched env


def test_vector_env_shapes_dtypes_and_final_obs(mnist_dir: Path) -> None:
    cfg = DatasetEnvConfig(data_dir=str(mnist_dir), n_envs=8, validation_fraction=0.0, correct_reward=1.0)
    env = make_env(cfg, seed=0)
    assert (
        isinstance(env, DatasetVectorEnv)
        and env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    )
    assert env.single_observation_space.shape == (1, 28, 28) and env.single_action_space.n == 10
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8, 1, 28, 28) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    for _ in range(3):
        answered = obs.copy()
        matches = (env.images[None] == answered[:, None]).all(
            axis=(2, 3, 4)
        )  # (batch, dataset) image equality
        assert (matches.sum(axis=1) == 1).all()
        true_labels = env.labels[matches.argmax(axis=1)]
        actions = true_labels.copy()
        actions[:3] = (actions[:3] + 1) % 10
        obs, rewards, terminated, truncated, info = env.step(actions)
        assert rewards.dtype == np.float64 and rewards.tolist() == [0.0] * 3 + [1.0] * 5
        assert terminated.all() and not truncated.any() and terminated.dtype == truncated.dtype == np.bool_
        np.testing.assert_array_equal(info["final_obs"], answered)
        assert info["_final_obs"].all()
        np.testing.assert_array_equal(info["label"], true_labels)
        np.testing.assert_array_equal(env.images[info["index"]], answered)
        assert info["label"].dtype == np.int64 and obs.shape == (8, 1, 28, 28)


def test_vector_env_seeded_shuffle_is_reproducible(mnist_dir: Path) -> None:
    cfg = DatasetEnvConfig(data_dir=str(mnist_dir), n_envs=9, validation_fraction=0.0)

    def served(env: gym.vector.VectorEnv, seed: int | None) -> np.ndarray:
        env.reset(seed=seed)
        return np.concatenate([env.step(np.zeros(9, np.int64))[4]["index"] for _ in range(6)])

    env = make_env(cfg, seed=3)
    run = served(env, 3)
    assert np.array_equal(np.sort(run[:N_TRAIN]), np.arange(N_TRAIN))  # one epoch = every image once
    assert not np.array_equal(run[:N_TRAIN], np.arange(N_TRAIN))
    np.testing.assert_array_equal(served(env, 3), run)  # reset(seed=...) reseeds a used env
    np.testing.assert_array_equal(served(make_env(cfg, seed=3), None), run)  # construction seed applies
    assert not np.array_equal(served(make_env(cfg, seed=4), 4), run)


@pytest.mark.parametrize("n_envs", [1, 5, 23, 32])
def test_evaluation_answers_every_test_image_exactly_once(mnist_dir: Path, n_envs: int) -> None:
    cfg = DatasetEnvConfig(data_dir=str(mnist_dir), n_envs=4)
    env = make_env(cfg, seed=0, evaluation=True, n_envs=n_envs)
    assert len(env.labels) == N_TEST
    env.reset(seed=123)
    answered, first_pass = [], []
    for _ in range(-(-N_TEST // n_envs)):
        info = env.step(np.zeros(n_envs, np.int64))[4]
        answered.append(info["index"])
        first_pass.append(info["first_pass"])
    answered_all = np.concatenate(answered)
    np.testing.assert_array_equal(answered_all[:N_TEST], np.arange(N_TEST))  # in order, env-minor
    assert np.concatenate(first_pass).sum() == N_TEST
    np.testing.assert_array_equal(np.bincount(answered_all[np.concatenate(first_pass)]), np.ones(N_TEST))


def test_digits_evaluation_counts_every_test_image() -> None:
    env = make_env(DatasetEnvConfig(name="Digits", dataset="digits"), seed=0, evaluation=True)
    env.reset()
    counts = np.zeros(len(env.labels), np.int64)
    labels_seen = []
    while counts.sum() < len(counts):
        info = env.step(np.zeros(env.num_envs, np.int64))[4]
        np.add.at(counts, info["index"][info["first_pass"]], 1)
        labels_seen.append(info["label"][info["first_pass"]])
    assert (counts == 1).all()
    np.testing.assert_array_equal(np.bincount(np.concatenate(labels_seen)), np.bincount(env.labels))


def test_validation_split_is_seeded_disjoint_and_excluded_from_training(mnist_dir: Path) -> None:
    cfg = DatasetEnvConfig(data_dir=str(mnist_dir), validation_fraction=0.2)
    a, b, c = dataset_splits(cfg, 0), dataset_splits(cfg, 0), dataset_splits(cfg, 1)
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (40, 10, N_TEST)
    np.testing.assert_array_equal(a["val"].images, b["val"].images)
    assert not np.array_equal(a["val"].images, c["val"].images)
    full = load_mnist("train", mnist_dir).images.reshape(N_TRAIN, -1)
    rows = {r.tobytes() for r in a["train"].images.reshape(40, -1)} | {
        r.tobytes() for r in a["val"].images.reshape(10, -1)
    }
    assert rows == {r.tobytes() for r in full}
    np.testing.assert_array_equal(make_env(cfg, seed=0).images, a["train"].images)
    assert (
        dataset_splits(DatasetEnvConfig(data_dir=str(mnist_dir), validation_fraction=0.0), 0)["val"] is None
    )


def test_make_vec_uses_the_batched_env(mnist_dir: Path) -> None:
    env = gym.make_vec("rlcore/MNIST-v0", num_envs=4, data_dir=str(mnist_dir), split="test")
    assert isinstance(env, DatasetVectorEnv) and env.reset(seed=0)[0].shape == (4, 1, 28, 28)


# ---------------------------------------------------------------- config


def test_config_checks_name_their_keys() -> None:
    with pytest.raises(ConfigError, match=r"'env.split'.*allowed values: train, test"):
        DatasetEnvConfig(split="val")
    with pytest.raises(ConfigError, match=r"'env.dataset'"):
        DatasetEnvConfig(dataset="cifar")
    with pytest.raises(ConfigError, match=r"'env.validation_fraction'"):
        DatasetEnvConfig(validation_fraction=1.0)
    with pytest.raises(ConfigError, match=r"'env.n_envs'"):
        DatasetEnvConfig(n_envs=0)
    with pytest.raises(ConfigError, match=r"'env.correct_reward'"):
        DatasetEnvConfig(correct_reward=0.0, wrong_reward=0.0)


@pytest.mark.parametrize(
    ("option", "dataset", "net"), [("MNIST", "mnist", "lenet5"), ("Digits", "digits", "mlp")]
)
def test_yaml_options_fit_the_schema(option: str, dataset: str, net: str) -> None:
    assert envs.SCHEMAS["dataset_schema"] is DatasetEnvConfig
    yaml = OmegaConf.load(CONFIGS / f"{option}.yaml")
    defaults = yaml.pop("defaults")
    assert (
        defaults[0] == "/schema/env/dataset_schema@_here_" and {"override /net@_global_.net": net} in defaults
    )
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DatasetEnvConfig), yaml))
    assert isinstance(cfg, DatasetEnvConfig) and cfg.name == option and cfg.dataset == dataset
    assert cfg.clip_rewards is False and cfg.data_dir is None


# ---------------------------------------------------------------- the real MNIST


@pytest.mark.skipif(not os.environ.get(MNIST_DIR_ENV), reason=f"set {MNIST_DIR_ENV} to the MNIST IDX folder")
def test_real_mnist_counts() -> None:
    train, test = load_mnist("train"), load_mnist("test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    env = make_env(DatasetEnvConfig(), seed=0, evaluation=True, n_envs=64)
    env.reset()
    seen = np.concatenate([env.step(np.zeros(64, np.int64))[4]["index"] for _ in range(-(-10000 // 64))])
    np.testing.assert_array_equal(seen[:10000], np.arange(10000))


def test_download_checks_md5_without_touching_the_network(
    mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """urlopen is replaced by a local server stand-in: a bad mirror is skipped, a good one is kept."""
    import hashlib
    import io

    import envs.datasets as datasets

    served = {
        name: (mnist_dir / name).read_bytes()
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    }
    fake_md5 = {n: hashlib.md5(b).hexdigest() for n, b in served.items()}
    monkeypatch.setattr(datasets, "MNIST_MD5", {**datasets.MNIST_MD5, **fake_md5})
    requested = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        requested.append(url)
        name = url.rsplit("/", 1)[1]
        return io.BytesIO(b"corrupted" if url.startswith(datasets.MNIST_MIRRORS[0]) else served[name])

    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake_urlopen)
    target = tmp_path_factory.mktemp("download")
    assert len(load_mnist("train", target, download=True)) == N_TRAIN
    assert len(requested) == 4 and sorted(p.name for p in target.iterdir()) == sorted(served)

    monkeypatch.setattr(datasets, "MNIST_MIRRORS", datasets.MNIST_MIRRORS[:1])
    with pytest.raises(DatasetError, match=r"could not download t10k-.*MD5 .*, expected"):
        load_mnist("test", target, download=True)
    assert not any(p.name.endswith(".part") for p in target.iterdir())
