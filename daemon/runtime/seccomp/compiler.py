"""Profiles to BPF with libseccomp (through pyseccomp), once per profile and capability set.

The daemon compiles and the container's process only loads the bytes (linux.seccomp_set_filter): the
shim and the launcher never load libseccomp, and a container start costs a dictionary lookup. A syscall
name libseccomp does not know is skipped, as runc does, so a profile listing syscalls newer than the
host's libseccomp still loads (those syscalls get the default action).
"""

import contextlib
import errno
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from daemon.runtime.seccomp.arches import ARCHES
from daemon.runtime.seccomp.errors import ProfileError, SeccompUnavailable
from daemon.runtime.seccomp.profile import FLAGS, OPERATORS, Arg, parse_profile
from daemon.runtime.seccomp.rules import Host, Resolved, resolve, this_host
from daemon.runtime.spec import SeccompProgram

_NR_UNKNOWN = -1  # libseccomp's __NR_SCMP_ERROR: a name it does not know
_OPTIMIZE = 8  # SCMP_FLTATR_CTL_OPTIMIZE
_BINARY_TREE = 2  # syscalls found by a binary search, not a linear walk: cheaper for every syscall


NO_FILTER = SeccompProgram(b"")  # a profile asking for none (Docker reads `{}` so)


def libseccomp() -> Any:
    """The pyseccomp module, or SeccompUnavailable when it (or libseccomp itself) cannot be loaded."""
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as e:
        raise SeccompUnavailable(f"libseccomp is not available: {e}") from e
    return pyseccomp


def kernel_supports_filters() -> bool:
    return os.path.exists("/proc/sys/kernel/seccomp/actions_avail")


def compile_filter(resolved: Resolved, host: Host) -> SeccompProgram:
    sc = libseccomp()
    default = _action(sc, resolved.default_action, resolved.default_errno_ret)
    filt = sc.SyscallFilter(default)
    with contextlib.suppress(OSError):  # an older libseccomp: a linear filter is correct, only slower
        filt.set_attr(_OPTIMIZE, _BINARY_TREE)
    for name in resolved.arches:
        token = ARCHES[name].token
        if token == host.arch.token:
            continue
        try:
            if not filt.exist_arch(token):
                filt.add_arch(token)
        except OSError as e:  # one this libseccomp does not know
            raise ProfileError(f"seccomp architecture {name} is not supported here: {e.strerror}") from e
    for rule in resolved.rules:
        action = _action(sc, rule.action, rule.errno_ret)
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default action; it changes nothing
        for name in rule.names:
            number = sc.resolve_syscall(sc.Arch.NATIVE, name)
            if number == _NR_UNKNOWN:
                continue
            for args in _conditions(sc, rule.args):
                try:
                    filt.add_rule(action, number, *args)
                except OSError as e:
                    raise ProfileError(f"adding seccomp rule for syscall {name} failed: {e.strerror}") from e
    flags = 0
    for flag in resolved.flags:
        flags |= FLAGS[flag]
    return SeccompProgram(_export(filt), flags)


def _action(sc: Any, action: str, errno_ret: int | None) -> int:
    """libseccomp's value for an action; ERRNO and TRACE default to EPERM, as in runc."""
    if action == "SCMP_ACT_ERRNO":
        return int(sc.ERRNO(errno.EPERM if errno_ret is None else errno_ret))
    if action == "SCMP_ACT_TRACE":
        return int(sc.TRACE(errno.EPERM if errno_ret is None else errno_ret))
    simple = {
        "SCMP_ACT_ALLOW": sc.ALLOW,
        "SCMP_ACT_KILL": sc.KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS,
        "SCMP_ACT_TRAP": sc.TRAP,
        "SCMP_ACT_LOG": sc.LOG,
    }
    return int(simple[action])


def _conditions(sc: Any, args: tuple[Arg, ...]) -> list[list[Any]]:
    """Argument comparisons as libseccomp rules, runc's way: all in one rule (and) when each compares
    another argument; one rule each (or) when an argument is compared more than once."""

    def cond(a: Arg) -> Any:
        return sc.Arg(a.index, OPERATORS.index(a.op) + 1, a.value, a.value_two)

    indexes = [a.index for a in args]
    if len(set(indexes)) == len(indexes):
        return [[cond(a) for a in args]]
    return [[cond(a)] for a in args]


def _export(filt: Any) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as f:
        filt.export_bpf(f)
        f.seek(0)
        return f.read()


class FilterCache:
    """Compiled filters by (profile digest, capabilities), the host being fixed for a daemon's life.

    Compiling the default profile takes some 10 to 30 ms; looking it up, microseconds. Thread-safe, so
    that misses can be compiled off the event loop."""

    def __init__(self, host: Host | None = None, size: int = 64) -> None:
        self.host = host or this_host()
        self.size = size
        self._entries: OrderedDict[tuple[str, frozenset[str]], SeccompProgram] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str, caps: Iterable[str]) -> tuple[str, frozenset[str]]:
        return hashlib.sha256(text.encode()).hexdigest(), frozenset(caps)

    def get(self, text: str, caps: Iterable[str]) -> SeccompProgram | None:
        """The cached filter, or None when it has not been built."""
        key = self._key(text, caps)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def build(self, text: str, caps: Iterable[str]) -> SeccompProgram:
        """Parse, resolve for these capabilities and compile (blocking: call it in a thread)."""
        caps = frozenset(caps)
        profile = parse_profile(text)
        if profile.disabled:
            compiled = NO_FILTER
        else:
            compiled = compile_filter(resolve(profile, caps, self.host), self.host)
        with self._lock:
            self._entries[self._key(text, caps)] = compiled
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return compiled
