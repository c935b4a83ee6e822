"""Copying between a client's hijacked connection and a shim stream, both ways.

Shim -> client: frames (8-byte header) passed on as Docker's multiplexed stream, or as raw bytes with a
TTY; control frames are taken out. Client -> shim: stdin bytes, watched for the detach keys; the
client's half-close becomes stdin EOF.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from daemon.errors import InvalidParameter
from daemon.frames import CONTROL, frame, read_frame
from daemon.runtime.interface import ShimStream, exit_code_in

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


class ClientConn(Protocol):
    async def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def wait_closed(self) -> None:
        """Returns once the client's connection is gone."""


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's "ctrl-p,ctrl-q" notation -> the bytes to watch for."""
    if spec is None or spec == "":
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        key = key.strip().lower()
        if key.startswith("ctrl-") and len(key) == 6:
            ch = key[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[ch])
            else:
                raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


async def pump_output(
    shim: ShimStream,
    client: ClientConn,
    tty: bool,
    on_exit: Callable[[int], None] | None = None,
) -> None:
    while True:
        item = await read_frame(shim.reader)
        if item is None:
            return
        stream, payload = item
        if stream == CONTROL:
            code = exit_code_in(payload)
            if on_exit and code is not None:
                on_exit(code)
            continue
        client.write(payload if tty else frame(stream, payload))
        await client.drain()


async def pump_input(shim: ShimStream, client: ClientConn, detach_keys: bytes | None) -> bool:
    """Client bytes to the shim; True when the client detached with its keys."""
    matched = 0
    while True:
        data = await client.read()
        if not data:
            with contextlib.suppress(OSError, RuntimeError):
                if shim.writer.can_write_eof():
                    shim.writer.write_eof()
            return False
        if detach_keys:
            for i, byte in enumerate(data):
                if byte == detach_keys[matched]:
                    matched += 1
                    if matched == len(detach_keys):
                        start = i + 1 - matched
                        if start > 0:
                            shim.writer.write(data[:start])
                        return True
                else:
                    matched = 1 if byte == detach_keys[0] else 0
        shim.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await shim.writer.drain()


async def splice(
    shim: ShimStream,
    client: ClientConn,
    tty: bool,
    stdin: bool,
    detach_keys: bytes | None,
    on_exit: Callable[[int], None] | None = None,
) -> None:
    """Run both directions until the output ends (the process exited), the client detaches, or the
    client's connection goes away (then the shim's connection is closed too: nothing stays open)."""
    out_task = asyncio.create_task(pump_output(shim, client, tty, on_exit))
    gone_task = asyncio.create_task(client.wait_closed())
    in_task = asyncio.create_task(pump_input(shim, client, detach_keys)) if stdin else None
    waiting: set[asyncio.Task[Any]] = {out_task, gone_task} | ({in_task} if in_task else set())
    try:
        while True:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if out_task in done or gone_task in done:
                break
            if in_task in done and in_task.result():  # detached
                break
    finally:
        for t in (out_task, in_task, gone_task):
            if t and not t.done():
                t.cancel()
        shim.writer.close()
    if out_task.done() and not out_task.cancelled():
        out_task.result()
