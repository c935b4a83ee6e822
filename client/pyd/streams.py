"""Byte plumbing for attached containers: demultiplexing, stdin copying, raw terminals."""

from __future__ import annotations

import os
import struct
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

STDIN, STDOUT, STDERR, SYSERR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxL")  # [stream, 0, 0, 0, size big-endian uint32]

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
# moby/term's names for control characters: ctrl-@ = 0, ctrl-a = 1 ... ctrl-_ = 31.
_CTRL_NAMES = [f"ctrl-{chr(code).lower()}" for code in range(ord("@"), ord("_") + 1)]


class Demuxer:
    """Splits Docker's multiplexed stream (used when the container has no TTY) into frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            stream, size = HEADER.unpack_from(self._buf)
            end = HEADER.size + size
            if len(self._buf) < end:
                break
            frames.append((stream, bytes(self._buf[HEADER.size : end])))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


def frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame (the inverse of Demuxer; handy for tests and fakes)."""
    return HEADER.pack(stream, len(payload)) + payload


def _write(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)
    stream.flush()


def copy_output(read: Callable[[int], bytes], tty: bool, out: BinaryIO, err: BinaryIO) -> None:
    """Copy a container's output until EOF: raw with a TTY, demultiplexed without."""
    demux = None if tty else Demuxer()
    try:
        while data := read(65536):
            if demux is None:
                _write(out, data)
                continue
            for stream, payload in demux.feed(data):
                if stream == SYSERR:
                    _write(err, b"error from daemon in stream: " + payload + b"\n")
                else:
                    _write(err if stream == STDERR else out, payload)
    except BrokenPipeError:
        pass  # our reader went away (`pyd logs x | head`): stop quietly


def parse_detach_keys(spec: str) -> bytes:
    """`ctrl-p,ctrl-q` -> b"\\x10\\x11" (moby/term ToBytes)."""
    codes = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            codes += key.encode()
        elif key in _CTRL_NAMES:
            codes.append(_CTRL_NAMES.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    if not codes:
        raise ValueError("empty detach key sequence")
    return bytes(codes)


class EscapeProxy:
    """Watches typed input for the detach sequence, holding back a partial match."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns (bytes to forward, whether the full sequence was typed)."""
        out = bytearray()
        for byte in data:
            if byte != self.keys[self.matched]:
                # Not the sequence after all: release what was held back, then look at this byte afresh.
                out += self.keys[: self.matched]
                self.matched = 0
                if byte != self.keys[0]:
                    out.append(byte)
                    continue
            self.matched += 1
            if self.matched == len(self.keys):
                self.matched = 0
                return bytes(out), True
        return bytes(out), False


def pump_stdin(
    fd: int,
    send: Callable[[bytes], None],
    close_write: Callable[[], None],
    escape: bytes | None = None,
    on_detach: Callable[[], None] | None = None,
) -> None:
    """Copy our stdin to the container; half-close at EOF so the container sees EOF too."""
    proxy = EscapeProxy(escape) if escape else None
    try:
        while data := os.read(fd, 32768):
            detached = False
            if proxy is not None:
                data, detached = proxy.feed(data)
            if data:
                send(data)
            if detached:
                if on_detach is not None:
                    on_detach()
                return
    except OSError:
        return  # the connection is gone; output copying ends on its own
    close_write()


def start_stdin_thread(
    fd: int,
    send: Callable[[bytes], None],
    close_write: Callable[[], None],
    escape: bytes | None = None,
    on_detach: Callable[[], None] | None = None,
) -> threading.Thread:
    # A daemon thread: a blocked read on an interactive stdin must not keep us alive after the stream ends.
    thread = threading.Thread(
        target=pump_stdin, args=(fd, send, close_write, escape, on_detach), daemon=True, name="pyd-stdin"
    )
    thread.start()
    return thread


@contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put a terminal in raw mode (like moby/term MakeRaw); always restore it."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int | None = None) -> tuple[int, int] | None:
    """(height, width) of our stdout terminal, or None when it is not a terminal."""
    try:
        size = os.get_terminal_size(sys.stdout.fileno() if fd is None else fd)
    except (OSError, ValueError):
        return None
    return size.lines, size.columns
