"""The API server's connections over a real unix socket: idle and header timeouts, the cap, bad requests.

Each test serves a small app through ApiServer (our accept loop and request handler) with short
timeouts, and talks raw HTTP to it. Times are only bounded from below (a timer cannot fire early)
or very loosely from above (a closed connection is seen within WAIT seconds).
"""

import asyncio
import contextlib
import errno
import json
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from daemon.api.connection import ConnectionLimits
from daemon.api.listener import Listener, RateLimitedLog
from daemon.api.server import ApiServer

WAIT = 15.0  # generous bound for something that should happen after a sub-second timeout
SHORT = 0.5
LONG = 60.0


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query["t"]))
    return web.Response(text="slow")


async def _upload(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await request.read())))


def small_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/fast", _fast)
    app.router.add_get("/slow", _slow)
    app.router.add_post("/upload", _upload)
    return app


async def _fast(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def listening_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(64)
    sock.setblocking(False)
    return sock


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """serve(header_timeout=, idle_timeout=, max_connections=) -> the socket path of a running server."""
    tmp = tempfile.mkdtemp(prefix="pyd-conn-")  # short: unix socket paths are limited to 108 bytes
    servers: list[ApiServer] = []

    async def start(
        header_timeout: float = LONG, idle_timeout: float = LONG, max_connections: int = 64
    ) -> str:
        path = str(Path(tmp) / f"s{len(servers)}.sock")
        limits = ConnectionLimits(header_timeout, idle_timeout, max_connections)
        server = ApiServer(small_app(), [listening_socket(path)], limits)
        await server.start()
        servers.append(server)
        return path

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def closed_within(reader: asyncio.StreamReader, timeout: float = WAIT) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not in time). A
    write of ours that met the closed socket first (EPIPE) is passed on to the reader: closed too."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except (BrokenPipeError, ConnectionResetError):
        return b""


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await asyncio.wait_for(reader.readexactly(length), WAIT)


def request(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: d\r\n{extra}\r\n".encode()


# --- timeouts ----------------------------------------------------------------------------------


async def test_an_idle_connection_is_closed_after_the_idle_timeout(serve: Serve) -> None:
    path = await serve(idle_timeout=SHORT)
    reader, writer = await asyncio.open_unix_connection(path)
    started = time.monotonic()
    assert await closed_within(reader) == b""
    assert time.monotonic() - started >= SHORT * 0.9
    writer.close()


async def test_a_half_sent_request_is_closed_after_the_header_timeout(serve: Serve) -> None:
    # the idle limit is long: only the header timer can close this one
    path = await serve(header_timeout=SHORT, idle_timeout=LONG)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"GET /fast HTTP/1.1\r\nHost: d\r\n")
    started = time.monotonic()
    assert await closed_within(reader) == b""
    assert time.monotonic() - started >= SHORT * 0.9
    writer.close()


async def test_headers_trickled_byte_by_byte_are_cut_by_the_header_timeout(serve: Serve) -> None:
    path = await serve(header_timeout=SHORT, idle_timeout=LONG)
    reader, writer = await asyncio.open_unix_connection(path)
    endless = b"GET /fast HTTP/1.1\r\n" + b"X-A: " + b"a" * 10_000
    closed = asyncio.ensure_future(closed_within(reader))
    for byte in endless:  # one byte every 20 ms: far more than the timeout in all
        if closed.done() or writer.is_closing():
            break
        with contextlib.suppress(ConnectionError):
            writer.write(bytes([byte]))
            await writer.drain()
        await asyncio.sleep(0.02)
    assert await closed == b""
    writer.close()


async def test_a_slow_answer_is_not_cut_by_either_timeout(serve: Serve) -> None:
    path = await serve(header_timeout=0.2, idle_timeout=0.2)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(request("/slow?t=1.0"))
    assert await response(reader) == (200, b"slow")
    writer.close()


async def test_a_slow_upload_is_not_cut_by_either_timeout(serve: Serve) -> None:
    path = await serve(header_timeout=0.2, idle_timeout=0.2)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(request("/upload", "POST", "Content-Length: 10\r\n"))
    for _ in range(10):  # the body over a second: five times both timeouts
        await asyncio.sleep(0.1)
        writer.write(b"x")
    assert await response(reader) == (200, b"10")
    writer.close()


async def test_a_keep_alive_connection_serves_again_then_idles_out(serve: Serve) -> None:
    path = await serve(header_timeout=LONG, idle_timeout=1.0)
    reader, writer = await asyncio.open_unix_connection(path)
    for _ in range(3):
        writer.write(request("/fast"))
        assert await response(reader) == (200, b"ok")
        await asyncio.sleep(0.2)  # well inside the idle limit
    started = time.monotonic()
    assert await closed_within(reader) == b""
    assert time.monotonic() - started >= 1.0 * 0.9 - 0.2
    writer.close()


