"""Reading and writing IDX files, the format of MNIST and of the datasets that copy its layout.

An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, then one uint32
per dimension) followed by the row-major payload. MNIST image files have magic 2051 (uint8, 3 dims) and
label files magic 2049 (uint8, 1 dim). Files may be gzip-compressed (``.gz``). Every problem with a file
raises :class:`DatasetError` naming the file and what is wrong, so a bad download is a one-line message
rather than a reshape traceback deep in the training loop.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from rlcore.base.errors import RLCoreError

IMAGES_MAGIC = 2051  # uint8, 3 dimensions: count, rows, cols
LABELS_MAGIC = 2049  # uint8, 1 dimension: count

# IDX type code -> big-endian numpy dtype
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetError(RLCoreError):
    """A dataset file is missing, corrupt, truncated or inconsistent with its partner file."""


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(
            f"{path}: cannot read the gzip data ({exc}); the file is corrupt or truncated"
        ) from None


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or ``.gz``) into a native-endian array of its declared shape.

    ``expected_magic`` (e.g. :data:`IMAGES_MAGIC`) rejects a file of the wrong kind, such as a label file
    passed where images are expected.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(
            f"{path}: too short to be an IDX file ({len(data)} bytes, the header alone needs 4+)"
        )
    magic = struct.unpack(">I", data[:4])[0]
    zero, type_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise DatasetError(
            f"{path}: not an IDX file (magic number {magic} = 0x{magic:08x}; IDX files start with two zero "
            f"bytes, a type code in {sorted(_DTYPES)} and the number of dimensions)"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(
            f"{path}: magic number {magic}, expected {expected_magic} ({_kind(expected_magic)})"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DatasetError(
            f"{path}: header truncated ({len(data)} bytes, a {ndim}-dimensional header needs {header_len})"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        shape = "x".join(str(d) for d in dims)
        raise DatasetError(
            f"{path}: payload {what}: the header declares shape {shape} of {dtype.name} "
            f"({expected} bytes) but the file holds {actual} bytes after the header"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _kind(magic: int) -> str:
    return {IMAGES_MAGIC: "an image file", LABELS_MAGIC: "a label file"}.get(magic, "IDX")


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``); returns the path.

    Used by tests and by users turning their own data into an MNIST-style dataset: uint8 arrays of shape
    (N, H, W) make image files (magic 2051), uint8 arrays of shape (N,) label files (magic 2049).
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise DatasetError(
            f"{path}: IDX cannot store dtype {array.dtype} (supported: {', '.join(str(d) for d in codes)})"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise DatasetError(f"{path}: IDX stores arrays of 1 to 255 dimensions, got {array.ndim}")
    header = struct.pack(f">I{array.ndim}I", (codes[native] << 8) | array.ndim, *array.shape)
    payload = np.ascontiguousarray(array, dtype=_DTYPES[codes[native]]).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(header + payload)
    else:
        path.write_bytes(header + payload)
    return path


def read_image_label_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST-style (images, labels) file pair and check they describe the same examples.

    Returns uint8 images of shape (N, rows, cols) and int64 labels of shape (N,).
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels; "
            "the two files must describe the same examples"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"{images_path}: the dataset is empty (0 images)")
    if min(images.shape[1:]) == 0:
        raise DatasetError(
            f"{images_path}: its images are {images.shape[1]}x{images.shape[2]} pixels; an image needs "
            "at least one pixel per side"
        )
    return images, labels.astype(np.int64)
