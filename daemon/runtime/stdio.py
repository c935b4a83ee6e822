"""Non-blocking reading of a child's output and writing of its stdin, on the shim's event loop."""

import asyncio
import errno
import os
from collections.abc import Callable

Sink = Callable[[int, bytes], None]
CHUNK = 65536


class Output:
    """Reads `fd` until EOF (or EIO, a pty whose other side is gone) and hands chunks to the sinks."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, stream: int, sinks: list[Sink], close_fd: bool = True
    ) -> None:
        self.loop, self.fd, self.stream, self.sinks, self.close_fd = loop, fd, stream, sinks, close_fd
        self.closed: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.close()
            return
        for sink in list(self.sinks):
            sink(self.stream, data)

    def pause(self) -> None:
        if not self.closed.done():
            self.loop.remove_reader(self.fd)

    def resume(self) -> None:
        if not self.closed.done():
            self.loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        if self.closed.done():
            return
        self.loop.remove_reader(self.fd)
        if self.close_fd:
            os.close(self.fd)
        self.closed.set_result(None)


class StdinSink:
    """Buffered writes to a child's stdin (a pipe or a pty master) that never block the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, close_fd: bool = True) -> None:
        self.loop, self.fd, self.close_fd = loop, fd, close_fd
        self.buffer = bytearray()
        self.once = False
        self.closing = False
        self.is_closed = False
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self.is_closed or self.closing:
            return
        had_backlog = bool(self.buffer)
        self.buffer += data
        if not had_backlog:
            self._flush()

    def _flush(self) -> None:
        try:
            while self.buffer:
                written = os.write(self.fd, self.buffer)
                del self.buffer[:written]
        except BlockingIOError:
            self.loop.add_writer(self.fd, self._writable)
            return
        except OSError:  # the reader is gone: drop what is left
            self.buffer.clear()
        if self.closing:
            self._really_close()

    def _writable(self) -> None:
        self.loop.remove_writer(self.fd)
        if self.is_closed:  # released meanwhile (its fd may be closed): drop the rest
            self.buffer.clear()
            return
        self._flush()

    def close(self) -> None:
        """Close once the backlog is written (the child then sees EOF)."""
        if self.is_closed:
            return
        self.closing = True
        if not self.buffer:
            self._really_close()

    def _really_close(self) -> None:
        self.is_closed = True
        if self.close_fd:
            os.close(self.fd)
