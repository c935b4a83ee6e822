"""Unix socket paths of any length: sun_path holds only 108 bytes, a deep exec root can need more."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

SUN_PATH_MAX = 100  # with a margin below the kernel's 108


@contextlib.contextmanager
def usable(path: str | Path) -> Iterator[str]:
    """`path` itself when short enough, else the same file reached through /proc/self/fd/<dir fd>."""
    text = str(path)
    if len(text.encode()) < SUN_PATH_MAX:
        yield text
        return
    fd = os.open(os.path.dirname(text) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(text)}"
    finally:
        os.close(fd)
