"""Paths inside a root directory (a container's), resolved and created through file descriptors.

Why not path strings: what lies under a root can change while we work on it. A container that shares a
writable volume with another can swap a directory for a symlink between our check of a path and our use
of it, and before pivot_root an absolute symlink points into the host. So nothing here uses a path twice:

- `Root.open` resolves a path as if the root were "/" (absolute symlinks and ".." stay inside it) and
  returns a `Handle`: an O_PATH descriptor of what it found, plus its parent directory and name.
  The kernel does it with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) where it can (Linux 5.6+);
  elsewhere a walk opens one component at a time with O_NOFOLLOW from directories it already holds, and
  reads each symlink (through its own descriptor) to resolve it against the root by hand.
- `Root.mkdir_all` and `Root.create_file` create what is missing relative to the directory descriptor they
  hold (mkdirat, openat with O_CREAT|O_EXCL|O_NOFOLLOW), then open what they made like any other
  component: if it was swapped meanwhile, the walk follows the swap inside the root, or fails.
- Every result is checked: the kind the caller asked for (fstat), and that the kernel's own name for the
  descriptor lies inside the root. Callers then act on `/proc/self/fd/N` (mount) or reopen it (read or
  write), never on a path string.

Errors are OSError with an errno, naming the path as asked inside the root, never the host path.

Beyond the container's start (rootfs), the same calls serve what reads or writes a container's files from
outside: `Root(merged_dir).open(path).reopen(os.O_RDONLY)` to read, `create_file(...).reopen(os.O_WRONLY)`
to write, `mkdir_all` for a volume's mount point, `Root.from_fd` to go on inside a directory already held.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from types import TracebackType
from typing import Literal

from daemon.runtime import linux

MAX_SYMLINKS = 40  # what the kernel follows in one lookup (MAXSYMLINKS)
PARENT_MODE = 0o755  # missing parents, as `mkdir -p` makes them under the usual umask
PROC_ROOT_INO = 1
MAX_RETRIES = 16  # creations raced away (made, then gone before we opened them), and openat2's EAGAIN
Kind = Literal["dir", "file"]  # what to create where nothing is
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_IN_ROOT = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


class Handle:
    """An O_PATH descriptor of something inside a root, with the directory it was found in and its name
    there: mounting onto `proc_path` hides the object, and reopening `name` from `parent` reaches what was
    mounted on it."""

    def __init__(self, fd: int, parent: int | None, name: str, path: str) -> None:
        self.fd, self.parent, self.name, self.path = fd, parent, name, path
        self.stat = os.fstat(fd)

    @property
    def proc_path(self) -> str:
        """The descriptor as a path the kernel resolves to exactly this object (for mount(2))."""
        return f"/proc/self/fd/{self.fd}"

    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.stat.st_mode)

    def reopen(self, flags: int) -> int:
        """A new descriptor for reading or writing this very object (the kernel follows /proc/self/fd/N
        to it, not to any path; a Handle never holds a symlink, Root follows them all)."""
        return os.open(self.proc_path, flags | os.O_CLOEXEC)

    def close(self) -> None:
        for fd in (self.fd, self.parent):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd, self.parent = -1, None

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Root:
    """A directory that paths are resolved inside of, as if it were "/". Holds an O_PATH descriptor of it.

    `use_openat2=False` forces the walk (for kernels without openat2, and for tests of the walk).
    """

    def __init__(self, path: str, *, use_openat2: bool = True) -> None:
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.path = os.readlink(f"/proc/self/fd/{self.fd}")  # the kernel's name, as _check compares it
        self.use_openat2 = use_openat2

    @classmethod
    def from_fd(cls, fd: int, *, use_openat2: bool = True) -> Root:
        """A root of the directory `fd` holds (its descriptor is taken over), such as a fresh mount's."""
        root = cls.__new__(cls)
        root.path, root.fd, root.use_openat2 = os.readlink(f"/proc/self/fd/{fd}"), fd, use_openat2
        return root

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the API -----------------------------------------------------------------------------------

    def open(self, path: str) -> Handle:
        """What `path` names inside the root (symlinks followed inside it); FileNotFoundError if nothing."""
        return self._resolve(path, create=None, mode=0)

    def mkdir_all(self, path: str, mode: int = 0o755) -> Handle:
        """The directory `path`, created with its missing parents; NotADirectoryError if it is not one."""
        return self._resolve(path, create="dir", mode=mode)

    def create_file(self, path: str, mode: int = 0o644) -> Handle:
        """`path`, created as an empty file (and its parents as directories) if missing; an existing
        non-directory is kept as it is. IsADirectoryError if it is a directory."""
        return self._resolve(path, create="file", mode=mode)

    # -- resolution --------------------------------------------------------------------------------

    def _resolve(self, path: str, create: Kind | None, mode: int) -> Handle:
        handle = self._resolve_with_openat2(path, create, mode) if self.use_openat2 else None
        if handle is None:
            handle = self._walk(path, create, mode)
        try:
            self._check(handle, path, create)
        except BaseException:
            handle.close()
            raise
        return handle

    def _resolve_with_openat2(self, path: str, create: Kind | None, mode: int) -> Handle | None:
        """The kernel resolves the parent inside the root; we open the last component ourselves, without
        following it. None: leave it all to the walk (openat2 missing, a parent to create, a symlink last).
        """
        parts = components(path)
        if not parts or parts[-1] == "..":
            return None
        parent = None
        for _ in range(MAX_RETRIES):
            try:
                parent = linux.openat2(
                    self.fd, "/".join(parts[:-1]) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, _IN_ROOT
                )
                break
            except OSError as e:
                if e.errno in (errno.ENOSYS, errno.EPERM):  # an old kernel, or a seccomp filter over us
                    self.use_openat2 = False
                    return None
                if e.errno == errno.ENOENT and create:
                    return None
                if e.errno != errno.EAGAIN:  # EAGAIN: a rename raced a ".." step; the kernel asks to retry
                    raise _error(e.errno, path) from None
        if parent is None:
            return None
        try:
            fd = _step(parent, parts[-1], create, mode, path)
        except BaseException:
            os.close(parent)
            raise
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)
            os.close(parent)
            return None
        return Handle(fd, parent, parts[-1], path)

    def _walk(self, path: str, create: Kind | None, mode: int) -> Handle:
        """One component at a time from descriptors we hold; ".." and symlinks resolved against the root."""
        parts = components(path)
        stack: list[tuple[int, str]] = [(os.dup(self.fd), "")]  # the directories from the root down
        links = 0
        try:
            while parts:
                name = parts.pop(0)
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop()[0])
                    continue
                if parts:  # a parent: a directory, made like mkdir -p does
                    fd = _step(stack[-1][0], name, "dir" if create else None, PARENT_MODE, path)
                else:
                    fd = _step(stack[-1][0], name, create, mode, path)
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    try:
                        links += 1
                        if links > MAX_SYMLINKS:
                            raise _error(errno.ELOOP, path)
                        target = _read_link(fd, stack[-1][0], path)
                    finally:
                        os.close(fd)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop()[0])
                    parts = components(target) + parts
                    continue
                stack.append((fd, name))
                if parts and not stat.S_ISDIR(st.st_mode):
                    raise _error(errno.ENOTDIR, path)
            if len(stack) == 1:  # the root itself
                return Handle(stack.pop()[0], None, "", path)
            fd, name = stack.pop()
            parent = stack.pop()[0]
            return Handle(fd, parent, name, path)
        finally:
            for fd, _ in stack:
                os.close(fd)

    def _check(self, handle: Handle, path: str, create: Kind | None) -> None:
        if create == "dir" and not handle.is_dir():
            raise _error(errno.ENOTDIR, path)
        if create == "file" and handle.is_dir():
            raise _error(errno.EISDIR, path)
        # the kernel's name for what we hold: a last guard against anything that got us out of the root
        where = os.readlink(handle.proc_path)
        if where != self.path and not where.startswith(self.path.rstrip("/") + "/"):
            raise OSError(errno.EXDEV, f"{path} resolved outside the root", path)


