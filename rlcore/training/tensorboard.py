"""TensorBoard output (``logger=tensorboard``, or ``logger.tensorboard=true`` beside any other logger).

Event files go to ``<run_dir>/tensorboard`` (``tensorboard --logdir runs/`` shows every run below it) with the
same scalar names as metrics.csv and W&B (``rollout/episode_return``, ``eval/mean_return``, ...), the x axis
being the env step as in metrics.csv. At the end of the run the config goes in as hparams (with the final
evaluation as their metric), the learning curve as an image and, with ``logger.video=true``, the evaluation
episode as an animated GIF (TensorBoard shows GIFs in its Images tab; ``add_video`` would need moviepy).
Uses ``torch.utils.tensorboard``, which needs the ``tensorboard`` package (``pip install -e ".[tensorboard]"``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.base.errors import ConfigError

VIDEO_MAX_FRAMES = 300  # GIF frames kept from the episode (evenly spaced): a long episode stays a few MB
VIDEO_MAX_SIDE = 256  # pixels: frames are shrunk by an integer factor until both sides fit


def require_tensorboard() -> None:
    """Fail at the start of a run, not at its first log call, when the ``tensorboard`` package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(
            "config key 'logger.tensorboard': the tensorboard package is not installed; "
            'pip install -e ".[tensorboard]" (or pip install tensorboard), or leave logger=tensorboard out'
        ) from None


def last_logged_step(metrics_csv: Path) -> int | None:
    """The step of the last row of metrics.csv (None when it has none): a resumed run's TensorBoard writer
    drops the events logged after it, as metrics.csv was cut back to it (``purge_step``)."""
    try:
        with open(metrics_csv, newline="") as handle:
            steps = [row.get("step") for row in csv.DictReader(handle)]
    except OSError:
        return None
    numbers = [int(float(s)) for s in steps if s]
    return numbers[-1] if numbers else None


def hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config flattened to dotted keys with values TensorBoard's hparams accept (lists and None as text)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(hparams(value, f"{prefix}{key}."))
        elif isinstance(value, bool | int | float | str):
            out[f"{prefix}{key}"] = value
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


def gif_bytes(video: Path) -> tuple[bytes, int, int]:
    """An mp4 as an animated GIF (bytes, height, width), subsampled to at most VIDEO_MAX_FRAMES frames."""
    import imageio.v2 as imageio

    reader = imageio.get_reader(video)
    fps = float(reader.get_meta_data().get("fps", 30))
    frames = [np.asarray(frame) for frame in reader]  # type: ignore[attr-defined]  # imageio's v2 reader iterates
    reader.close()
    keep = max(1, math.ceil(len(frames) / VIDEO_MAX_FRAMES))
    frames = frames[::keep]
    shrink = max(1, math.ceil(max(frames[0].shape[:2]) / VIDEO_MAX_SIDE))
    frames = [f[::shrink, ::shrink] for f in frames]
    buffer = io.BytesIO()
    imageio.mimwrite(buffer, list[Any](frames), format="GIF", duration=1000 * keep / fps, loop=0)
    return buffer.getvalue(), frames[0].shape[0], frames[0].shape[1]


class TensorBoardWriter:
    """One SummaryWriter in ``<run_dir>/tensorboard``; scalars as they are logged, media and hparams at close."""

    def __init__(self, run_dir: Path, config: dict, resume: bool = False) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(run_dir) / "tensorboard"
        purge = last_logged_step(Path(run_dir) / "metrics.csv") if resume else None
        self.writer = SummaryWriter(str(self.logdir), purge_step=None if purge is None else purge + 1)
        self.config = config

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        for key, value in metrics.items():
            if key != "step" and isinstance(value, int | float | np.number) and not isinstance(value, bool):
                self.writer.add_scalar(key, float(value), step)

    def image(self, tag: str, png: Path, step: int) -> None:
        import imageio.v2 as imageio

        self.writer.add_image(tag, np.asarray(imageio.imread(png))[..., :3], step, dataformats="HWC")

    def video(self, tag: str, mp4: Path, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        data, height, width = gif_bytes(mp4)
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=data)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def close(
        self,
        step: int,
        summary: Mapping[str, Any] | None = None,
        curve: Path | None = None,
        video: Path | None = None,
    ) -> None:
        """Learning curve, video, then the config as hparams with the final evaluation as metric."""
        if curve is not None and Path(curve).is_file():
            self.image("learning_curve", curve, step)
        if video is not None and Path(video).is_file():
            self.video("eval/video", video, step)
        metrics = {
            f"hparam/{k}": float(v)
            for k, v in (summary or {}).items()
            if k in ("eval_mean_return", "best_eval_mean_return", "test_accuracy")
            and isinstance(v, int | float)
        }
        if metrics:
            self.writer.add_hparams(hparams(self.config), metrics, run_name=".")
        self.writer.close()
