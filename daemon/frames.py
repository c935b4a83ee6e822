"""Docker's 8-byte stream header: between daemon and shim, and from the daemon to its clients.

Stream 1 is stdout and 2 is stderr, exactly as Docker sends them to clients; stream 3 (ours, never
forwarded) carries a JSON control message such as an exec's exit code. (The pyd CLI keeps a reader of
its own: it never imports the daemon.)
"""

import asyncio
import struct

STDOUT, STDERR, CONTROL = 1, 2, 3
HEADER = struct.Struct(">BxxxI")


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next (stream, payload); None once the stream ends or breaks."""
    try:
        header = await reader.readexactly(HEADER.size)
        stream, size = HEADER.unpack(header)
        return stream, await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