def components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _error(number: int | None, path: str) -> OSError:
    number = number or errno.EIO
    return OSError(number, os.strerror(number), path)


def _step(dirfd: int, name: str, create: Kind | None, mode: int, path: str) -> int:
    """An O_PATH|O_NOFOLLOW descriptor of `name` in `dirfd`, made first (a `create` kind) if missing."""
    for _ in range(MAX_RETRIES):
        try:
            return os.open(name, _PATH_FLAGS, dir_fd=dirfd)
        except FileNotFoundError:
            if create is None:
                raise _error(errno.ENOENT, path) from None
        except OSError as e:
            raise _error(e.errno, path) from None
        try:
            if create == "dir":
                os.mkdir(name, mode, dir_fd=dirfd)
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(name, flags, mode, dir_fd=dirfd))
        except FileExistsError:
            pass  # made by someone else meanwhile (or a dangling symlink): open what is there now
        except OSError as e:
            raise _error(e.errno, path) from None
    raise _error(errno.ENOENT, path)  # what we made kept vanishing


def _read_link(fd: int, dirfd: int, path: str) -> str:
    """The text of the symlink `fd` (found in directory `dirfd`). Magic links (/proc/<pid>/fd/N, .../root
    and their kind) are refused, as RESOLVE_NO_MAGICLINKS does: their text is not where they lead. procfs's
    plain links (/proc/self, /proc/mounts) live in its root directory, whose inode is always 1."""
    if linux.filesystem_type(fd) == linux.PROC_SUPER_MAGIC and os.fstat(dirfd).st_ino != PROC_ROOT_INO:
        raise _error(errno.ELOOP, path)
    return os.readlink("", dir_fd=fd)
