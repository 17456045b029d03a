"""One process per run directory: a file lock held for the whole run, naming its holder to anyone refused.

Two processes writing one run directory interleave metrics.csv and disagree in config.yaml and summary.json
(and a second ``resume=`` truncates the first one's metrics). The lock (``filelock``, an OS-level lock the
kernel drops when the process dies, also on ``kill -9``) is taken before anything is written into the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rlcore.base.errors import RLCoreError

LOCK_FILE = ".rlcore.lock"
PID_FILE = ".rlcore.pid"
HYDRA_WRITES = frozenset(
    {".hydra", "train.log"}
)  # what Hydra puts in a run folder before rlcore sees the config
# When this process started, near enough: this module is imported (by train.py) before Hydra makes or writes any
# folder, so a file older than this was not written by this invocation.
PROCESS_STARTED = time.time()


def made_by_this_process(run_dir: Path) -> bool:
    """Whether ``run_dir`` is absent or holds nothing but what Hydra wrote for this invocation (``.hydra/`` and
    train.log, every file of it written since this process started). A folder that anyone else filled, however
    little it holds (notes, another app's ``.hydra/``), is someone's: a refused run must leave it as it was."""
    path = Path(run_dir)
    if not path.exists():
        return True
    if not path.is_dir() or any(entry.name not in HYDRA_WRITES for entry in path.iterdir()):
        return False
    files = [path / "train.log", *(path / ".hydra").rglob("*")]
    return all(f.stat().st_mtime >= PROCESS_STARTED for f in files if f.is_file())


def ensure_dir(path: Path, key: str) -> None:
    """Create ``path`` (and its parents) or refuse in one line naming ``key`` (a file in the way, /proc, ...)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RLCoreError(
            f"config key '{key}': {path} cannot be created ({exc.strerror or exc}); choose another {key}="
        ) from None


def check_creatable(path: Path, key: str) -> None:
    """Refuse in one line naming ``key`` a folder that could not be created, without creating anything: the
    nearest existing ancestor must be a folder that takes a new subfolder (a probe made and removed at once)."""
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == Path(path).absolute() and existing.is_dir():
        return
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        os.rmdir(tempfile.mkdtemp(prefix=".rlcore-probe-", dir=existing))
    except OSError as exc:
        raise RLCoreError(
            f"config key '{key}': {path} cannot be created ({exc.strerror or exc}); choose another {key}="
        ) from None


@contextmanager
def hold_run_dir(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock while the body runs; refuse at once if another process holds it."""
    run_dir = Path(run_dir)
    ensure_dir(run_dir, "run_dir")
    lock = FileLock(run_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = (run_dir / PID_FILE).read_text().strip() if (run_dir / PID_FILE).exists() else "unknown"
        raise RLCoreError(
            f"run_dir {run_dir} is in use by another rlcore process (PID {holder}); wait for it to end or "
            "choose another run_dir="
        ) from None
    except OSError as exc:
        raise RLCoreError(
            f"run_dir {run_dir} cannot be locked ({exc.strerror or exc}); choose another run_dir="
        ) from None
    try:
        (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
        yield
    finally:
        (run_dir / PID_FILE).unlink(missing_ok=True)
        lock.release()


def discard_refused(run_dir: Path, hydra_subdir: str | None) -> None:
    """A refused invocation leaves nothing behind. Hydra made its record (and, for a new run, the folder and its
    train.log) before rlcore could check the config. Where Hydra wrote it says whose the folder is
    (:func:`rlcore.config.hydra_subdir` decided with :func:`made_by_this_process`): from a folder that held
    something before (a run, or anything else), remove this invocation's record subfolder only; when this
    invocation made the folder (``.hydra``) and nothing was trained in it, remove the folder and the empty
    parents Hydra made below the working directory (``runs/<env>/<agent>/``)."""
    run_dir = Path(run_dir)
    if hydra_subdir != ".hydra":  # a folder that held something before this invocation
        if hydra_subdir:  # .hydra/resume-* or .hydra/attempt-*
            shutil.rmtree(run_dir / hydra_subdir, ignore_errors=True)
            with contextlib.suppress(OSError):  # .hydra/ too, when this attempt made it (then it is empty)
                (run_dir / ".hydra").rmdir()
            log = run_dir / "train.log"  # the empty log Hydra opened, when it was not there before
            if log.is_file() and log.stat().st_size == 0 and log.stat().st_mtime >= PROCESS_STARTED:
                log.unlink()
        return
    if not run_dir.is_dir() or (run_dir / "metrics.csv").exists() or (run_dir / "checkpoints").exists():
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    cwd, parent = Path.cwd().resolve(), run_dir.resolve().parent
    while parent != cwd and cwd in parent.parents and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
