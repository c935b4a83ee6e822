"""The last steps before execve, shared by a container's first process and by exec'd processes.

These run in a freshly forked child of the shim, as root, inside the container's namespaces.
"""

import array
import contextlib
import errno
import json
import os
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from daemon.runtime import caps, linux
from daemon.runtime.spec import DEFAULT_PATH, ProcessSpec, Rlimit, SeccompProgram
from daemon.runtime.users import ExecUser, find_executable, resolve_user

NOFILE_WANTED = 1048576  # what Docker gives containers; never above the host's hard limit
KEY_POS_SEARCH = 0x08000000
KEY_USR_SEARCH = 0x00080000


@dataclass
class Prepared:
    path: str
    args: list[str]
    env: list[str]
    user: ExecUser


class StartError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def send_msg(sock: socket.socket, msg: dict[str, object], fds: list[int] | None = None) -> None:
    data = json.dumps(msg).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(data)


def recv_msg(sock: socket.socket) -> tuple[dict[str, object] | None, list[int]]:
    """One message from a SOCK_SEQPACKET socket; (None, []) at EOF."""
    fds = array.array("i")
    try:
        data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
    except ConnectionResetError:
        # the child exited without reading what we sent it: the kernel reports that once, and
        # what the child sent before exiting (its error) is still queued behind it
        data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    for fd in fds:  # never let one process's pty master leak into the next exec'd process
        os.set_inheritable(fd, False)
    if not data:
        return None, list(fds)
    return json.loads(data), list(fds)


def build_env(proc: ProcessSpec, user: ExecUser, hostname: str) -> list[str]:
    env = list(proc.env)
    keys = {e.split("=", 1)[0] for e in env}
    if "PATH" not in keys:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if hostname and "HOSTNAME" not in keys:
        env.append(f"HOSTNAME={hostname}")
    if proc.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={user.home}")
    return env


def prepare(proc: ProcessSpec, hostname: str) -> Prepared:
    """Resolve user and executable inside the container; errors carry Docker's 126/127 words."""
    try:
        user = resolve_user(proc.user)
    except ValueError as e:
        raise StartError(str(e), 126) from e
    env = build_env(proc, user, hostname)
    if not proc.args:
        raise StartError("no command specified", 125)
    try:
        path = find_executable(proc.args[0], env)
    except FileNotFoundError as e:
        raise StartError(str(e), 127) from e
    except PermissionError as e:
        raise StartError(str(e), 126) from e
    return Prepared(path=path, args=proc.args, env=env, user=user)


def setup_terminal(sync: socket.socket, rows_cols: tuple[int, int] | None) -> None:
    """Open a pty in the container's devpts, hand the master to the shim, make the slave our stdio."""
    master, slave = linux.open_pty_pair("/dev/pts/ptmx")
    if rows_cols:
        linux.set_winsize(master, *rows_cols)
    send_msg(sync, {"pty": True}, [master])
    os.close(master)
    linux.make_controlling_tty(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def set_rlimits(limits: list[Rlimit]) -> None:
    """The user's ulimits, while we are still root: raising a hard limit takes CAP_SYS_RESOURCE.

    Without a nofile ulimit, NOFILE_WANTED, never above the host's hard limit; with one, exactly what
    was asked, even above it (the kernel's fs.nr_open is the ceiling: a start beyond it fails).
    """
    if not any(lim.type == "nofile" for lim in limits):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    for lim in limits:
        number = getattr(resource, f"RLIMIT_{lim.type.upper()}")
        soft = resource.RLIM_INFINITY if lim.soft == -1 else lim.soft
        hard = resource.RLIM_INFINITY if lim.hard == -1 else lim.hard
        try:
            resource.setrlimit(number, (soft, hard))
        except (ValueError, OSError) as e:
            # Python turns EPERM and EINVAL into ValueErrors; say what the kernel said, as runc does
            reason = "operation not permitted" if "not allowed" in str(e) else "invalid argument"
            raise StartError(f"error setting rlimit type {lim.type}: {reason}", 128) from e


def join_session_keyring(container_id: str, first: bool) -> None:
    """Leave the daemon's session keyring for the container's own, as runc does: "_ses.<id>", made
    by the first process (searchable, so that execs find it by name) and joined by execs. Keyrings are
    not namespaced: without this, container root would possess the keys of whoever started us."""
    try:
        serial = linux.join_session_keyring(f"_ses.{container_id}")
        if first:
            linux.add_key_permissions(serial, KEY_POS_SEARCH | KEY_USR_SEARCH)
    except OSError as e:
        if e.errno == errno.ENOSYS:  # a kernel without keyrings: nothing to leave
            return
        raise StartError(f"unable to join session keyring: {e.strerror}", 125) from e


def _load_seccomp(seccomp: SeccompProgram) -> None:
    try:
        linux.seccomp_set_filter(seccomp.program, seccomp.flags)
    except OSError as e:
        raise StartError(f"error loading seccomp filter into kernel: {e.strerror}", 125) from e


def finalize_and_exec(
    prep: Prepared, proc: ProcessSpec, cwd: str, seccomp: SeccompProgram | None = None
) -> NoReturn:
    """Limits, privileges, the seccomp filter, then execve. Only returns by raising StartError.

    The filter goes on in runc's order: with no-new-privileges, last, right before execve, so that as
    few syscalls as possible run under it; without, before the capabilities are dropped, because
    loading a filter then takes CAP_SYS_ADMIN (the filter must allow what follows: prctl, capset,
    setgroups, setuid, chdir, rt_sigaction, execve)."""
    set_rlimits(proc.rlimits)
    if proc.no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    elif seccomp is not None:
        _load_seccomp(seccomp)
    keep = caps.mask(proc.caps)
    if not proc.privileged:
        for number in range(caps.last_cap() + 1):
            if not keep & (1 << number):
                linux.prctl(linux.PR_CAPBSET_DROP, number)
    user = prep.user
    os.setgroups(user.groups)
    os.setgid(user.gid)
    os.setuid(user.uid)
    if user.uid == 0 and not proc.privileged:
        linux.capset(keep, keep, 0)
    try:
        os.chdir(cwd or "/")
    except OSError as e:
        raise StartError(f'chdir to cwd ("{cwd}") set in config.json failed: {e.strerror}', 126) from e
    # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: give the program defaults
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if proc.no_new_privs and seccomp is not None:
        _load_seccomp(seccomp)
    try:
        os.execve(prep.path, prep.args, dict(e.partition("=")[::2] for e in prep.env))
    except OSError as e:
        code = 127 if e.errno == 2 else 126
        raise StartError(f'exec: "{prep.args[0]}": {e.strerror.lower() if e.strerror else e}', code) from e


def child_main(body: Callable[[socket.socket], None], sync: socket.socket) -> NoReturn:
    """Run `body` in a forked child; report a failure to the shim and exit with its code."""
    code = 125
    try:
        body(sync)
    except StartError as e:
        code = e.exit_code
        _report(sync, str(e))
    except BaseException as e:  # anything else is a daemon-side failure: exit 125
        _report(sync, f"{e.__class__.__name__}: {e}")
    os._exit(code)


def _report(sync: socket.socket, message: str) -> None:
    with contextlib.suppress(OSError):
        send_msg(sync, {"error": message})
