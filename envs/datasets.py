"""Image-classification datasets as in-memory arrays: MNIST-style IDX folders and scikit-learn's digits.

Everything here returns an :class:`ImageDataset` (uint8 images shaped (N, C, H, W), int64 labels), which the
dataset environments serve and supervised training loops can use directly. MNIST is looked for in
``env.data_dir``, else ``$RLCORE_MNIST_DIR``, else ``~/.cache/rlcore/mnist``; it is downloaded only when
asked (``env.download=true``), with MD5 checks, so runs never touch the network by surprise.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.idx import LABELS_MAGIC, DatasetError, read_idx, read_image_label_pair

MNIST_DIR_ENV = "RLCORE_MNIST_DIR"

# split -> (images file, labels file), without the optional .gz suffix
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of the official gzip files (the sums torchvision checks)
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

DIGITS_TEST_FRACTION = 0.2  # the last 20% of scikit-learn's digits are the test split


@dataclass(frozen=True)
class ImageDataset:
    """One split of a classification dataset: read-only uint8 ``images`` (N, C, H, W) and int64 ``labels`` (N,).

    ``num_classes`` comes from the data (largest label over all splits + 1), so train and test agree on the
    action space even when a small test split misses a class.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DatasetError(
                f"{self.name}: images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(
                f"{self.name}: {self.images.shape[0]} images but labels of shape {self.labels.shape}"
            )
        if len(self.labels) == 0:
            raise DatasetError(f"{self.name}: the dataset is empty")
        if self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise DatasetError(f"{self.name}: labels must lie in 0..{self.num_classes - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray, name: str | None = None) -> ImageDataset:
        return ImageDataset(name or self.name, self.images[indices], self.labels[indices], self.num_classes)


def default_mnist_dir() -> Path:
    """``$RLCORE_MNIST_DIR`` when set, else the user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    if os.environ.get(MNIST_DIR_ENV):
        return Path(os.environ[MNIST_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "rlcore" / "mnist"


def resolve_mnist_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_mnist_dir()


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing_message(folder: Path, missing: list[str], data_dir: str | os.PathLike | None) -> str:
    where = (
        "env.data_dir"
        if data_dir
        else (f"${MNIST_DIR_ENV}" if os.environ.get(MNIST_DIR_ENV) else "the default cache folder")
    )
    return (
        f"MNIST files missing in {folder} (from {where}): {', '.join(missing)} (plain or .gz). "
        f"Point env.data_dir=/path/to/mnist or ${MNIST_DIR_ENV} at a folder holding the IDX files, "
        "or set env.download=true to fetch them (MD5-checked)."
    )


def download_mnist(folder: str | os.PathLike, names: list[str] | None = None, timeout: float = 60.0) -> None:
    """Fetch the official gzip files into ``folder`` from the first mirror that serves them with the right MD5.

    Files are written under a temporary name and renamed only after the checksum matches, so an interrupted
    download never leaves a file that looks complete.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or list(MNIST_MD5):
        errors: list[str] = []
        for mirror in MNIST_MIRRORS:
            url = mirror + name
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out)
                digest = hashlib.md5(tmp.read_bytes()).hexdigest()
                if digest != MNIST_MD5[name]:
                    errors.append(f"{url}: MD5 {digest}, expected {MNIST_MD5[name]}")
                    continue
                tmp.replace(folder / name)
                break
            except OSError as exc:  # URLError, HTTPError and timeouts are OSErrors
                errors.append(f"{url}: {exc}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            raise DatasetError(
                f"could not download {name} into {folder}: {'; '.join(errors)}. "
                f"Download the MNIST IDX files by hand into that folder, or point env.data_dir / ${MNIST_DIR_ENV} at a copy."
            )


# Loaded splits, keyed by their files' (path, size, mtime): a run builds a training and an evaluation env
# from the same files, and reading them once saves seconds. Bounded (the oldest split goes first) and
# emptied by clear_dataset_cache(); the arrays are read-only because every env built from them shares them.
_CACHE: dict[tuple, ImageDataset] = {}
CACHE_SPLITS = 4


def clear_dataset_cache() -> None:
    """Forget every loaded split (the next load reads the files again)."""
    _CACHE.clear()


