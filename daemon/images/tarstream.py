"""Reading tar streams in constant memory, by the rules of Go's archive/tar (what Docker Engine uses).

Python's tarfile keeps every member it has read (TarFile.members), takes a corrupt header in the
middle of an archive for its end (a partial image, silently), reads PAX headers and GNU long names of
any size into memory, and applies PAX global headers to the members after them. This reader keeps
only the entry at hand, and answers as Go does, in Go's words (Docker shows them to its users):

- a header with a bad checksum or a bad number is "archive/tar: invalid tar header", wherever it
  is; so is a zero block followed by anything but a second zero block or the end of the stream;
- a stream that ends inside a header or inside an entry's data is "unexpected EOF";
- PAX headers, GNU long names and PAX 1.0 sparse maps are capped at 1 MiB ("archive/tar: header
  field too long", "archive/tar: sparse map too long");
- a PAX global header ('g') comes back as an entry of its own and changes no other entry;
- a PAX sparse file (formats 0.0, 0.1, 1.0) comes with its map of data segments; an old GNU
  sparse entry ('S') comes back with its type for the caller to refuse, as Docker does.

Entries come back with their name as found (the caller cleans it) and their type normalised like
Go's: a '\\0' typeflag is a regular file, or a directory when the name ends with "/".
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

from daemon.images.tarfields import (
    ERR_EOF,
    ERR_FIELD_TOO_LONG,
    ERR_HEADER,
    ERR_MISSING_DATA,
    ERR_SPARSE_TOO_LONG,
    ERR_UNREFERENCED_DATA,
    XATTR_PREFIX,
    TarFormatError,
    checksum_ok,
    cstring,
    decimal,
    decode,
    number,
    parse_pax,
    pax_time_ns,
    sparse_map_0x,
    valid_segments,
)

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_SPECIAL = 1 << 20  # Go's maxSpecialFileSize
_SKIP_CHUNK = 1 << 20


# typeflags
REG = "0"
LINK = "1"
SYMLINK = "2"
CHAR = "3"
BLOCKDEV = "4"
DIR = "5"
FIFO = "6"
GLOBAL = "g"
OLD_SPARSE = "S"
_PAX = "x"
_LONG_NAME = "L"
_LONG_LINK = "K"
_REG_A = "\0"
_HEADER_ONLY = frozenset((LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO))
# what Docker's archive.createTarFile unpacks (a global header it skips); it refuses anything else
HANDLED_TYPES = frozenset((REG, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO, GLOBAL))

__all__ = [  # the errors are part of what this module answers
    "ERR_EOF",
    "ERR_FIELD_TOO_LONG",
    "ERR_HEADER",
    "ERR_MISSING_DATA",
    "ERR_SPARSE_TOO_LONG",
    "ERR_UNREFERENCED_DATA",
    "HANDLED_TYPES",
    "TarEntry",
    "TarFormatError",
    "TarReader",
    "unhandled_type",
]

_MAGIC_USTAR = b"ustar\x00"
_MAGIC_GNU = b"ustar "
_VERSION_GNU = b" \x00"
_TRAILER_STAR = b"tar\x00"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def unhandled_type(typeflag: str) -> TarFormatError:
    """Docker's refusal of a typeflag it does not unpack (old GNU sparse 'S' is 83)."""
    return TarFormatError(f"unhandled tar header type {ord(typeflag)}")


@dataclass(slots=True)
class TarEntry:
    name: str
    type: str
    size: int = 0  # a regular file's size, holes included
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    # a sparse file's data segments as (offset, length), in order, holes between them
    segments: tuple[tuple[int, int], ...] | None = None
    data_offset: int = 0  # where the stored data starts in the (uncompressed) stream
    stored: int = 0  # bytes of data stored in the archive: the sum of the segments when sparse


