"""The container's file system, built inside its own mount namespace (so nothing leaks onto the host).

Runs in the container's first process, before pivot_root: overlay root, /proc, /sys, /dev, bind mounts,
masked paths, then pivot_root into it.
"""

import errno
import os
import stat

from daemon.runtime import linux
from daemon.runtime.linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT
from daemon.runtime.paths import secure_join
from daemon.runtime.spec import ContainerSpec

DEVICES = [  # name, major, minor: the character devices every container has (moby oci/devices)
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
]
DEV_LINKS = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
]


def mount_overlay(spec: ContainerSpec, target: str) -> None:
    options = f"lowerdir={':'.join(spec.lower_dirs)},upperdir={spec.upper_dir},workdir={spec.work_dir}"
    linux.mount("overlay", target, "overlay", 0, options)


def _mkdir_in(root: str, path: str, mode: int = 0o755) -> str:
    host = secure_join(root, path)
    os.makedirs(host, mode=mode, exist_ok=True)
    return host


def _touch_in(root: str, path: str) -> str:
    host = secure_join(root, path)
    os.makedirs(os.path.dirname(host), exist_ok=True)
    if not os.path.exists(host):
        os.close(os.open(host, os.O_CREAT | os.O_WRONLY, 0o644))
    return host


def bind(source: str, target: str, readonly: bool, recursive: bool = True) -> None:
    linux.mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if not readonly:
        return
    if recursive:
        try:  # mounts below the source are read-only too, as in Docker 25+
            linux.make_tree_readonly(target)
            return
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EINVAL):
                raise
    # older kernels: read-only at the top only (the remount flag is not recursive)
    linux.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def mount_dev(root: str, privileged: bool) -> None:
    dev = _mkdir_in(root, "/dev")
    linux.mount("tmpfs", dev, "tmpfs", MS_NOSUID | linux.MS_STRICTATIME, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = os.path.join(dev, name)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)  # mknod honours the umask
    for name, target in DEV_LINKS:
        os.symlink(target, os.path.join(dev, name))
    pts = os.path.join(dev, "pts")
    os.mkdir(pts, 0o755)
    linux.mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    shm = os.path.join(dev, "shm")
    os.mkdir(shm, 0o1777)
    linux.mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    mqueue = os.path.join(dev, "mqueue")
    os.mkdir(mqueue, 0o755)
    linux.mount("mqueue", mqueue, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount_proc_sys(root: str, spec: ContainerSpec) -> None:
    linux.mount("proc", _mkdir_in(root, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    sys_dir = _mkdir_in(root, "/sys")
    sys_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if spec.process.privileged else MS_RDONLY)
    # a fresh sysfs, also with the host's network: a bind of /sys would leave its submounts
    # (/sys/fs/cgroup) writable; mounted from the host's network namespace it shows the host's devices
    linux.mount("sysfs", sys_dir, "sysfs", sys_flags)


def mask_paths(root: str, spec: ContainerSpec) -> None:
    for path in spec.masked_paths:
        host = secure_join(root, path)
        if os.path.isdir(host):
            linux.mount("tmpfs", host, "tmpfs", MS_RDONLY)
        elif os.path.exists(host):
            linux.mount("/dev/null", host, None, MS_BIND)
    for path in spec.readonly_paths:
        host = secure_join(root, path)
        if os.path.exists(host):
            bind(host, host, readonly=True)


def mount_binds(root: str, spec: ContainerSpec) -> None:
    for m in spec.mounts:
        target = _mkdir_in(root, m.destination) if os.path.isdir(m.source) else _touch_in(root, m.destination)
        bind(m.source, target, m.readonly)
    for path, source in spec.etc_files.items():
        bind(source, _touch_in(root, path), readonly=False, recursive=False)


def pivot_into(root: str) -> None:
    # pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new root
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def build_root(spec: ContainerSpec, root: str) -> None:
    """Everything from a private mount table to pivot_root. Must run in a new mount namespace."""
    linux.mount(None, "/", None, MS_REC | linux.MS_PRIVATE)
    mount_overlay(spec, root)
    mount_proc_sys(root, spec)
    mount_dev(root, spec.process.privileged)
    mount_binds(root, spec)
    mask_paths(root, spec)
    pivot_into(root)
    if spec.readonly_rootfs:
        linux.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
