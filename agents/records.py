"""JSON-lines records that survive a killed run and concurrent writers.

Benchmarks and reward tables append one JSON object per line as results arrive: each line is
written with a single ``write`` in append mode, so processes writing the same file never
interleave, and a kill loses at most the line being written, which :func:`read_jsonl` cuts off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line with a single write, so concurrent workers never interleave lines."""
    line = (json.dumps(record, default=_plain) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a record")


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON-lines file; a truncated last line (a killed run) is cut off the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]
