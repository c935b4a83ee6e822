"""Non-blocking reading of a child's output and writing of its stdin, on the shim's event loop."""

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable

Sink = Callable[[int, bytes], None]
Frame = Callable[[int, bytes], bytes]
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


class Forwarder:
    """An exec's output to its one reader (the daemon's connection), with a pipe's manners.

    A reader that falls `backlog` bytes behind: reading the output pauses until it has caught up. A
    reader that is gone (its client left) or never was (a detached exec with a terminal): the output is
    not read any more, so the process blocks in write, as on a pipe nobody reads. Never a busy loop
    reading output that nobody wants."""

    def __init__(
        self, outputs: list[Output], writer: asyncio.StreamWriter, frame: Frame, backlog: int
    ) -> None:
        self.outputs, self.writer, self.frame, self.backlog = outputs, writer, frame, backlog
        self.unread: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # done: no reader
        self._held = False
        self._resumer: asyncio.Task[None] | None = None

    def sink(self, stream: int, data: bytes) -> None:
        if self.writer.transport.is_closing():  # the reader left (this chunk goes nowhere either)
            self.stop_reading()
            return
        self.writer.write(self.frame(stream, data))
        if self.writer.transport.get_write_buffer_size() > self.backlog and not self._held:
            self._hold()
            self._resumer = asyncio.ensure_future(self._resume_after_drain())

    def stop_reading(self) -> None:
        """For good: nobody will read this output."""
        if not self.unread.done():
            self.unread.set_result(None)
        self._hold()

    def _hold(self) -> None:
        self._held = True
        for out in self.outputs:
            out.pause()

    async def _resume_after_drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        if self.writer.transport.is_closing() or self.unread.done():
            self.stop_reading()
            return
        self._held = False
        for out in self.outputs:
            out.resume()

    async def finished(self) -> None:
        """Once every output reached its end, or nobody reads them any more (then the rest is dropped
        when the caller closes them)."""
        closed = [out.closed for out in self.outputs]
        while not all(f.done() for f in closed) and not self.unread.done():
            await asyncio.wait([*closed, self.unread], return_when=asyncio.FIRST_COMPLETED)
        if self._resumer is not None:
            self._resumer.cancel()
