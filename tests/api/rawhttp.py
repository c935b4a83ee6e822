"""Requests on a raw connection, for the routes that take the connection over (attach, exec start)."""

import asyncio

from aiohttp.test_utils import TestClient


async def raw_request(client: TestClient, head: str, stdin: bytes = b"") -> tuple[bytes, bytes]:
    """One request on a connection of its own: the response head, then (after `stdin` was sent and
    the client's side closed) all that follows until the server closes."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head.encode())
    await writer.drain()
    response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    writer.write(stdin)
    writer.write_eof()
    rest = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return response_head, rest


def upgrade(path: str, body: str = "") -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )
