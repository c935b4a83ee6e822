"""The shim launcher: `python -m daemon.runtime.launcher <socket>`, a warm process that forks shims.

Starting Python and importing the shim costs about 100 ms; forking this already-loaded, single-threaded
process costs a few, and the launcher pays even those ahead of time: it keeps one spare child, forked,
in its own session, with an event loop and a cgroup manager ready, waiting in accept(). The daemon (never
forking itself: it has threads) connects and sends one line, the exec dir; the spare that takes the
connection becomes that container's shim and answers on it, exactly as a shim started directly answers
on stdout, and the launcher forks the next spare. Shims do not depend on the launcher: if it dies they
are adopted by init and go on; only a spare that took no request yet dies with it.
"""

import asyncio
import contextlib
import os
import select
import signal
import socket
import sys
from pathlib import Path

from daemon.runtime import linux, shim, sockpath
from daemon.runtime.cgroups import detect

MAX_REQUEST = 4096
SPARE_NAME = "pydockerd-spare"  # /proc/<pid>/comm of an idle spare; a shim's is "pydockerd-shim"
SHIM_NAME = "pydockerd-shim"
SPARE_CHECK_INTERVAL = 1.0  # seconds between checks that the spare is still there


def _spare(listener: socket.socket, taken_w: int, launcher: int) -> None:
    """In a forked child: get ready, wait for a request, tell the launcher, become that shim."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # an idle spare goes with the launcher
    if os.getppid() != launcher:
        return
    linux.set_process_name(SPARE_NAME)
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in any Python process: EPIPE instead of death
    loop = asyncio.new_event_loop()
    cgroups = detect()
    conn, _ = listener.accept()
    linux.prctl(linux.PR_SET_PDEATHSIG, 0)  # from here on we are a shim: we outlive the launcher
    linux.set_process_name(SHIM_NAME)
    listener.close()
    os.write(taken_w, b"x")
    os.close(taken_w)
    request = conn.recv(MAX_REQUEST).decode().strip()
    exec_dir = request.splitlines()[0] if request else ""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(conn.fileno(), 1)  # the shim's one-line report goes to the daemon
    log_fd = os.open(os.path.join(exec_dir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 2)
    for fd in (devnull, log_fd):
        os.close(fd)
    conn.close()
    try:
        shim.main(Path(exec_dir), loop, cgroups)
    except SystemExit as e:
        os._exit(e.code if isinstance(e.code, int) else 1)


def _fork_spare(listener: socket.socket, taken_w: int) -> int:
    launcher = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            _spare(listener, taken_w, launcher)
        finally:
            os._exit(1)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def serve(path: str) -> None:
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGTERM)  # the launcher goes with the daemon; shims stay
    if os.getppid() == 1:
        return  # the daemon died before we set that
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # shims exit on their own: let the kernel reap them
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with sockpath.usable(path) as usable_path:
        listener.bind(usable_path)
    os.chmod(path, 0o600)
    listener.listen(128)
    taken_r, taken_w = os.pipe()
    spare = _fork_spare(listener, taken_w)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([taken_r], [], [], SPARE_CHECK_INTERVAL)
        if readable:
            os.read(taken_r, 64)
            spare = _fork_spare(listener, taken_w)
        elif not _alive(spare):  # a spare that died before any request: never leave requests unanswered
            spare = _fork_spare(listener, taken_w)


if __name__ == "__main__":
    serve(sys.argv[1])
