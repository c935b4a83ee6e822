"""Stream plumbing: multiplexed frames, detach keys, stdin copying with half-close."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable

import pytest

from client.pyd.streams import Demuxer, EscapeProxy, copy_output, frame, parse_detach_keys, pump_stdin


def test_demuxer_reassembles_split_frames() -> None:
    data = frame(1, b"out") + frame(2, b"err!") + frame(1, b"")
    demux = Demuxer()
    frames = []
    for i in range(len(data)):  # one byte at a time
        frames += demux.feed(data[i : i + 1])
    assert frames == [(1, b"out"), (2, b"err!"), (1, b"")]
    assert demux.pending == 0


def test_frame_header_layout() -> None:
    assert frame(2, b"x" * 258)[:8] == bytes([2, 0, 0, 0, 0, 0, 1, 2])


def _reader(chunks: list[bytes]) -> Callable[[int], bytes]:
    it = iter(chunks)
    return lambda _n: next(it, b"")


def test_copy_output_demultiplexes() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    data = frame(1, b"a\n") + frame(2, b"b\n") + frame(3, b"boom")
    copy_output(_reader([data[:5], data[5:]]), False, out, err)
    assert out.getvalue() == b"a\n"
    assert err.getvalue() == b"b\nerror from daemon in stream: boom\n"


def test_copy_output_raw_for_tty() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    copy_output(_reader([b"\x01\x00\x00\x00raw"]), True, out, err)
    assert out.getvalue() == b"\x01\x00\x00\x00raw"
    assert err.getvalue() == b""


def test_parse_detach_keys() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,a,ctrl-_,DEL") == b"\x00a\x1f\x7f"
    with pytest.raises(ValueError, match="Unknown character"):
        parse_detach_keys("ctrl-p,shift-q")


def test_escape_proxy_holds_back_partial_sequences() -> None:
    proxy = EscapeProxy(b"\x10\x11")
    assert proxy.feed(b"ab\x10") == (b"ab", False)
    assert proxy.feed(b"c") == (b"\x10c", False)  # not the sequence: released
    assert proxy.feed(b"\x10\x10") == (b"\x10", False)
    assert proxy.feed(b"\x11rest") == (b"", True)


def test_pump_stdin_copies_then_half_closes() -> None:
    read_fd, write_fd = os.pipe()
    ours, theirs = socket.socketpair()
    os.write(write_fd, b"hello ")
    os.write(write_fd, b"world")
    os.close(write_fd)
    try:
        pump_stdin(read_fd, ours.sendall, lambda: ours.shutdown(socket.SHUT_WR))
        received = b""
        while chunk := theirs.recv(100):  # ends because of the half-close
            received += chunk
        assert received == b"hello world"
        theirs.sendall(b"still open")  # our read side survives the half-close
        assert ours.recv(100) == b"still open"
    finally:
        os.close(read_fd)
        ours.close()
        theirs.close()


def test_pump_stdin_detach_keys_stop_without_half_close() -> None:
    read_fd, write_fd = os.pipe()
    sent: list[bytes] = []
    events: list[str] = []
    os.write(write_fd, b"ls\x10\x11more")
    os.close(write_fd)
    try:
        pump_stdin(
            read_fd, sent.append, lambda: events.append("eof"), b"\x10\x11", lambda: events.append("detach")
        )
    finally:
        os.close(read_fd)
    assert sent == [b"ls"]
    assert events == ["detach"]
