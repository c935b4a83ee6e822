"""The stream format between daemon and shim: Docker's 8-byte multiplexing header.

Stream 1 is stdout and 2 is stderr, exactly as Docker sends them to clients; stream 3 (ours, never
forwarded) carries a JSON control message such as an exec's exit code.
"""

import struct

STDOUT, STDERR, CONTROL = 1, 2, 3
HEADER = struct.Struct(">BxxxI")


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload
