"""Bridges between the event loop's request body and blocking worker threads."""

import asyncio
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

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


def _copy_to_file(src: BlockingReader, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=SPOOL_PREFIX, suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def remove_stale_spools(directory: Path) -> None:
    """Uploads left behind by a crash in the middle of a load."""
    for path in directory.glob(SPOOL_PREFIX + "*"):
        path.unlink(missing_ok=True)


async def spool(stream: AsyncReadable, directory: Path, pool: ThreadPoolExecutor) -> Path:
    """Writes the whole stream to a new temporary file in `directory` (the caller deletes it)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, _copy_to_file, BlockingReader(stream, loop), directory)