class TarReader:
    """Entries of a tar stream one at a time; `read` gives the current entry's stored data.

    With `size` (the length of a seekable `src`, a file), data that is not read is skipped with
    seek() instead of being read.
    """

    def __init__(self, src: Readable | IO[bytes], size: int | None = None) -> None:
        self._src = src
        self._size = size
        self._pos = 0
        self._remaining = 0  # stored bytes of the current entry not read yet
        self._pad = 0
        self._done = False

    def __iter__(self) -> Iterator[TarEntry]:
        while (entry := self.next()) is not None:
            yield entry

    # ---- bytes ---------------------------------------------------------------------------------

    def _take(self, n: int) -> bytes:
        """Up to n bytes: fewer only at the end of the stream."""
        data = self._src.read(n)
        if len(data) < n and data:
            parts = [data]
            got = len(data)
            while got < n and (more := self._src.read(n - got)):
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self._pos += len(data)
        return data

    def _exact(self, n: int) -> bytes:
        data = self._take(n)
        if len(data) < n:
            raise TarFormatError(ERR_EOF)
        return data

    def _skip(self, n: int, eof_ok: bool = False) -> None:
        if n <= 0:
            return
        if self._size is not None:
            target = self._pos + n
            if target > self._size:
                if eof_ok:  # Go accepts a stream that ends in the padding
                    target = self._size
                else:
                    raise TarFormatError(ERR_EOF)
            self._src.seek(target)  # type: ignore[union-attr]  # `size` promises a file
            self._pos = target
            return
        while n > 0:
            chunk = self._take(min(n, _SKIP_CHUNK))
            if not chunk:
                if eof_ok:
                    return
                raise TarFormatError(ERR_EOF)
            n -= len(chunk)

    def read(self, n: int = _SKIP_CHUNK) -> bytes:
        """Stored data of the current entry (for a sparse file: its segments, back to back)."""
        n = min(n, self._remaining)
        if n <= 0:
            return b""
        data = self._exact(n)
        self._remaining -= n
        return data

    # ---- headers -------------------------------------------------------------------------------

    def _header_block(self) -> bytes | None:
        """The next header block, or None at the end of the archive."""
        block = self._take(BLOCK)
        if not block:
            return None  # the stream ends between entries: Go takes it as the end
        if len(block) < BLOCK:
            raise TarFormatError(ERR_EOF)
        if block == ZERO_BLOCK:
            second = self._take(BLOCK)
            if not second or second == ZERO_BLOCK:
                return None
            if len(second) < BLOCK:
                raise TarFormatError(ERR_EOF)
            raise TarFormatError(ERR_HEADER)
        if not checksum_ok(block):
            raise TarFormatError(ERR_HEADER)
        return block

    def _special(self, size: int) -> bytes:
        """The data of a PAX header or GNU long name, padding included."""
        if size < 0:
            raise TarFormatError(ERR_HEADER)
        if size > MAX_SPECIAL:
            raise TarFormatError(ERR_FIELD_TOO_LONG)
        data = self._exact(size)
        self._skip(-size % BLOCK, eof_ok=True)
        return data

    def next(self) -> TarEntry | None:
        if self._done:
            return None
        self._skip(self._remaining)
        self._skip(self._pad, eof_ok=True)
        self._remaining = self._pad = 0
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            block = self._header_block()
            if block is None:
                self._done = True
                return None
            typeflag = block[156:157].decode("latin-1") or _REG_A
            size = number(block[124:136])
            if typeflag in (_PAX, GLOBAL):
                pax = parse_pax(self._special(size))
                if typeflag == GLOBAL:
                    name = decode(pax["path"]) if pax.get("path") else decode(cstring(block[:100]))
                    return TarEntry(name, GLOBAL, data_offset=self._pos)
                continue
            if typeflag in (_LONG_NAME, _LONG_LINK):
                value = cstring(self._special(size))
                if typeflag == _LONG_NAME:
                    long_name = value
                else:
                    long_link = value
                continue
            return self._entry(block, typeflag, size, pax, long_name, long_link)

    def _entry(
        self,
        block: bytes,
        typeflag: str,
        size: int,
        pax: dict[str, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarEntry:
        magic = block[257:263]
        name = cstring(block[:100])
        entry = TarEntry(
            name="",
            type=typeflag,
            mode=number(block[100:108]),
            uid=number(block[108:116]),
            gid=number(block[116:124]),
            mtime_ns=number(block[136:148]) * 1_000_000_000,
            linkname=decode(cstring(block[157:257])),
        )
        is_gnu = magic == _MAGIC_GNU and block[263:265] == _VERSION_GNU
        if magic == _MAGIC_USTAR or is_gnu:
            entry.devmajor = number(block[329:337])
            entry.devminor = number(block[337:345])
            if magic == _MAGIC_USTAR:
                star = block[508:512] == _TRAILER_STAR
                prefix = cstring(block[345:476] if star else block[345:500])
                if prefix:
                    name = prefix + b"/" + name
        entry.name = decode(name)
        self._merge_pax(entry, size, pax)
        if long_name:
            entry.name = decode(long_name)
        if long_link:
            entry.linkname = decode(long_link)
        if entry.type == _REG_A:
            entry.type = DIR if entry.name.endswith("/") else REG
        if entry.type in _HEADER_ONLY:
            entry.size = 0  # whatever the header says, these have no data (as in Go)
        if entry.size < 0:
            raise TarFormatError(ERR_HEADER)
        if entry.type == OLD_SPARSE and block[482]:
            self._skip_old_sparse_extensions()
        entry.data_offset = self._pos
        entry.stored = self._remaining = entry.size
        self._pad = -entry.size % BLOCK
        self._sparse(entry, pax)
        return entry

    @staticmethod
    def _merge_pax(entry: TarEntry, size: int, pax: dict[str, bytes]) -> None:
        entry.size = size
        for key, value in pax.items():
            if not value:
                continue  # an empty record keeps the header's value, as in Go
            if key == "path":
                entry.name = decode(value)
            elif key == "linkpath":
                entry.linkname = decode(value)
            elif key == "uid":
                entry.uid = decimal(value)
            elif key == "gid":
                entry.gid = decimal(value)
            elif key == "mtime":
                entry.mtime_ns = pax_time_ns(value)
            elif key == "size":
                entry.size = decimal(value)
            elif key in ("atime", "ctime"):
                pax_time_ns(value)  # checked as Go does, not used
            elif key.startswith(XATTR_PREFIX):
                entry.xattrs[key[len(XATTR_PREFIX) :]] = value

    def _skip_old_sparse_extensions(self) -> None:
        """Old GNU sparse headers continue in extension blocks; read past them, keeping nothing."""
        while True:
            block = self._exact(BLOCK)
            if not block[504]:
                return

    def _sparse(self, entry: TarEntry, pax: dict[str, bytes]) -> None:
        major, minor = pax.get("GNU.sparse.major"), pax.get("GNU.sparse.minor")
        if (major, minor) in ((b"0", b"0"), (b"0", b"1")):
            version_1 = False
        elif (major, minor) == (b"1", b"0"):
            version_1 = True
        elif major or minor or not pax.get("GNU.sparse.map"):
            return  # not sparse, or a sparse version Go does not know: a plain file
        else:
            version_1 = False
        if pax.get("GNU.sparse.name"):
            entry.name = decode(pax["GNU.sparse.name"])
        real_size = pax.get("GNU.sparse.size") or pax.get("GNU.sparse.realsize")
        if real_size:
            entry.size = decimal(real_size)
        segments = self._segments_1x0() if version_1 else sparse_map_0x(pax)
        if entry.type in _HEADER_ONLY or not valid_segments(segments, entry.size):
            raise TarFormatError(ERR_HEADER)
        entry.data_offset = self._pos
        entry.stored = self._remaining
        total = sum(length for _, length in segments)
        if total > entry.stored:
            raise TarFormatError(ERR_MISSING_DATA)
        if total < entry.stored:
            raise TarFormatError(ERR_UNREFERENCED_DATA)
        entry.segments = tuple(segments)

    def _segments_1x0(self) -> list[tuple[int, int]]:
        """PAX 1.0 keeps its map at the start of the data: decimal numbers, one a line, in blocks."""
        buf = bytearray()
        newlines = 0
        wanted = 1
        count: int | None = None
        while True:
            while newlines < wanted:
                if len(buf) + BLOCK > MAX_SPECIAL:
                    raise TarFormatError(ERR_SPARSE_TOO_LONG)
                if self._remaining < BLOCK:
                    raise TarFormatError(ERR_EOF)
                block = self._exact(BLOCK)
                self._remaining -= BLOCK
                buf += block
                newlines += block.count(b"\n")
            if count is None:
                count = decimal(bytes(buf[: buf.index(b"\n")]))
                if count < 0:
                    raise TarFormatError(ERR_HEADER)
                wanted = 1 + 2 * count
                continue
            break
        tokens = bytes(buf).split(b"\n", wanted)[1:wanted]
        values = [decimal(t) for t in tokens]
        return list(zip(values[::2], values[1::2], strict=True))
