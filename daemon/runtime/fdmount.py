"""Mounts made onto descriptors from safepath, never onto path strings.

mount(2) gets the target as /proc/self/fd/N: the kernel mounts on exactly the object we resolved and
checked, whatever was renamed meanwhile. That path keeps naming the object *under* the new mount, though,
so what must act on the new mount itself (a read-only remount, the files of a fresh /dev) reopens the
target's name from the parent directory we hold, and checks that it found the mount we just made: another
mount than the target's, and for a bind the source's inode.
"""

import errno
import os
import stat

from daemon.runtime.linux import MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT
from daemon.runtime.safepath import Handle
from daemon.runtime.syscalls import LINUX, Syscalls

_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def open_source(path: str) -> int:
    """An O_PATH descriptor of a bind's host source. Symlinks in it are followed, as Docker does: the
    source is the user's choice on the host, not the container's."""
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def bind(
    source_fd: int, target: Handle, *, readonly: bool, recursive: bool = True, syscalls: Syscalls = LINUX
) -> None:
    """Bind what `source_fd` holds onto `target` (read-only all the way down where the kernel can)."""
    flags = MS_BIND | (MS_REC if recursive else 0)
    syscalls.mount(f"/proc/self/fd/{source_fd}", target.proc_path, None, flags)
    if readonly:
        source = os.fstat(source_fd)
        top = open_top(target, expect=(source.st_dev, source.st_ino), syscalls=syscalls)
        try:
            make_readonly(f"/proc/self/fd/{top}", recursive, syscalls)
        finally:
            os.close(top)


def mount_fs(
    fstype: str,
    target: Handle,
    flags: int = 0,
    data: str | None = None,
    source: str = "",
    syscalls: Syscalls = LINUX,
) -> None:
    """A new file system (proc, sysfs, tmpfs, ...) on `target`."""
    syscalls.mount(source or fstype, target.proc_path, fstype, flags, data)


def make_readonly(path: str, recursive: bool, syscalls: Syscalls = LINUX) -> None:
    if recursive:
        try:  # mounts below it are read-only too, as in Docker 25+
            syscalls.make_tree_readonly(path)
            return
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EINVAL):
                raise
    # older kernels: read-only at the top only (the remount flag is not recursive)
    syscalls.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def open_top(target: Handle, expect: tuple[int, int] | None = None, syscalls: Syscalls = LINUX) -> int:
    """An O_PATH descriptor of the mount just made on `target`, found again by its name in the parent
    we hold. Refused (EBUSY) unless it is a mount other than the target's, of the same kind, and (with
    `expect`, a source's device and inode) the source bound there."""
    if target.parent is None:
        raise OSError(errno.EINVAL, "cannot mount over the root itself", target.path)
    fd = os.open(target.name, _PATH_FLAGS, dir_fd=target.parent)
    try:
        st = os.fstat(fd)
        same_kind = stat.S_ISDIR(st.st_mode) == target.is_dir()
        found = (st.st_dev, st.st_ino)
        not_mounted = syscalls.mount_id(fd) == syscalls.mount_id(target.fd)
        if not_mounted or not same_kind or (expect is not None and found != expect):
            raise OSError(errno.EBUSY, "mount point was replaced while it was mounted", target.path)
    except BaseException:
        os.close(fd)
        raise
    return fd
