"""Small file helpers shared by the v1 and v2 managers (all synchronous, stdlib only)."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterable
from contextlib import suppress

from daemon.runtime.cgroups.errors import INVALID_VALUE_ERRNOS, CgroupError, InvalidLimit

# v1 reports "unlimited" as LONG_MAX rounded down to a page; anything this large means no limit
UNLIMITED_THRESHOLD = 1 << 62


def check_name(name: str) -> list[str]:
    """Split a cgroup name like "pydockerd/<id>" into parts; refuse anything that could escape root."""
    parts = name.strip("/").split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid cgroup name: {name!r}")
    return parts


def read_opt(path: str) -> str | None:
    """The stripped content of a file, or None when it does not exist."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def read_int(path: str) -> int | None:
    """An integer file; None when missing, empty or "max"."""
    text = read_opt(path)
    if not text or text == "max":
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key N" per line) such as memory.events or cpu.stat."""
    out: dict[str, int] = {}
    for line in (read_opt(path) or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value.strip())
        except ValueError:
            continue
    return out


def tokens(text: str | None) -> set[str]:
    """Controller names in cgroup.controllers / cgroup.subtree_control ("+x" allowed, "-x" dropped)."""
    return {t.lstrip("+") for t in (text or "").split() if not t.startswith("-")}


def make_dir(d: str) -> None:
    """Create a cgroup directory (and its parents), as a CgroupError when the kernel refuses."""
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise CgroupError(f"cannot create cgroup {d}: {e.strerror}", e.errno or 0, d) from e


def write(path: str, value: str, what: str = "", action: str = "") -> None:
    """Write one value to a control file, turning failures into a CgroupError that says what failed.

    O_CREAT lets a plain directory stand in for cgroupfs in tests; on cgroupfs the files
    always exist and creation is refused, which we report as a missing controller file.
    action replaces the "cannot set <what> to <value>" start of the error message.
    """
    data = value.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        start = action or f"cannot set {what or os.path.basename(path)}"
        cgroup = os.path.dirname(path)
        if not os.path.isdir(cgroup):
            raise CgroupError(f"{start}: cgroup {cgroup} does not exist", errno.ENOENT, path) from e
        if not os.path.exists(path):
            message = f"{start}: {path} does not exist (controller not available?)"
            raise CgroupError(message, e.errno or 0, path) from e
        if not action:
            start += f" to {value!r} ({path})"
        cls = InvalidLimit if e.errno in INVALID_VALUE_ERRNOS else CgroupError
        raise cls(f"{start}: {e.strerror}", e.errno or 0, path) from e


def read_procs(dirs: Iterable[str]) -> list[int]:
    """PIDs in cgroup.procs of the given cgroup dirs and every cgroup below them."""
    found: set[int] = set()
    for top in dirs:
        for dirpath, _dirs, _files in os.walk(top):
            for line in (read_opt(os.path.join(dirpath, "cgroup.procs")) or "").split():
                if line.isdigit():
                    found.add(int(line))
    return sorted(found)


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll check() until it is true or timeout seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 2, 0.1)


def _clear_plain_files(path: str) -> None:
    # Only reached on a plain directory (a test double): cgroupfs never says ENOTEMPTY
    # for its control files, and refuses to unlink them anyway.
    for entry in os.scandir(path):
        if entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)


def remove_tree(top: str, timeout: float, on_busy: Callable[[], None]) -> None:
    """rmdir a cgroup and its children, deepest first.

    EBUSY means processes are still leaving (or were just forked); on_busy() kills
    them again and we retry until timeout.  A cgroup that is already gone is fine.
    """
    if not os.path.isdir(top):
        return
    deadline = time.monotonic() + timeout
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        cleared = False
        while True:
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno == errno.ENOTEMPTY and not cleared:
                    _clear_plain_files(dirpath)
                    cleared = True
                    continue
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    raise CgroupError(
                        f"cannot remove cgroup {dirpath}: {e.strerror}", e.errno or 0, dirpath
                    ) from e
                on_busy()
                time.sleep(0.02)
