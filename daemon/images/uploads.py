"""Request bodies: spooled to a file through aiofiles, or read by a blocking worker thread (import)."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import aiofiles
import aiofiles.os

CHUNK = 1 << 20
SPOOL_PREFIX = "image-upload-"


class AsyncReadable(Protocol):
    """What we need of aiohttp's StreamReader."""

    async def read(self, n: int = -1) -> bytes: ...


def upload_pool() -> ThreadPoolExecutor:
    """Threads that read a request body wait on the network: they get a pool of their own, so that
    a few slow uploads cannot take every thread of the default pool (rm, logs, pause use it)."""
    return ThreadPoolExecutor(max_workers=16, thread_name_prefix="upload")


class BlockingReader:
    """A file-like `read` for worker threads: each refill awaits the async stream on the loop.

    Must only be used from a thread other than the loop's (it blocks until the loop answers).
    """

    def __init__(self, stream: AsyncReadable, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._buf = bytearray()
        self._eof = False

    def _fill(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._stream.read(CHUNK), self._loop)
        data = future.result()
        if data:
            self._buf += data
        else:
            self._eof = True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while not self._eof:
                self._fill()
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if not self._buf and not self._eof:
            self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def remove_stale_spools(directory: Path) -> None:
    """Uploads left behind by a crash in the middle of a load."""
    for path in directory.glob(SPOOL_PREFIX + "*"):
        path.unlink(missing_ok=True)


async def spool(stream: AsyncReadable, directory: Path) -> Path:
    """Writes the whole stream to a new file in `directory` (the caller deletes it)."""
    await aiofiles.os.makedirs(directory, exist_ok=True)
    path = directory / f"{SPOOL_PREFIX}{uuid.uuid4().hex}.tar"
    try:
        async with aiofiles.open(path, "xb") as f:
            while chunk := await stream.read(CHUNK):
                await f.write(chunk)
    except BaseException:  # a client gone mid-upload, or a full disk: nothing is left behind
        path.unlink(missing_ok=True)
        raise
    return path
