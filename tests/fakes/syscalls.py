"""A `Syscalls` (daemon/runtime/syscalls.py) that records what the root file system set-up asks of the
kernel, on a temp directory and without root.

Every call is kept in `calls` as a tuple: the operation, then its arguments, with each path that lies in
the container's root written as the container sees it ("/proc/self/fd/7" on the root's /dev reads "/dev");
other paths and strings are kept as given. Nothing is mounted. The file system probing around the calls
(safepath, fstat) runs for real on the temp directory, so a test makes the paths it wants found, such as
the files a fresh /proc would show.

Two things the code checks after a mount are modelled, so that it goes on as it would on Linux:
- which mount a descriptor is on (`mount_id`): one opened before a mount stays on what was there, one
  opened after it at or below its mount point is on it (descriptors are told apart by number and inode);
- a bind from the test's own directory (`host`, outside the root) shows the source at the target: the
  source is moved there, as nothing else unprivileged puts one inode at two paths. Sources from anywhere
  else (the host's /dev/null) are recorded only.
"""

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from daemon.runtime.linux import MS_BIND, MS_PRIVATE, MS_REMOUNT

Call = tuple[object, ...]
_PROPAGATION = MS_PRIVATE  # the only propagation change the root set-up makes


@dataclass
class _Mount:
    id: int
    path: str  # the mount point's host path
    below: set[tuple[int, int, int]] = field(default_factory=set)  # (fd, st_dev, st_ino) opened before


class RecordingSyscalls:
    def __init__(
        self,
        host: Path,
        root: Path,
        *,
        mount_setattr: bool = True,
        failing: dict[tuple[str, str], int] | None = None,
    ) -> None:
        """`root`: the container's root, inside `host`. `mount_setattr=False` plays a kernel before 5.12.
        `failing`: (operation, container path) -> the errno that call fails with, after it is recorded."""
        self.host, self.root = os.path.realpath(host), os.path.realpath(root)
        self.mount_setattr = mount_setattr
        self.failing = failing or {}
        self.calls: list[Call] = []
        self._mounts: list[_Mount] = []

    # -- what the tests read -------------------------------------------------------------------------

    def of(self, *operations: str) -> list[Call]:
        """The calls of these operations, in order."""
        return [c for c in self.calls if c[0] in operations]

    def name(self, path: str | None) -> str | None:
        """`path` as the container sees it when it lies in the root, else as given."""
        if path is None:
            return None
        if path.startswith("/proc/self/fd/"):
            path = os.readlink(path)
        if path == self.root or path.startswith(self.root + "/"):
            return "/" + os.path.relpath(path, self.root).removeprefix(".")
        return path

    # -- the Syscalls protocol -----------------------------------------------------------------------

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        source_path = os.readlink(source) if source and source.startswith("/proc/self/fd/") else source
        target_path = os.readlink(target) if target.startswith("/proc/self/fd/") else target
        self._record("mount", self.name(source_path), self.name(target_path), fstype, flags, data)
        if flags & (MS_REMOUNT | _PROPAGATION):
            return  # changes a mount, makes none
        self._mounts.append(_Mount(len(self._mounts) + 1, target_path, self._open_at_or_below(target_path)))
        if flags & MS_BIND and source_path and self._from_host(source_path) and source_path != target_path:
            os.rename(source_path, target_path)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", self.name(target), flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", self.name(new_root), self.name(put_old))

    def make_tree_readonly(self, path: str) -> None:
        self._record("make_tree_readonly", self.name(path))
        if not self.mount_setattr:
            raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    def mount_id(self, fd: int) -> int:
        path = os.readlink(f"/proc/self/fd/{fd}")
        st = os.fstat(fd)
        for m in reversed(self._mounts):
            if _at_or_below(path, m.path) and (fd, st.st_dev, st.st_ino) not in m.below:
                return m.id
        return 0  # the mount the test's directory is on

    def mknod(self, name: str, mode: int, device: int, *, dir_fd: int) -> None:
        self._record("mknod", self._in(dir_fd, name), mode, device)

    def chmod(self, name: str, mode: int, *, dir_fd: int) -> None:
        self._record("chmod", self._in(dir_fd, name), mode)

    def symlink(self, target: str, name: str, *, dir_fd: int) -> None:
        self._record("symlink", target, self._in(dir_fd, name))

    def fchdir(self, fd: int) -> None:
        self._record("fchdir", self.name(f"/proc/self/fd/{fd}"))

    def chdir(self, path: str) -> None:
        self._record("chdir", self.name(path))

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", name)

    def bring_loopback_up(self) -> None:
        self._record("bring_loopback_up")

    def join_netns(self, path: str) -> None:
        self._record("join_netns", path)

    # -- helpers ---------------------------------------------------------------------------------------

    def _record(self, operation: str, *args: object) -> None:
        self.calls.append((operation, *args))
        where = args[1] if operation == "mount" else args[0] if args else ""
        failure = self.failing.get((operation, str(where)))
        if failure:
            raise OSError(failure, os.strerror(failure))

    def _in(self, dir_fd: int, name: str) -> str:
        return f"{(self.name(f'/proc/self/fd/{dir_fd}') or '').rstrip('/')}/{name}"

    def _from_host(self, path: str) -> bool:
        return _at_or_below(path, self.host) and not _at_or_below(path, self.root)

    @staticmethod
    def _open_at_or_below(path: str) -> set[tuple[int, int, int]]:
        """This process's open descriptors on `path` or below it: a mount there leaves them where they are."""
        found = set()
        for entry in os.listdir("/proc/self/fd"):
            fd = int(entry)
            try:
                if _at_or_below(os.readlink(f"/proc/self/fd/{fd}"), path):
                    st = os.fstat(fd)
                    found.add((fd, st.st_dev, st.st_ino))
            except OSError:
                continue  # closed meanwhile (the listing's own descriptor)
        return found


def _at_or_below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")