async def test_the_header_timer_restarts_for_each_request(serve: Serve) -> None:
    # two requests whose headers each take 0.6 s, against a 1 s header limit: 1.2 s in all
    path = await serve(header_timeout=1.0, idle_timeout=LONG)
    reader, writer = await asyncio.open_unix_connection(path)
    for _ in range(2):
        writer.write(b"GET /fast HTTP/1.1\r\n")
        await asyncio.sleep(0.6)
        writer.write(b"Host: d\r\n\r\n")
        assert await response(reader) == (200, b"ok")
    writer.close()


# --- the connection cap ------------------------------------------------------------------------


async def test_connections_over_the_cap_wait_and_are_served_once_one_closes(serve: Serve) -> None:
    path = await serve(max_connections=2)
    held = [await asyncio.open_unix_connection(path) for _ in range(2)]
    for reader, writer in held:  # both accepted and served
        writer.write(request("/fast"))
        assert await response(reader) == (200, b"ok")
    reader, writer = await asyncio.open_unix_connection(path)  # the kernel queues it
    writer.write(request("/fast"))
    await writer.drain()
    with pytest.raises(TimeoutError):  # not accepted, so not answered
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1.0)
    held[0][1].close()
    assert await response(reader) == (200, b"ok")
    writer.close()
    held[1][1].close()


# --- malformed requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"G\x00T / HTTP/1.1\r\n\r\n", "bad request: invalid method"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", "bad request: request line or header too long"),
        (
            b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            "bad request: request line or header too long",
        ),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", "bad request: malformed request line or headers"),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "bad request: malformed request line or headers"),
    ],
    ids=["method", "long-line", "long-header", "header", "length"],
)
async def test_malformed_requests_get_a_json_400_and_no_traceback(
    serve: Serve, caplog: pytest.LogCaptureFixture, raw: bytes, words: str
) -> None:
    path = await serve()
    reader, writer = await asyncio.open_unix_connection(path)
    with caplog.at_level(logging.INFO):
        writer.write(raw)
        data = await closed_within(reader)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 ")), data[:200]
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert json.loads(body) == {"message": words}
    assert not [r for r in caplog.records if r.levelno >= logging.INFO], caplog.text
    writer.close()


# --- accept errors -----------------------------------------------------------------------------


class FailingSocket(socket.socket):
    """A listening socket whose accept() fails with EMFILE while `failing` is set."""

    failing = True

    def accept(self) -> tuple[socket.socket, object]:
        if self.failing:
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_accept_errors_pause_accepting_and_log_once_then_it_serves_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tmp = tempfile.mkdtemp(prefix="pyd-conn-")
    path = str(Path(tmp) / "s.sock")
    sock = FailingSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(64)
    sock.setblocking(False)
    served: list[bytes] = []

    class Echo(asyncio.Protocol):
        def __init__(self, on_close: Callable[[], None]) -> None:
            self.on_close = on_close

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(b"hello")
            served.append(b"hello")

        def connection_lost(self, exc: Exception | None) -> None:
            self.on_close()

    listener = Listener([sock], Echo, 8, retry_delay=0.01, log_interval=LONG)
    try:
        with caplog.at_level(logging.WARNING, logger="daemon.api.listener"):
            listener.start()
            waiting = [socket.socket(socket.AF_UNIX) for _ in range(3)]
            for client in waiting:
                client.connect(path)  # readable listener, failing accept: a hundred retries a second
            await asyncio.sleep(1.0)
            warnings = [r for r in caplog.records if r.name == "daemon.api.listener"]
            assert len(warnings) == 1, caplog.text
            assert "Too many open files" in warnings[0].getMessage()
            assert served == []
            FailingSocket.failing = False  # the flood is over: the waiting clients get served
            loop = asyncio.get_running_loop()
            for client in waiting:
                client.setblocking(False)
                assert await asyncio.wait_for(loop.sock_recv(client, 5), WAIT) == b"hello"
                client.close()
    finally:
        FailingSocket.failing = True
        listener.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_rate_limited_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("t"), 60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        for second in range(125):  # one a second for two minutes
            now[0] = float(second)
            limited.warning("accept() failed: %s", "EMFILE")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "accept() failed: EMFILE",
        "accept() failed: EMFILE (and 59 more like it in the last 60s)",
        "accept() failed: EMFILE (and 59 more like it in the last 60s)",
    ]
