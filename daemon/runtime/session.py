"""One process the shim forked (the container's first process or an exec) and its stdio."""

import asyncio
import os
import socket
from typing import Any

from daemon.runtime.process import recv_msg, send_msg
from daemon.runtime.stdio import Output, StdinSink


class ChildFailed(Exception):
    """The child reported an error during set-up or at execve; str() is its message."""


# (the child's stdin/stdout/stderr, the fds the child keeps, the fds the shim keeps: stdin-w, out-r, err-r)
Stdio = tuple[tuple[int, int, int], list[int], list[int]]


def stdio_pipes(tty: bool, open_stdin: bool) -> Stdio:
    """Pipes for a child's stdio; with a TTY none (the child makes its pty and sends the master)."""
    if tty:
        return (0, 1, 2), [], []
    if open_stdin:
        stdin_r, stdin_w = os.pipe()
    else:
        stdin_r, stdin_w = os.open(os.devnull, os.O_RDONLY), -1
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return (stdin_r, out_w, err_w), [stdin_r, out_w, err_w], [stdin_w, out_r, err_r]


def null_stdio() -> Stdio:
    """/dev/null for stdin, stdout and stderr (a detached exec)."""
    null_in = os.open(os.devnull, os.O_RDONLY)
    null_out = os.open(os.devnull, os.O_WRONLY)
    return (null_in, null_out, null_out), [null_in, null_out], []


def exit_code_of(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Session:
    """One forked child (the container's first process or an exec) with its stdio."""

    def __init__(self, pid: int, sync: socket.socket, tty: bool) -> None:
        self.pid = pid
        self.sync = sync
        self.tty = tty
        self.pty_master: int | None = None
        self.outputs: list[Output] = []
        self.stdin: StdinSink | None = None
        self.exited = asyncio.get_running_loop().create_future()

    async def handshake(self) -> None:
        """Wait for the child's "ready" (taking its pty master on the way), or raise with its error."""
        while True:
            msg, fds = await _recv(self.sync)
            if msg is None:
                raise RuntimeError("the container process exited during setup")
            if "error" in msg:
                raise ChildFailed(str(msg["error"]))
            if msg.get("pty") and fds:
                self.pty_master = fds[0]
            if msg.get("ready"):
                return

    def release(self) -> None:
        """Close what the shim holds for this session once it is over (a pty master: output and stdin)."""
        for out in self.outputs:
            out.close()
        if self.stdin is not None:
            self.stdin.is_closed = True
        if self.pty_master is not None:
            os.close(self.pty_master)
            self.pty_master = None

    async def go(self) -> None:
        """Release the child to execve; EOF on the sync socket means execve succeeded (it is CLOEXEC)."""
        send_msg(self.sync, {"op": "go"})
        msg, _ = await _recv(self.sync)
        self.sync.close()
        if msg is not None and "error" in msg:
            raise ChildFailed(str(msg["error"]))


async def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(sock.fileno(), readable)
    try:
        await fut
    finally:
        loop.remove_reader(sock.fileno())
    return recv_msg(sock)