def _cache(key: tuple, dataset: ImageDataset) -> ImageDataset:
    """Keep a loaded split, read-only, dropping the oldest beyond :data:`CACHE_SPLITS`."""
    for array in (dataset.images, dataset.labels):
        array.flags.writeable = False
    while len(_CACHE) >= CACHE_SPLITS:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[key] = dataset
    return dataset


def load_mnist(split: str, data_dir: str | os.PathLike | None = None, download: bool = False) -> ImageDataset:
    """Load one split (``train`` or ``test``) of MNIST, or of any dataset stored with MNIST's file names.

    Arrays are cached per file (path, size, mtime), so building a training and an evaluation env reads
    and decompresses the files once.
    """
    if split not in MNIST_FILES:
        raise DatasetError(f"unknown MNIST split {split!r}; allowed: {', '.join(MNIST_FILES)}")
    folder = resolve_mnist_dir(data_dir)
    stems = MNIST_FILES[split]
    missing = [stem for stem in stems if _find(folder, stem) is None]
    if missing and download:
        download_mnist(folder, [stem + ".gz" for stem in missing])
        missing = [stem for stem in stems if _find(folder, stem) is None]
    if missing:
        raise DatasetError(_missing_message(folder, missing, data_dir))
    images_path, labels_path = (_find(folder, stem) for stem in stems)
    assert images_path is not None and labels_path is not None
    key = tuple(
        (str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in (images_path, labels_path)
    )
    if key not in _CACHE:
        images, labels = read_image_label_pair(images_path, labels_path)
        _cache(key, ImageDataset(f"MNIST-{split}", images[:, None], labels, _num_classes(folder, labels)))
    return _CACHE[key]


def _num_classes(folder: Path, labels: np.ndarray) -> int:
    """Classes = largest label in any split present + 1, so train and test share one action space."""
    largest = int(labels.max())
    for _, label_stem in MNIST_FILES.values():
        path = _find(folder, label_stem)
        if path is not None:
            # a broken file of the other split is reported when that split is loaded, not now
            with contextlib.suppress(DatasetError):
                largest = max(largest, int(read_idx(path, LABELS_MAGIC).max(initial=0)))
    return largest + 1


def load_digits(split: str) -> ImageDataset:
    """scikit-learn's bundled 8x8 digits (1797 images, no download) as uint8 0..255 images (1, 8, 8).

    The split is fixed: the last 20% (in the bundled order) is the test set, the rest the train set.
    """
    if split not in MNIST_FILES:
        raise DatasetError(f"unknown digits split {split!r}; allowed: {', '.join(MNIST_FILES)}")
    key = ("digits", split)
    if key not in _CACHE:
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
        labels = bunch.target.astype(np.int64)
        n_test = round(len(labels) * DIGITS_TEST_FRACTION)
        part = slice(len(labels) - n_test, None) if split == "test" else slice(0, len(labels) - n_test)
        _cache(key, ImageDataset(f"Digits-{split}", images[part], labels[part], int(labels.max()) + 1))
    return _CACHE[key]


def load_dataset(
    dataset: str, split: str, data_dir: str | os.PathLike | None = None, download: bool = False
) -> ImageDataset:
    """Dispatch on the dataset name (``mnist`` or ``digits``)."""
    if dataset == "mnist":
        return load_mnist(split, data_dir, download)
    if dataset == "digits":
        return load_digits(split)
    raise DatasetError(f"unknown dataset {dataset!r}; allowed: mnist, digits")


def train_val_split(
    train: ImageDataset, fraction: float, seed: int
) -> tuple[ImageDataset, ImageDataset | None]:
    """Carve a validation set (``fraction`` of the examples, chosen by ``seed``) out of a training split.

    The same (dataset, fraction, seed) always gives the same two disjoint parts, so the training env and a
    supervised loop's early-stopping check agree on which examples are held out. ``fraction=0`` returns
    the whole split and ``None``.
    """
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"validation fraction must be in [0, 1), got {fraction}")
    n_val = int(round(len(train) * fraction))
    if n_val == 0:
        return train, None
    if n_val >= len(train):
        raise DatasetError(f"{train.name}: a validation fraction of {fraction} leaves no training examples")
    order = np.random.default_rng(seed).permutation(len(train))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return train.subset(train_idx), train.subset(val_idx, name=f"{train.name}-val")
