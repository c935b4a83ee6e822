"""The shim launcher: `python -m daemon.runtime.launcher <socket>`, a warm process that forks shims.

Starting Python and importing the shim costs about 100 ms; forking this already-loaded, single-threaded
process costs a few. The daemon starts one launcher (never a fork of the daemon, which has threads) and
asks it for a shim per container: one line, the exec dir. The forked shim starts a session of its own
and answers the daemon on that same connection, exactly as it would on stdout when started directly.
Shims do not depend on the launcher: if it dies they are adopted by init and go on.
"""

import contextlib
import os
import signal
import socket
import sys

from daemon.runtime import linux, shim, sockpath

MAX_REQUEST = 4096


def _serve_one(conn: socket.socket, listener: socket.socket) -> None:
    """In the forked child: become the shim for the exec dir the daemon named."""
    listener.close()
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in any Python process: EPIPE instead of death
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
    sys.argv = [sys.argv[0], exec_dir]
    try:
        shim.main()
    except SystemExit as e:
        os._exit(e.code if isinstance(e.code, int) else 1)
    os._exit(0)


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
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:
            try:
                _serve_one(conn, listener)
            finally:
                os._exit(1)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
