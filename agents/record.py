"""A record of one analysis to reproduce it: version, input and its hash, command, date, machine.

``summary.json``'s ``run`` part. The input's SHA-256 is that of the file as read (and of the
image as analysed, which an array or a HyperSpy signal has without a file), so a later reader
can tell whether the same data gave the same answer.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

#: Packages whose versions decide the answer, recorded beside ferrogym's.
PACKAGES = ("numpy", "scipy", "scikit-learn", "scikit-image", "torch", "optuna")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(array: np.ndarray | None) -> str | None:
    """SHA-256 of an array's float64 values in C order (None without an array)."""
    if array is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


def run_record(paths: list[str | Path], image: np.ndarray | None, command_line: list[str] | None,
               started: datetime) -> dict:
    """The ``run`` part of a summary.

    Parameters
    ----------
    paths : the input files (image, positions), as given.
    image : the image as analysed (after frame selection), or None.
    command_line : the command's arguments (``sys.argv``), or None from Python.
    started : when the analysis began (timezone-aware).
    """
    from ferrogym import __version__

    return {
        "ferrogym_version": __version__,
        "date": started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "command_line": None if command_line is None else shlex.join(command_line),
        "input": {"files": [{"path": str(Path(p).resolve()), "sha256": file_sha256(p)} for p in paths],
                  "image_sha256": array_sha256(image),
                  "image_shape": None if image is None else list(np.shape(image))},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def device() -> dict:
    """Where the analysis ran: the CPU count, and the accelerator torch used, if the analysis
    used torch at all (the VAE does; the hand-made descriptors are numpy and scikit-learn on the
    CPU, so torch is not even imported for them)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {"cpus": os.cpu_count(), "torch_device": None, "gpu": None}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": os.cpu_count(), "torch_device": "cuda:0" if gpu else "cpu", "gpu": gpu}


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(timezone.utc)
