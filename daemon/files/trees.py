"""Removing and measuring directory trees that a container built: of any depth and any width.

A container decides what its upper directory holds: a chain of directories 100,000 levels deep whose
paths are far longer than PATH_MAX, 300,000 files in one directory, renames while we look. So neither
walk here recurses, neither builds a path longer than one name below an open directory, and neither
keeps more than two directories open, whatever the depth.

- remove_tree flattens as it goes: the subdirectories of a directory it empties move up into the top
  directory under fresh names, so no directory is ever more than one level below the top.
- tree_size goes down with openat(name) and back up with openat(".."), checking on the way up that it
  is where it came from (a running container may move directories under it); it never follows a
  symlink, never crosses into another file system and never climbs above the top.
"""

import contextlib
import errno
import itertools
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A size walk stops after this many entries and reports what it counted (complete=False): about two
# seconds of one core, so a `ps -s` over a container of millions of files ends in bounded time.
MAX_SIZE_ENTRIES = 2_000_000


def remove_tree(path: str | os.PathLike[str], dir_fd: int | None = None) -> None:
    """Remove `path` (a directory tree, a file or a symlink; absent is fine) without recursion;
    `path` relative to the directory open as `dir_fd`, if given (as os.unlink's dir_fd).

    Everything that can be removed is; then OSError tells what could not (a mount point inside, an
    immutable file). A mount point inside the tree is never descended into."""
    try:
        st = os.lstat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path, dir_fd=dir_fd)
        return
    try:
        top = os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return  # removed meanwhile
    try:
        _Flattener(top, st.st_dev).empty(Path(path).name)
    finally:
        os.close(top)
    with contextlib.suppress(FileNotFoundError):  # removed meanwhile
        os.rmdir(path, dir_fd=dir_fd)


class _Flattener:
    """Empties the directory open as `top`, never holding more than one more directory open."""

    def __init__(self, top: int, dev: int) -> None:
        self.top, self.dev = top, dev
        self.names = (f".rm-{secrets.token_hex(8)}-{n}" for n in itertools.count())  # not foreseeable

    def empty(self, label: str) -> None:
        """Pass after pass until the directory is empty, or a pass changes nothing (then raise)."""
        while True:
            first_error: OSError | None = None
            progress = seen = False
            with os.scandir(self.top) as entries:
                for entry in entries:
                    seen = True
                    try:
                        self._remove_entry(entry.name)
                        progress = True
                    except FileNotFoundError:
                        progress = True  # gone meanwhile: fine
                    except OSError as e:
                        first_error = first_error or e
            if not seen:
                return
            if not progress:
                assert first_error is not None
                raise OSError(first_error.errno, f"cannot empty {label}: {first_error.strerror}")

    def _remove_entry(self, name: str) -> None:
        """Remove one entry of the top; a non-empty directory is emptied one level deep, its
        subdirectories moved up into the top (where a later pass takes them)."""
        top = self.top
        st = os.lstat(name, dir_fd=top)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=top)
            return
        if st.st_dev != self.dev:
            raise OSError(errno.EBUSY, f"{name} is a mount point")
        try:
            os.rmdir(name, dir_fd=top)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        child = os.open(name, DIR_FLAGS, dir_fd=top)
        try:
            with os.scandir(child) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        os.rename(entry.name, next(self.names), src_dir_fd=child, dst_dir_fd=top)
                    else:
                        os.unlink(entry.name, dir_fd=child)
        finally:
            os.close(child)
        os.rmdir(name, dir_fd=top)  # fails if something appeared meanwhile: a later pass sees it


@dataclass(frozen=True)
class TreeSize:
    bytes: int
    entries: int
    complete: bool  # False: the walk stopped early (the entry limit, or the tree changed under it)


@dataclass
class _Level:
    ino: int
    subdirs: list[str]  # the subdirectories of this directory still to visit


def tree_size(path: str | os.PathLike[str], max_entries: int = MAX_SIZE_ENTRIES) -> TreeSize:
    """The bytes of everything but directories under `path` (hard links counted once, symlinks not
    followed), as Docker counts a container's size. A missing `path` has size 0."""
    try:
        fd = os.open(path, DIR_FLAGS)
    except FileNotFoundError:
        return TreeSize(0, 0, True)
    total = entries = 0
    linked: set[int] = set()  # inodes with more than one link, counted once
    try:
        top = os.fstat(fd)
        dev, ino = top.st_dev, top.st_ino
        levels: list[_Level] = []
        while True:
            # entered a directory: count its files, note its subdirectories
            subdirs: list[str] = []
            with os.scandir(fd) as listing:
                for entry in listing:
                    entries += 1
                    if entries > max_entries:
                        return TreeSize(total, entries - 1, False)
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # gone meanwhile
                    if stat.S_ISDIR(st.st_mode):
                        if st.st_dev == dev:  # a mount point is not ours to count
                            subdirs.append(entry.name)
                    elif st.st_nlink == 1:
                        total += st.st_size
                    elif st.st_ino not in linked:
                        linked.add(st.st_ino)
                        total += st.st_size
            levels.append(_Level(ino, subdirs))
            # the next directory to enter: a subdirectory here, or one of an ancestor's
            while True:
                level = levels[-1]
                if level.subdirs:
                    try:
                        child = os.open(level.subdirs.pop(), DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        continue  # gone, or replaced by a symlink or a file meanwhile
                    st = os.fstat(child)
                    if st.st_dev != dev:
                        os.close(child)
                        continue
                    os.close(fd)
                    fd, ino = child, st.st_ino
                    break
                levels.pop()
                if not levels:
                    return TreeSize(total, entries, True)
                parent = os.open("..", DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = parent
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (dev, levels[-1].ino):
                    # moved meanwhile: ".." is not where we came from, maybe not even in the tree
                    log.debug("the tree under %s changed during its size walk", path)
                    return TreeSize(total, entries, False)
    except OSError as e:
        log.debug("the size walk of %s stopped: %s", path, e)
        return TreeSize(total, entries, False)
    finally:
        os.close(fd)
