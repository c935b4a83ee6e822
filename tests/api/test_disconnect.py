"""Clients that leave, over real HTTP connections on a unix socket, served as the daemon serves them
(aiohttp's handler_cancellation off; its TestServer turns it on): a request waiting in a container's
queue leaves it and never runs, work that has begun runs to its end, a wait is dropped, nothing is
logged."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from daemon.api.app import error_middleware
from daemon.api.disconnect import unless_client_leaves
from daemon.containers.locking import Held, when_free

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Serves one handler on POST /work at a unix socket; returns the socket's path."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application(middlewares=[error_middleware])
        app.router.add_post("/work", handler)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        path = str(tmp_path / f"s{len(runners)}.sock")
        await web.UnixSite(runner, path).start()
        runners.append(runner)
        return path

    yield start
    for runner in runners:
        await runner.cleanup()


async def send(server: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(server)
    writer.write(b"POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    return reader, writer


async def until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 20)


async def test_a_request_whose_client_left_the_queue_never_runs(serve: Any) -> None:
    lock, tasks, ran = asyncio.Lock(), set[asyncio.Task[Any]](), []
    queued, over = asyncio.Event(), asyncio.Event()

    async def work(held: Held) -> None:
        ran.append("the work")

    async def handler(request: web.Request) -> web.Response:
        try:
            queued.set()
            await unless_client_leaves(request, when_free(lock, work, tasks))
            return web.Response(status=204)
        finally:
            over.set()

    await lock.acquire()  # someone else's long work on this container
    server = await serve(handler)
    _reader, writer = await send(server)
    await until(queued)
    writer.close()  # the client gives up while its request waits
    await until(over)
    lock.release()
    await asyncio.sleep(0.1)
    assert ran == []
    assert not lock.locked()


async def test_work_that_has_begun_runs_to_its_end(serve: Any) -> None:
    lock, tasks, ran = asyncio.Lock(), set[asyncio.Task[Any]](), []
    started, proceed, over, finished = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def work(held: Held) -> None:
        started.set()
        await proceed.wait()  # half-way through a start, say
        ran.append("the whole work")
        finished.set()

    async def handler(request: web.Request) -> web.Response:
        try:
            await unless_client_leaves(request, when_free(lock, work, tasks))
            return web.Response(status=204)
        finally:
            over.set()

    server = await serve(handler)
    _reader, writer = await send(server)
    await until(started)
    writer.close()
    await until(over)  # the request is dropped...
    assert lock.locked()  # ...but its work goes on, holding the lock
    proceed.set()
    await until(finished)
    await asyncio.sleep(0)
    assert ran == ["the whole work"]
    assert not lock.locked()
    assert not tasks


async def test_a_wait_is_dropped_when_its_client_leaves(serve: Any) -> None:
    waiting, over = asyncio.Event(), asyncio.Event()
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        try:
            waiting.set()
            await unless_client_leaves(request, fut)
            await resp.write(b"never")
            return resp
        finally:
            over.set()

    server = await serve(handler)
    reader, writer = await send(server)
    await until(waiting)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
    await until(over)
    assert fut.cancelled()  # nothing left waiting for the container


async def test_a_write_to_a_client_that_left_logs_nothing(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gone, over = asyncio.Event(), asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        try:
            await gone.wait()
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)
            await resp.write(b"the container's exit code, too late")
            return resp
        finally:
            over.set()

    server = await serve(handler)
    reader, writer = await send(server)
    await reader.readline()
    writer.close()
    gone.set()
    await until(over)
    await asyncio.sleep(0.1)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("the client went away" in r.getMessage() for r in caplog.records)
