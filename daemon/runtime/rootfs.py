"""The container's file system, built inside its own mount namespace (so nothing leaks onto the host).

Runs in the container's first process, before pivot_root: overlay root, /proc, /sys, /dev, bind mounts,
masked paths, then pivot_root into it. Every target inside the root is resolved, created and mounted
through descriptors (safepath, fdmount): another container sharing a volume with this one may swap what
lies under it while we work, and until pivot_root an absolute symlink would lead into the host.

Every mount, device node and change of root goes through the `Syscalls` object each step is given (the real
calls by default), so a unit test can record them on a temp directory.
"""

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from daemon.runtime import fdmount, linux
from daemon.runtime.linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT
from daemon.runtime.process import StartError
from daemon.runtime.safepath import Handle, Root
from daemon.runtime.spec import PROC_FILES_ALLOWED, ContainerSpec
from daemon.runtime.syscalls import LINUX, Syscalls

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


@contextlib.contextmanager
def failing(what: str, path: str = "", *, named: bool = True) -> Iterator[None]:
    """An OSError in the block becomes a start error in runc's words. It names the paths the user knows
    (a bind's source, the path inside the container); `named=False` for steps on the daemon's own paths,
    whose errors keep only the errno's words."""
    try:
        yield
    except OSError as e:
        text = reason(e, path) if named else reason(OSError(e.errno, None))
        raise StartError(f"error during container init: {what}: {text}", 125) from e


def mounting(source: str, destination: str) -> contextlib.AbstractContextManager[None]:
    return failing(f'error mounting "{source}" to rootfs at "{destination}"', destination)


def reason(e: OSError, path: str = "") -> str:
    """Go's words for an errno ("not a directory"), after the path it concerns unless that is `path`.
    safepath's and fdmount's errors name a path inside the container; linux.py's name none (their text
    holds the descriptor or daemon path they were given: only the errno's words are kept)."""
    text = (e.strerror if e.filename is not None else None) or os.strerror(e.errno or errno.EIO)
    text = text[:1].lower() + text[1:]
    if isinstance(e.filename, str) and e.filename != path and not e.filename.startswith("/proc/self/"):
        return f"{e.filename}: {text}"
    return text


def mount_overlay(spec: ContainerSpec, target: str, syscalls: Syscalls = LINUX) -> None:
    options = f"lowerdir={':'.join(spec.lower_dirs)},upperdir={spec.upper_dir},workdir={spec.work_dir}"
    syscalls.mount("overlay", target, "overlay", 0, options)


def mount_proc_sys(root: Root, spec: ContainerSpec, syscalls: Syscalls = LINUX) -> None:
    # mkdir_all refuses anything but a directory: proc and sysfs go on an ordinary directory (runc's rule)
    with mounting("proc", "/proc"), root.mkdir_all("/proc") as target:
        fdmount.mount_fs("proc", target, MS_NOSUID | MS_NODEV | MS_NOEXEC, syscalls=syscalls)
    sys_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if spec.process.privileged else MS_RDONLY)
    # a fresh sysfs, also with the host's network: a bind of /sys would leave its submounts
    # (/sys/fs/cgroup) writable; mounted from the host's network namespace it shows the host's devices
    with mounting("sysfs", "/sys"), root.mkdir_all("/sys") as target:
        fdmount.mount_fs("sysfs", target, sys_flags, syscalls=syscalls)


def mount_dev(root: Root, syscalls: Syscalls = LINUX) -> None:
    with mounting("tmpfs", "/dev"), root.mkdir_all("/dev") as target:
        dev_flags = MS_NOSUID | linux.MS_STRICTATIME
        fdmount.mount_fs("tmpfs", target, dev_flags, "mode=755,size=65536k", syscalls=syscalls)
        dev = Root.from_fd(fdmount.open_top(target, syscalls=syscalls), use_openat2=root.use_openat2)
    with dev:  # a tmpfs of our own: nobody else can reach it yet
        with failing("error creating device nodes"):
            for name, major, minor in DEVICES:
                syscalls.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dev.fd)
                syscalls.chmod(name, 0o666, dir_fd=dev.fd)  # mknod honours the umask
            for name, link in DEV_LINKS:
                syscalls.symlink(link, name, dir_fd=dev.fd)
        with mounting("devpts", "/dev/pts"), dev.mkdir_all("pts") as target:
            pts_data = "newinstance,ptmxmode=0666,mode=0620,gid=5"
            fdmount.mount_fs("devpts", target, MS_NOSUID | MS_NOEXEC, pts_data, syscalls=syscalls)
        with mounting("shm", "/dev/shm"), dev.mkdir_all("shm", 0o1777) as target:
            shm_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
            fdmount.mount_fs("tmpfs", target, shm_flags, "mode=1777,size=65536k", "shm", syscalls)
        with mounting("mqueue", "/dev/mqueue"), dev.mkdir_all("mqueue") as target:
            fdmount.mount_fs("mqueue", target, MS_NOSUID | MS_NODEV | MS_NOEXEC, syscalls=syscalls)


