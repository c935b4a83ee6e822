"""Compressed layers and archives, recognised by their magic numbers as Docker's DecompressStream
does: gzip, bzip2 and xz; anything else is taken as a plain tar (zstd is refused, not yet supported)."""

import bz2
import gzip
import lzma
from typing import IO, Any

from daemon.errors import InvalidParameter
from daemon.images.tarstream import Readable

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"
HEAD = 6  # bytes enough to tell them apart


class _Prepended:
    """Gives back bytes already read for sniffing the compression, then the rest of the stream."""

    def __init__(self, head: bytes, src: Readable) -> None:
        self._head = head
        self._src = src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                out, self._head = self._head + self._src.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._src.read(n)


def decompressed(src: Readable) -> Readable:
    """A stream read through its decompressor, when its first bytes name one."""
    head = b""
    while len(head) < HEAD:
        more = src.read(HEAD - len(head))
        if not more:
            break
        head += more
    stream = _Prepended(head, src)
    if head.startswith(_GZIP):
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[call-overload]  # no seek needed for reading
    if head.startswith(_BZIP2):
        return bz2.BZ2File(stream, mode="rb")  # type: ignore[call-overload]  # no seek needed for reading
    if head.startswith(_XZ):
        return lzma.LZMAFile(stream, mode="rb")  # type: ignore[arg-type]  # no seek needed for reading
    if head.startswith(_ZSTD):
        raise InvalidParameter("unsupported layer compression: zstd")
    return stream


def open_decompressed(path: str) -> IO[bytes]:
    """A file read from its start through its decompressor (seeking forward decompresses its way)."""
    with open(path, "rb") as plain:
        head = plain.read(HEAD)
    opener: Any = open
    if head.startswith(_GZIP):
        opener = gzip.open
    elif head.startswith(_BZIP2):
        opener = bz2.open
    elif head.startswith(_XZ):
        opener = lzma.open
    stream: IO[bytes] = opener(path, "rb")
    return stream
