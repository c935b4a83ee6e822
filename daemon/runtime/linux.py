"""The few Linux system calls Python's os module lacks, in one small module (so they can be faked in tests).

Everything here is a thin ctypes wrapper that raises OSError with errno, like os does.
"""

import ctypes
import ctypes.util
import fcntl
import os
import platform
import socket
import struct
import termios

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

_SYSCALLS = {  # syscalls glibc does not wrap in every version we meet
    "x86_64": {"pivot_root": 155, "mount_setattr": 442, "seccomp": 317, "keyctl": 250, "bpf": 321},
    "aarch64": {"pivot_root": 41, "mount_setattr": 442, "seccomp": 277, "keyctl": 219, "bpf": 280},
}
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def set_process_name(name: str) -> None:
    """The name ps and /proc/<pid>/comm show (15 bytes at most)."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.addressof(buf), 0, 0, 0), "prctl(PR_SET_NAME)")


def _number(name: str) -> int:
    number = _SYSCALLS.get(platform.machine(), {}).get(name)
    if number is None:
        raise OSError(38, f"{name}: unsupported architecture {platform.machine()}")
    return number


def raw_syscall(name: str, *args: object) -> int:
    """Syscall `name`'s own result (negative: the errno is in ctypes.get_errno()), for callers that make
    errors of their own; OSError(ENOSYS) on an architecture we have no number for."""
    return int(_libc.syscall(_number(name), *args))


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_number("pivot_root"), _b(new_root), _b(put_old)), "pivot_root")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def make_tree_readonly(path: str) -> None:
    """Read-only for a mount and every mount below it, in one step (Linux 5.12+ mount_setattr)."""
    number = _number("mount_setattr")
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(
        _libc.syscall(number, AT_FDCWD, _b(path), AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)),
        f"mount_setattr {path}",
    )


def mount_id(fd: int) -> int:
    """The id of the mount `fd` is on (from /proc/self/fdinfo, Linux 3.15+)."""
    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(38, "no mnt_id in /proc/self/fdinfo")


# capabilities: capget/capset with the version 3 header (two 32-bit words per set)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


# seccomp: load a BPF program compiled by the daemon (no libseccomp needed here)
SECCOMP_SET_MODE_FILTER = 1
_SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """Install a seccomp filter on the calling thread (seccomp(2) SECCOMP_SET_MODE_FILTER)."""
    if not program or len(program) % _SOCK_FILTER_SIZE:
        raise OSError(22, f"seccomp: a program of {len(program)} bytes is not a BPF program")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // _SOCK_FILTER_SIZE, ctypes.addressof(buf))
    _check(
        _libc.syscall(_number("seccomp"), SECCOMP_SET_MODE_FILTER, ctypes.c_ulong(flags), ctypes.byref(prog)),
        "seccomp",
    )


# kernel keyrings (keyctl(2)); glibc leaves them to libkeyutils
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SETPERM = 5
KEYCTL_DESCRIBE = 6


def _keyctl(op: int, *args: object) -> int:
    return int(_check(_libc.syscall(_number("keyctl"), op, *args), f"keyctl({op})"))


def join_session_keyring(name: str) -> int:
    """Join the session keyring of this name, made if there is none we may join; its serial."""
    return _keyctl(KEYCTL_JOIN_SESSION_KEYRING, ctypes.c_char_p(name.encode()))


def add_key_permissions(serial: int, bits: int) -> None:
    """Add permission bits to a key (KEYCTL_DESCRIBE gives "type;uid;gid;perm;description")."""
    buf = ctypes.create_string_buffer(4096)
    _keyctl(KEYCTL_DESCRIBE, ctypes.c_int(serial), buf, ctypes.c_size_t(len(buf)))
    perm = int(buf.value.decode().split(";")[3], 16)
    _keyctl(KEYCTL_SETPERM, ctypes.c_int(serial), ctypes.c_uint32(perm | bits))


def bring_loopback_up() -> None:
    """`ip link set lo up` in the current network namespace, with one ioctl."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), siocgifflags, ifreq))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def open_pty_pair(ptmx: str = "/dev/ptmx") -> tuple[int, int]:
    """A pseudo-terminal from the given ptmx (the container's own devpts instance)."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    tiocsptlck, tiocgptn = 0x40045431, 0x80045430
    fcntl.ioctl(master, tiocsptlck, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, tiocgptn, struct.pack("I", 0)))[0]
    pts_dir = (
        os.path.join(os.path.dirname(ptmx), "pts") if not ptmx.endswith("pts/ptmx") else os.path.dirname(ptmx)
    )
    slave = os.open(os.path.join(pts_dir, str(number)), os.O_RDWR | os.O_NOCTTY)
    return master, slave


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def make_controlling_tty(fd: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


# -- paths resolved inside a root by the kernel, and file system types (used by safepath) --
# System calls numbered from 424 on have one number on every architecture.
_NR_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02  # never follow /proc/<pid>/fd/N and its kind
RESOLVE_IN_ROOT = 0x10  # the directory fd is "/": absolute symlinks and ".." stay inside it
PROC_SUPER_MAGIC = 0x9FA0


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2) (Linux 5.6+): open `path` relative to `dirfd` under the `resolve` restrictions."""
    how = _OpenHow(flags, mode, resolve)
    result = _libc.syscall(
        _NR_OPENAT2, ctypes.c_int(dirfd), _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))
    )
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(result)


def filesystem_type(fd: int) -> int:
    """f_type of fstatfs(2): the magic number of the file system `fd` is on (an O_PATH fd will do)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit; f_type comes first
    _check(_libc.fstatfs(fd, buf), "fstatfs")
    return ctypes.c_long.from_buffer(buf).value
