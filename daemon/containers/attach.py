"""`docker attach` (and `docker run` without -d): one client's attach to a container, and the attaches
that wait for a container's start.

Prepared before the client's connection is taken over, so that a missing container or bad detach keys
are answered with an HTTP error; then run over the connection: the log replayed if asked, then the
container's streams copied both ways.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daemon.containers.logs import LogQuery, read_logs
from daemon.containers.splice import ClientConn, parse_detach_keys, splice
from daemon.containers.store import Container
from daemon.frames import frame
from daemon.runtime.interface import ContainerRuntime, RuntimeFailure, ShimStream

# the container's streams now, or once it starts; None when it has ended and takes no more input
ShimConnector = Callable[[], Awaitable[ShimStream | None]]


@dataclass(frozen=True)
class AttachOptions:
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    logs: bool = False  # replay the log first
    stream: bool = False  # then follow the live streams
    detach_keys: str | None = None  # Docker's "ctrl-p,ctrl-q" notation; None: the default keys


class Attachment:
    def __init__(self, c: Container, options: AttachOptions, connect: ShimConnector) -> None:
        self.tty = bool(c.config.get("Tty"))
        self._log_path = str(c.data["LogPath"])
        self._options = options
        self._connect = connect
        # like Docker, the detach keys only apply to a TTY: piped stdin is passed on byte for byte
        self._keys = parse_detach_keys(options.detach_keys) if options.stdin and self.tty else None

    async def run(self, conn: ClientConn) -> None:
        if self._options.logs:
            await self._replay_log(conn)
        if self._options.stream and not await self._follow(conn):
            return  # nothing more goes to this client
        await conn.drain()

    async def _replay_log(self, conn: ClientConn) -> None:
        query = LogQuery(stdout=self._options.stdout, stderr=self._options.stderr)
        async for entry in read_logs(self._log_path, query, lambda: False):
            conn.write(entry.data if self.tty else frame(entry.frame_stream, entry.data))

    async def _follow(self, conn: ClientConn) -> bool:
        """Copy the live streams; False when the client left, or the start failed, before they opened."""
        opening = asyncio.ensure_future(self._connect())
        # a client that hangs up before the container starts must not leave a waiting attach behind
        closed = asyncio.ensure_future(conn.wait_closed())
        done, _ = await asyncio.wait({opening, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if opening not in done:
            opening.cancel()
            return False
        try:
            shim = opening.result()
        except RuntimeFailure:  # the start failed: its own request reports why
            return False
        if shim is not None:
            await splice(shim, conn, self.tty, self._options.stdin, self._keys)
        return True


async def connect_pending(c: Container, runtime: ContainerRuntime) -> None:
    """The container's process exists (not yet started): give each waiting attach its stream.
    (Container.fail_pending_attaches is the other way these requests end.)"""
    pending, c.pending_attaches = c.pending_attaches, []
    cid = c.id
    for req in pending:
        if req.future.done():
            continue
        try:
            stream = await runtime.attach(cid, req.stdin, req.stdout, req.stderr)
        except RuntimeFailure as e:
            req.future.set_exception(e)
        else:
            req.future.set_result(stream)
