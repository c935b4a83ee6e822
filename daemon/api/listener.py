"""Accepting connections ourselves: a cap on open connections, and accept errors that cannot flood the log.

asyncio's own accept loop (loop.create_server) has neither. At the file-descriptor limit Python 3.11
logs a traceback for every failed accept(), and keeps calling accept() in the same tick after the
first EMFILE, scheduling a retry for each: megabytes of log per second while the flood lasts.

Here, at `max_connections` open connections we stop watching the listening sockets: new clients
wait in the kernel's listen backlog, unaccepted, and are taken as soon as a connection closes.
When accept() runs out of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) we stop for ACCEPT_RETRY
seconds (after any other accept() error too: none may spin), and say so at most once a minute, with
a count of what was left unsaid.
"""

import asyncio
import logging
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ACCEPT_BATCH = 64  # accepts per readiness event: one busy listener cannot hold the loop
ACCEPT_RETRY = 1.0  # seconds without accepting after accept() ran out of resources
LOG_INTERVAL = 60.0  # seconds between two log lines of one kind

# builds the protocol of one accepted connection; it must call the given function once it is gone
ProtocolFactory = Callable[[Callable[[], None]], asyncio.Protocol]


class RateLimitedLog:
    """A warning at most once per `interval`; the next one says how many were held back."""

    def __init__(
        self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._next = 0.0
        self._held_back = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._held_back += 1
            return
        if self._held_back:
            message += f" (and {self._held_back} more like it in the last {self._interval:.0f}s)"
        self._logger.warning(message, *args)
        self._next = now + self._interval
        self._held_back = 0


class _Slot:
    """One open connection's place under the cap, given back exactly once."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def free(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class Listener:
    def __init__(
        self,
        socks: list[socket.socket],
        protocol_factory: ProtocolFactory,
        max_connections: int,
        *,
        retry_delay: float = ACCEPT_RETRY,
        log_interval: float = LOG_INTERVAL,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._socks = socks
        self._factory = protocol_factory
        self._max = max_connections
        self._retry_delay = retry_delay
        self._loop = asyncio.get_running_loop()
        self._open = 0
        self._running = False
        self._watching = False
        self._retry: asyncio.TimerHandle | None = None
        self._starting: set[asyncio.Task[None]] = set()
        self._accept_errors = RateLimitedLog(log, log_interval)
        self._at_cap = RateLimitedLog(log, log_interval)

    def start(self) -> None:
        self._running = True
        self._update()

    def stop(self) -> None:
        """Stop accepting and close the listening sockets; open connections are the runner's to end."""
        self._running = False
        self._update()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for task in self._starting:
            task.cancel()
        for sock in self._socks:
            sock.close()

    def _update(self) -> None:
        """Watch the listening sockets exactly when a new connection may be accepted."""
        want = self._running and self._retry is None and self._open < self._max
        if want == self._watching:
            return
        for sock in self._socks:
            if want:
                self._loop.add_reader(sock.fileno(), self._accept, sock)
            else:
                self._loop.remove_reader(sock.fileno())
        self._watching = want

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._open >= self._max:
                self._at_cap.warning(
                    "%d connections open, the maximum: new ones wait until one closes", self._open
                )
                break
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:
                self._accept_errors.warning(
                    "accept() failed: %s; %d connections open; pausing for %ss",
                    e.strerror or e,
                    self._open,
                    self._retry_delay,
                )
                self._pause()  # an error that repeats (EMFILE, ENFILE, ENOBUFS, ENOMEM) must not spin
                return
            self._open += 1
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        self._update()

    def _pause(self) -> None:
        if self._retry is None:
            self._retry = self._loop.call_later(self._retry_delay, self._resume)
        self._update()

    def _resume(self) -> None:
        self._retry = None
        self._update()

    async def _connect(self, conn: socket.socket) -> None:
        slot = _Slot(self._release)
        try:
            await self._loop.connect_accepted_socket(lambda: self._factory(slot.free), conn)
        except asyncio.CancelledError:
            slot.free()
            conn.close()
            raise
        except Exception as e:  # out of memory or descriptors while setting it up: drop this one
            slot.free()
            conn.close()
            self._accept_errors.warning("could not set up an accepted connection: %s", e)

    def _release(self) -> None:
        self._open -= 1
        self._update()