def bind_target(root: Root, destination: str, directory: bool) -> Handle:
    """Where a bind goes: a directory for a directory, a file for anything else, made if missing."""
    try:
        return root.mkdir_all(destination) if directory else root.create_file(destination)
    except IsADirectoryError as e:  # a file onto a directory: the kernel's words for it are ENOTDIR
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), e.filename) from e


def check_outside_proc(root: Root, target: Handle, source: str, destination: str) -> None:
    """runc's checkProcMount on where a bind really lands: the create-time check sees the path as given,
    but a symlink in the image (/data -> /proc/sys) must not steer a bind into /proc. A real procfs over
    /proc itself passed that check at create and is the one bind allowed there."""
    relative = os.path.relpath(os.readlink(target.proc_path), root.path)
    inside = "/" if relative == "." else "/" + relative
    if (inside != "/proc" and not inside.startswith("/proc/")) or inside in PROC_FILES_ALLOWED:
        return
    if inside == "/proc" and os.path.normpath("/" + destination) == "/proc":
        return
    raise StartError(
        f'error during container init: error mounting "{source}" to rootfs at "{destination}": '
        f'"{inside}" cannot be mounted because it is inside /proc',
        125,
    )


def bind_into(
    root: Root,
    source: str,
    destination: str,
    readonly: bool,
    recursive: bool = True,
    shown: str = "",
    syscalls: Syscalls = LINUX,
) -> None:
    """Bind `source` at `destination`; errors name the source as `shown` (default: the source)."""
    with mounting(shown or source, destination):
        try:
            source_fd = fdmount.open_source(source)
        except OSError as e:  # named as shown: an /etc file's source is the daemon's own path
            raise OSError(e.errno, e.strerror, f"stat {shown or source}") from e
        try:
            directory = stat.S_ISDIR(os.fstat(source_fd).st_mode)
            with bind_target(root, destination, directory) as target:
                check_outside_proc(root, target, source=shown or source, destination=destination)
                fdmount.bind(source_fd, target, readonly=readonly, recursive=recursive, syscalls=syscalls)
        finally:
            os.close(source_fd)


def mount_binds(root: Root, spec: ContainerSpec, syscalls: Syscalls = LINUX) -> None:
    for m in spec.mounts:
        bind_into(root, m.source, m.destination, m.readonly, syscalls=syscalls)
    for path, source in spec.etc_files.items():  # the daemon's files: errors show their name only
        shown = os.path.basename(source)
        bind_into(root, source, path, readonly=False, recursive=False, shown=shown, syscalls=syscalls)


def mask_paths(root: Root, spec: ContainerSpec, syscalls: Syscalls = LINUX) -> None:
    null = fdmount.open_source("/dev/null")  # the host's: bound over each masked file
    try:
        for path in spec.masked_paths:
            with failing(f"can't mask path {path}"), _existing(root, path) as target:
                if target is None:
                    continue
                if target.is_dir():
                    fdmount.mount_fs("tmpfs", target, MS_RDONLY, syscalls=syscalls)
                else:
                    fdmount.bind(null, target, readonly=False, recursive=False, syscalls=syscalls)
    finally:
        os.close(null)
    for path in spec.readonly_paths:
        with failing(f'can\'t make "{path}" read-only'), _existing(root, path) as target:
            if target is not None:
                fdmount.bind(target.fd, target, readonly=True, syscalls=syscalls)


@contextlib.contextmanager
def _existing(root: Root, path: str) -> Iterator[Handle | None]:
    try:
        handle = root.open(path)
    except FileNotFoundError:
        yield None
        return
    with handle:
        yield handle


def pivot_into(root: Root, syscalls: Syscalls = LINUX) -> None:
    # pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new root
    syscalls.fchdir(root.fd)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", linux.MNT_DETACH)
    syscalls.chdir("/")


def build_root(spec: ContainerSpec, root_path: str, syscalls: Syscalls = LINUX) -> None:
    """Everything from a private mount table to pivot_root. Must run in a new mount namespace."""
    with failing("error preparing rootfs", named=False):
        syscalls.mount(None, "/", None, MS_REC | linux.MS_PRIVATE)
        mount_overlay(spec, root_path, syscalls)
        root = Root(root_path)  # opened after the overlay mount: the descriptor is on it
    with root:
        mount_proc_sys(root, spec, syscalls)
        mount_dev(root, syscalls)
        mount_binds(root, spec, syscalls)
        mask_paths(root, spec, syscalls)
        with failing("error jailing process inside rootfs", named=False):
            pivot_into(root, syscalls)
    if spec.readonly_rootfs:
        with failing("error setting rootfs as readonly", named=False):
            syscalls.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
