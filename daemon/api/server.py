"""Serving the API app on listening sockets: aiohttp's runner, our accept loop, guarded connections."""

import asyncio
import logging
import resource
import socket
from collections.abc import Callable

from aiohttp import web

from daemon.api.connection import ConnectionLimits, GuardedRequestHandler
from daemon.api.listener import Listener

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 1.0  # seconds open requests get to finish when the daemon stops
UNLIMITED_FILES = 1 << 20  # what an unlimited soft limit counts as (Linux's default fs.nr_open)


def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (never past it; Go does the same for dockerd): each
    connection costs a descriptor. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:  # a container or a security module may forbid it
            log.warning("could not raise the open file limit from %d to %d: %s", soft, hard, e)
    return UNLIMITED_FILES if soft == resource.RLIM_INFINITY else soft


def default_max_connections(open_file_limit: int) -> int:
    """Half the descriptors: an attached or following connection holds a second one (the shim's
    socket, the log file), and the daemon needs some for its own files."""
    return max(16, open_file_limit // 2)


class ApiServer:
    def __init__(self, app: web.Application, socks: list[socket.socket], limits: ConnectionLimits) -> None:
        self._app = app
        self._socks = socks
        self._limits = limits
        self._runner: web.AppRunner | None = None
        self._listener: Listener | None = None

    async def start(self) -> None:
        runner = web.AppRunner(
            self._app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        self._runner = runner
        self._listener = Listener(self._socks, self._protocol_factory(runner), self._limits.max_connections)
        self._listener.start()

    def _protocol_factory(self, runner: web.AppRunner) -> Callable[[Callable[[], None]], asyncio.Protocol]:
        manager = runner.server
        assert manager is not None
        loop = asyncio.get_running_loop()
        limits = self._limits

        def make(on_close: Callable[[], None]) -> asyncio.Protocol:
            return GuardedRequestHandler(
                manager, loop=loop, limits=limits, on_close=on_close, access_log=None
            )

        return make

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if self._runner is not None:
            await self._runner.cleanup()
