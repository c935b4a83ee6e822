"""Crash-safe writes: a temporary file in the same directory, fsync, then os.replace."""

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, mode: int = 0o600, durable: bool = True
) -> None:
    """Replace `path` in one step. `durable=False` skips the fsync: for run-time state that a reboot
    makes meaningless anyway (the exec root), where only the all-or-nothing replace matters."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(
    path: str | os.PathLike[str], value: Any, mode: int = 0o600, durable: bool = True
) -> None:
    write_bytes_atomic(path, json.dumps(value, separators=(",", ":")).encode(), mode, durable)


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())
