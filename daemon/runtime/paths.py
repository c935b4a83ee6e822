"""Resolving paths inside a container root without escaping it (symlinks are resolved against the root)."""

import os

MAX_SYMLINKS = 255


def secure_join(root: str, path: str) -> str:
    """The host path of `path` inside `root`, following symlinks as the container would see them."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    followed = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or does not exist yet
            resolved.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise OSError(40, f"too many levels of symbolic links: {path}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)
