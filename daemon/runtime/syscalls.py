"""The system calls a container's root file system set-up makes, behind one small interface.

`rootfs`, `fdmount` and the container's first process (`init.ContainerBody`) take a `Syscalls` object, by
default `LINUX` (linux.py and os), so a unit test can pass a recording fake and check the order of the
mounts without root (youki passes its `Syscall` trait the same way). Probing the file system (safepath's
opens, fstat, readlink) is not in it: that works unprivileged on a test's temp directory as it is.
"""

import os
from typing import Protocol

from daemon.runtime import linux


class Syscalls(Protocol):
    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None: ...

    def umount2(self, target: str, flags: int = 0) -> None: ...

    def pivot_root(self, new_root: str, put_old: str) -> None: ...

    def make_tree_readonly(self, path: str) -> None:
        """mount_setattr(2) read-only on a mount and all below it; OSError(ENOSYS) before Linux 5.12."""

    def mount_id(self, fd: int) -> int:
        """The id of the mount that `fd` is on (a fake answers from the mounts it recorded)."""

    def mknod(self, name: str, mode: int, device: int, *, dir_fd: int) -> None: ...

    def chmod(self, name: str, mode: int, *, dir_fd: int) -> None: ...

    def symlink(self, target: str, name: str, *, dir_fd: int) -> None: ...

    def fchdir(self, fd: int) -> None: ...

    def chdir(self, path: str) -> None: ...

    def unshare(self, flags: int) -> None: ...

    def sethostname(self, name: str) -> None: ...

    def setdomainname(self, name: str) -> None: ...

    def bring_loopback_up(self) -> None: ...

    def join_netns(self, path: str) -> None:
        """setns(2) into the network namespace at path (e.g. /proc/<pid>/ns/net)."""


class LinuxSyscalls:
    """The real calls. Each looks its function up when called, so a test that replaces one in linux.py
    (an old kernel without mount_setattr) reaches this object too."""

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        linux.mount(source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        linux.umount2(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        linux.pivot_root(new_root, put_old)

    def make_tree_readonly(self, path: str) -> None:
        linux.make_tree_readonly(path)

    def mount_id(self, fd: int) -> int:
        return linux.mount_id(fd)

    def mknod(self, name: str, mode: int, device: int, *, dir_fd: int) -> None:
        os.mknod(name, mode, device, dir_fd=dir_fd)

    def chmod(self, name: str, mode: int, *, dir_fd: int) -> None:
        os.chmod(name, mode, dir_fd=dir_fd)

    def symlink(self, target: str, name: str, *, dir_fd: int) -> None:
        os.symlink(target, name, dir_fd=dir_fd)

    def fchdir(self, fd: int) -> None:
        os.fchdir(fd)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def unshare(self, flags: int) -> None:
        linux.unshare(flags)

    def sethostname(self, name: str) -> None:
        linux.sethostname(name)

    def setdomainname(self, name: str) -> None:
        linux.setdomainname(name)

    def bring_loopback_up(self) -> None:
        linux.bring_loopback_up()

    def join_netns(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)


LINUX: Syscalls = LinuxSyscalls()  # holds no state: one instance serves every caller
