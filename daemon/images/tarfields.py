"""The fields of tar headers and PAX records, read by the rules of Go's archive/tar.

Anything malformed is "archive/tar: invalid tar header", as Go says it (and Docker shows it).
"""

import re
from collections.abc import Iterator

from daemon.errors import InvalidParameter

ERR_HEADER = "archive/tar: invalid tar header"
ERR_EOF = "unexpected EOF"
ERR_FIELD_TOO_LONG = "archive/tar: header field too long"
ERR_SPARSE_TOO_LONG = "archive/tar: sparse map too long"
ERR_MISSING_DATA = "archive/tar: sparse file references non-existent data"
ERR_UNREFERENCED_DATA = "archive/tar: sparse file contains unreferenced data"

XATTR_PREFIX = "SCHILY.xattr."
_BLOCK = 512
_MAX_INT64 = (1 << 63) - 1
_OCTAL_DIGITS = b"01234567"
_DECIMAL = re.compile(rb"[+-]?[0-9]+")
_HIGH_BYTES = bytes(range(128, 256))


class TarFormatError(InvalidParameter):
    """A malformed tar stream; the message is Go's, as Docker reports it."""


def decode(raw: bytes) -> str:
    """Names and PAX values as Python strings; bytes that are not UTF-8 survive a round trip."""
    return raw.decode("utf-8", "surrogateescape")


def cstring(raw: bytes) -> bytes:
    """A NUL-terminated field."""
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]


def number(raw: bytes) -> int:
    """A numeric header field: base-256 when the top bit is set, else octal padded with NULs/spaces."""
    if raw[0] & 0x80:
        bits = len(raw) * 8 - 1
        value = int.from_bytes(raw, "big") & ((1 << bits) - 1)
        if value >> (bits - 1):  # negative, two's complement
            value -= 1 << bits
        if not -_MAX_INT64 - 1 <= value <= _MAX_INT64:
            raise TarFormatError(ERR_HEADER)
        return value
    digits = raw.strip(b" \0")
    nul = digits.find(b"\0")
    if nul >= 0:
        digits = digits[:nul]
    if not digits:
        return 0
    if digits.translate(None, _OCTAL_DIGITS):  # anything but octal digits left
        raise TarFormatError(ERR_HEADER)
    return int(digits, 8)  # at most 12 digits: no overflow


def decimal(raw: bytes) -> int:
    """A decimal PAX value, as Go's strconv.ParseInt(v, 10, 64) takes it."""
    if not _DECIMAL.fullmatch(raw):
        raise TarFormatError(ERR_HEADER)
    value = int(raw)
    if not -_MAX_INT64 - 1 <= value <= _MAX_INT64:
        raise TarFormatError(ERR_HEADER)
    return value


def pax_time_ns(raw: bytes) -> int:
    """A PAX time ("1600000000.25"), in nanoseconds."""
    seconds, dot, frac = raw.partition(b".")
    secs = decimal(seconds)
    if not dot or not frac:
        return secs * 1_000_000_000
    if not frac.isdigit():
        raise TarFormatError(ERR_HEADER)
    nanos = int(frac[:9].ljust(9, b"0"))
    return secs * 1_000_000_000 - nanos if seconds.startswith(b"-") else secs * 1_000_000_000 + nanos


def checksum_ok(block: bytes) -> bool:
    """The header checksum, summed over unsigned or (as some old tars did) signed bytes."""
    expected = number(block[148:156])
    field_ = block[148:156]
    unsigned = sum(block) - sum(field_) + 8 * 0x20
    if expected == unsigned:
        return True
    high = (_BLOCK - len(block.translate(None, _HIGH_BYTES))) - (8 - len(field_.translate(None, _HIGH_BYTES)))
    return expected == unsigned - 256 * high


def _pax_records(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """PAX records, "<length> <key>=<value>\\n"; anything malformed is an invalid header, as in Go."""
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise TarFormatError(ERR_HEADER)
        length = decimal(data[pos:space])
        end = pos + length
        if length < 5 or end > len(data) or data[end - 1 : end] != b"\n":
            raise TarFormatError(ERR_HEADER)
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq or not key:
            raise TarFormatError(ERR_HEADER)
        nul_checked = value if key in (b"path", b"linkpath", b"uname", b"gname") else key
        if b"\0" in nul_checked:
            raise TarFormatError(ERR_HEADER)
        yield key, value
        pos = end


def parse_pax(data: bytes) -> dict[str, bytes]:
    """The records of a PAX header; format 0.0 sparse pairs are joined into GNU.sparse.map, as Go does."""
    records: dict[str, bytes] = {}
    sparse_map: list[bytes] = []  # format 0.0 repeats these two keys: keep them in order
    for key, value in _pax_records(data):
        if key in (b"GNU.sparse.offset", b"GNU.sparse.numbytes"):
            wanted = b"GNU.sparse.offset" if len(sparse_map) % 2 == 0 else b"GNU.sparse.numbytes"
            if key != wanted or b"," in value:
                raise TarFormatError(ERR_HEADER)
            sparse_map.append(value)
        else:
            records[decode(key)] = value
    if sparse_map:
        records["GNU.sparse.map"] = b",".join(sparse_map)
    return records


def sparse_map_0x(records: dict[str, bytes]) -> list[tuple[int, int]]:
    """The data segments of a PAX 0.0 or 0.1 sparse file: (offset, length) pairs."""
    count = decimal(records.get("GNU.sparse.numblocks", b""))
    raw = records.get("GNU.sparse.map", b"")
    numbers = raw.split(b",") if raw else []
    if count < 0 or len(numbers) != 2 * count:
        raise TarFormatError(ERR_HEADER)
    values = [decimal(n) for n in numbers]
    return list(zip(values[::2], values[1::2], strict=True))


def valid_segments(segments: list[tuple[int, int]], size: int) -> bool:
    """Go's validateSparseEntries: in order, not overlapping, inside the file."""
    if size < 0:
        return False
    previous_end = 0
    for offset, length in segments:
        if offset < 0 or length < 0 or offset + length > size or offset < previous_end:
            return False
        previous_end = offset + length
    return True
