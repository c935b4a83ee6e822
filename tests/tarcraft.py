"""Hand-made tar streams for the tests: what Python's tarfile cannot write (sparse entries, corrupt
headers, truncations) and streams of many entries generated as they are read (so that a memory test
measures the reader, not the test's own bytes)."""

import io
import tarfile
from collections.abc import Iterator

BLOCK = 512


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def header(
    name: str,
    typeflag: bytes = b"0",
    size: int = 0,
    mode: int = 0o644,
    mtime: int = 1_600_000_000,
    linkname: str = "",
    gnu: bytes = b"",
) -> bytes:
    """One ustar header block (GNU magic when `gnu` carries the old GNU fields from offset 345)."""
    block = bytearray(BLOCK)
    block[0:100] = name.encode().ljust(100, b"\0")[:100]
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"%07o\0" % 0
    block[116:124] = b"%07o\0" % 0
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"%011o\0" % mtime
    block[156:157] = typeflag
    block[157:257] = linkname.encode().ljust(100, b"\0")[:100]
    if gnu:
        block[257:265] = b"ustar  \0"
        block[345 : 345 + len(gnu)] = gnu
    else:
        block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pax_record(key: str, value: str | bytes) -> bytes:
    body = key.encode() + b"=" + (value.encode() if isinstance(value, str) else value) + b"\n"
    n = len(body) + 2
    while len(str(n)) + 1 + len(body) != n:
        n = len(str(n)) + 1 + len(body)
    return str(n).encode() + b" " + body


def pax_header(records: bytes, typeflag: bytes = b"x", name: str = "PaxHeaders/x") -> bytes:
    return header(name, typeflag, len(records)) + pad(records)


def end() -> bytes:
    return bytes(2 * BLOCK)


def regular(name: str, data: bytes, **kw: object) -> bytes:
    return header(name, b"0", len(data), **kw) + pad(data)  # type: ignore[arg-type]


def pax_sparse_1_0(name: str, size: int, segments: list[tuple[int, bytes]]) -> bytes:
    """A PAX 1.0 sparse file as GNU tar writes it: the map leads the data, then the segments back to back."""
    records = (
        pax_record("GNU.sparse.major", "1")
        + pax_record("GNU.sparse.minor", "0")
        + pax_record("GNU.sparse.name", name)
        + pax_record("GNU.sparse.realsize", str(size))
    )
    lines = [str(len(segments))] + [f"{off}\n{len(data)}" for off, data in segments]
    sparse_map = pad(("\n".join(lines) + "\n").encode())
    data = sparse_map + b"".join(d for _, d in segments)
    return pax_header(records) + header("GNUSparseFile.0/" + name, b"0", len(data)) + pad(data)


def old_gnu_sparse(name: str, size: int, segments: list[tuple[int, bytes]]) -> bytes:
    """An old GNU sparse entry ('S'): up to 4 segments in the header, the rest in extension blocks."""
    entries = [b"%011o\0%011o\0" % (off, len(data)) for off, data in segments]
    first, rest = entries[:4], entries[4:]
    gnu = bytearray(495 - 345)
    gnu[386 - 345 : 386 - 345 + 24 * len(first)] = b"".join(first)
    gnu[482 - 345] = 1 if rest else 0
    gnu[483 - 345 : 495 - 345] = b"%011o\0" % size
    stored = b"".join(d for _, d in segments)
    out = header(name, b"S", len(stored), gnu=bytes(gnu))
    while rest:
        chunk, rest = rest[:21], rest[21:]
        ext = bytearray(BLOCK)
        ext[: 24 * len(chunk)] = b"".join(chunk)
        ext[504] = 1 if rest else 0
        out += bytes(ext)
    return out + pad(stored)


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


_FILE_TEMPLATE = header("")


def _file_header(name: str) -> bytes:
    """header(name) for an empty file, quicker: only the name and the checksum change."""
    raw = name.encode()
    block = bytearray(_FILE_TEMPLATE)
    block[: len(raw)] = raw
    block[148:156] = b"%06o\0 " % (sum(raw) + _TEMPLATE_SUM)
    return bytes(block)


_TEMPLATE_SUM = sum(_FILE_TEMPLATE[:148]) + 8 * 0x20 + sum(_FILE_TEMPLATE[156:])


class ManyFiles:
    """A tar of `count` empty files spread over directories of 1000, made as it is read: the test
    holds no list of them, so the memory a reader keeps per entry is all that grows."""

    def __init__(self, count: int, prefix: str = "d", with_end: bool = True) -> None:
        self._chunks = self._generate(count, prefix, with_end)
        self._buf = b""

    @staticmethod
    def _generate(count: int, prefix: str, with_end: bool) -> Iterator[bytes]:
        for i in range(count):
            if i % 1000 == 0:
                yield header(f"{prefix}{i // 1000}/", b"5", mode=0o755)
            yield _file_header(f"{prefix}{i // 1000}/f{i}")
        if with_end:
            yield end()

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and (chunk := next(self._chunks, None)) is not None:
            self._buf += chunk
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out
