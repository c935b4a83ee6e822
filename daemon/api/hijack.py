"""Taking over an HTTP connection after `101 UPGRADED`, as Docker does for attach and exec start.

aiohttp only knows websocket upgrades, so after sending the 101 we swap in our own asyncio.Protocol on
the transport: its data is the client's stdin, its half-close is stdin EOF.
"""

import asyncio
import contextlib
import fcntl
import select
import struct
import termios
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web

from daemon.api.common import api_version
from daemon.containers.splice import ClientConn

PEER_CHECK_INTERVAL = 1.0  # seconds between looks for a vanished client
HEAD_READ_WAIT = 1.0  # seconds the stream waits for the client to read the 101 before it goes on anyway
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def _unread(transport: asyncio.BaseTransport) -> int:
    """Bytes we sent that the client has not read yet (SIOCOUTQ: a unix socket's send queue)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])
    except OSError:
        return 0


async def until_head_read(transport: asyncio.BaseTransport) -> None:
    """Until the client has read the 101 and its headers (bounded). docker-py reads the head through a
    buffered reader and then the raw socket: what came with the head is lost to it. Docker starts an
    exec's process only after the upgrade, so its output comes later; ours may be waiting already."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HEAD_READ_WAIT
    delay = 0.0005
    while _unread(transport) and loop.time() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


def _peer_closed(transport: asyncio.BaseTransport) -> bool:
    """After EOF: did the client close its socket (POLLHUP on a unix socket), or only its writing
    side (stdin ended, output still wanted)? A dead client is otherwise only noticed at a write."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLHUP)
    return any(event & select.POLLHUP for _fd, event in poller.poll(0))


class ClientSession(Protocol):
    """What runs over a hijacked connection (an attach, an exec): its framing and its copying."""

    @property
    def tty(self) -> bool:
        """Raw bytes when True; Docker's multiplexed frames when False."""

    async def run(self, conn: ClientConn) -> None: ...


class HijackedProtocol(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport, previous: asyncio.BaseProtocol) -> None:
        self.transport = transport
        self.previous = previous
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def eof_received(self) -> bool:
        self.queue.put_nowait(b"")
        if _peer_closed(self.transport):
            self.closed.set()  # not a half-close: the client is gone, stop streaming to it
        return True  # keep our write side open for the rest of the output

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(b"")
        self.closed.set()
        self._wake()
        self.previous.connection_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_result(None)
        self._drain_waiters.clear()


class HijackedConn:
    """The ClientConn of daemon.containers.splice over a hijacked transport."""

    def __init__(self, protocol: HijackedProtocol, leftover: bytes, response: web.StreamResponse) -> None:
        self.response = response
        self.protocol = protocol
        self.transport = protocol.transport
        if leftover:
            protocol.queue.put_nowait(leftover)
        self._eof = False

    async def read(self) -> bytes:
        if self._eof:
            return b""
        data = await self.protocol.queue.get()
        if not data:
            self._eof = True
        return data

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self.protocol._paused and not self.transport.is_closing():
            fut = asyncio.get_running_loop().create_future()
            self.protocol._drain_waiters.append(fut)
            await fut

    async def wait_closed(self) -> None:
        # After a half-close (the docker CLI shuts its side at once when it sends no stdin) the
        # transport reads no more, so a client that dies later is only seen by looking.
        while not self.protocol.closed.is_set():
            if _peer_closed(self.transport):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.protocol.closed.wait(), PEER_CHECK_INTERVAL)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()


@contextlib.asynccontextmanager
async def hijack(request: web.Request, multiplexed: bool) -> AsyncIterator[HijackedConn]:
    """Answer 101 (or 200 without an Upgrade header), then hand the raw connection to the caller."""
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    content_type = MULTIPLEXED_STREAM if multiplexed and api_version(request) >= (1, 42) else RAW_STREAM
    if upgrade:
        resp = web.StreamResponse(status=101, reason="UPGRADED")
        resp.headers["Connection"] = "Upgrade"
        resp.headers["Upgrade"] = "tcp"
    else:
        resp = web.StreamResponse(status=200)
        resp.force_close()
    resp.headers["Content-Type"] = content_type
    await resp.prepare(request)
    transport = request.transport
    assert transport is not None
    leftover = b""
    protocol = request.protocol
    # bytes the client sent right after its request are still in aiohttp's payload parser
    with contextlib.suppress(Exception):
        leftover = request.content.read_nowait()
    ours = HijackedProtocol(transport, protocol)
    transport.set_protocol(ours)
    if transport.is_reading() is False:
        transport.resume_reading()
    conn = HijackedConn(ours, leftover, resp)
    await until_head_read(transport)
    try:
        yield conn
    finally:
        conn.close()


async def serve_hijacked(request: web.Request, session: ClientSession) -> web.StreamResponse:
    async with hijack(request, multiplexed=not session.tty) as conn:
        await session.run(conn)
    return conn.response
