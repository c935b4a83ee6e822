"""The streaming tar reader: the same entries as Python's tarfile on good archives, Go's answers on
bad ones (where tarfile silently stops early or reads without bound), sparse maps, and no memory kept
per entry."""

import io
import shutil
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from daemon.images.tarstream import (
    ERR_EOF,
    ERR_FIELD_TOO_LONG,
    ERR_HEADER,
    ERR_SPARSE_TOO_LONG,
    MAX_SPECIAL,
    TarEntry,
    TarFormatError,
    TarReader,
)
from tests.tarcraft import (
    BLOCK,
    ManyFiles,
    end,
    header,
    old_gnu_sparse,
    pad,
    pax_header,
    pax_record,
    pax_sparse_1_0,
    regular,
    tar_bytes,
)


def entries(data: bytes) -> list[tuple[TarEntry, bytes]]:
    reader = TarReader(io.BytesIO(data))
    return [(e, b"".join(iter(reader.read, b""))) for e in reader]


def info(name: str, type_: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple:
    i = tarfile.TarInfo(name)
    i.type = type_
    i.size = len(data) if type_ == tarfile.REGTYPE else 0
    i.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(i, key, value)
    return i, data if type_ == tarfile.REGTYPE else None


MEMBERS = [
    info("etc/", tarfile.DIRTYPE, mode=0o755),
    info("etc/hosts", data=b"127.0.0.1 localhost\n", mode=0o644, uid=0, gid=0),
    info("deep/" + "x" * 120 + "/" + "y" * 150, data=b"long name"),
    info("caf\u00e9/na\u00efve.txt", data=b"utf-8 names"),
    info("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
    info("l/" + "z" * 130, tarfile.LNKTYPE, linkname="etc/hosts" + "/.." * 0),
    info("big-ids", data=b"ids", uid=3_000_000_000, gid=70_000),
    info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
    info("dev/loop0", tarfile.BLKTYPE, devmajor=7, devminor=0),
    info("run/fifo", tarfile.FIFOTYPE),
    info("setuid", data=b"x" * 1000, mode=0o4755),
    info("empty", data=b""),
]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_same_entries_as_tarfile(fmt: int) -> None:
    data = tar_bytes(*MEMBERS, fmt=fmt)
    ours = entries(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as theirs:
        members = theirs.getmembers()
        assert len(ours) == len(members)
        for (e, content), m in zip(ours, members, strict=True):
            assert (e.name.rstrip("/"), e.type, e.mode) == (m.name, m.type.decode(), m.mode)
            assert (e.uid, e.gid, e.linkname, e.size) == (m.uid, m.gid, m.linkname, m.size)
            assert (e.devmajor, e.devminor, e.mtime_ns) == (m.devmajor, m.devminor, int(m.mtime) * 10**9)
            f = theirs.extractfile(m) if m.isreg() else None
            assert content == (f.read() if f else b"")


def test_ustar_prefix_pax_times_and_xattrs() -> None:
    data = tar_bytes(info("a/" * 60 + "file", data=b"p"), fmt=tarfile.USTAR_FORMAT)
    [(e, content)] = entries(data)
    assert e.name == "a/" * 60 + "file" and content == b"p"  # split over the prefix and name fields
    records = pax_record("mtime", "1600000000.25") + pax_record("SCHILY.xattr.user.k", b"v\x00\xff")
    [(e, _)] = entries(pax_header(records) + regular("f", b"") + end())
    assert e.mtime_ns == 1_600_000_000_250_000_000
    assert e.xattrs == {"user.k": b"v\x00\xff"}


def test_a_corrupt_header_in_the_middle_is_refused_where_tarfile_stops_quietly() -> None:
    good = regular("a", b"1") + regular("b", b"2") + regular("c", b"3") + end()
    bad = bytearray(good)
    bad[2 * BLOCK + 148 : 2 * BLOCK + 156] = b"0000000\0"  # b's checksum
    with tarfile.open(fileobj=io.BytesIO(bytes(bad))) as tf:
        assert [m.name for m in tf] == ["a"]  # the old way: a partial archive, no error
    with pytest.raises(TarFormatError, match=f"^{ERR_HEADER}$"):
        entries(bytes(bad))
    bad = bytearray(good)
    bad[2 * BLOCK + 124] = ord("9")  # not an octal digit in b's size (checksum fixed up)
    bad[2 * BLOCK + 148 : 2 * BLOCK + 156] = b" " * 8
    bad[2 * BLOCK + 148 : 2 * BLOCK + 156] = b"%06o\0 " % sum(bad[2 * BLOCK : 3 * BLOCK])
    with pytest.raises(TarFormatError, match=f"^{ERR_HEADER}$"):
        entries(bytes(bad))


def test_end_of_archive_rules_follow_go() -> None:
    a, b = regular("a", b"1"), regular("b", b"2")
    assert len(entries(a + b)) == 2  # no end blocks at all: fine
    assert len(entries(a + bytes(BLOCK))) == 1  # a single zero block, then EOF: fine
    assert len(entries(a + end() + b"trailing junk")) == 1  # after two zero blocks nothing is read
    with pytest.raises(TarFormatError, match=f"^{ERR_HEADER}$"):
        entries(a + bytes(BLOCK) + b)  # one zero block and then an entry
    with pytest.raises(TarFormatError, match=f"^{ERR_EOF}$"):
        entries(a + b[:300])  # inside a header
    with pytest.raises(TarFormatError, match=f"^{ERR_EOF}$"):
        entries(regular("a", b"x" * 1000)[: BLOCK + 700])  # inside the data
    assert len(entries(regular("a", b"x" * 10)[: BLOCK + 10])) == 1  # inside the padding: fine


def test_special_headers_are_capped_at_one_mib() -> None:
    huge = pax_record("comment", "x" * MAX_SPECIAL)
    with pytest.raises(TarFormatError, match=f"^{ERR_FIELD_TOO_LONG}$"):
        entries(pax_header(huge) + regular("f", b"") + end())
    long_name = b"n" * (MAX_SPECIAL + 1)
    with pytest.raises(TarFormatError, match=f"^{ERR_FIELD_TOO_LONG}$"):
        entries(header("././@LongLink", b"L", len(long_name)) + pad(long_name) + regular("f", b"") + end())


def test_a_global_header_is_an_entry_of_its_own_and_changes_nothing_else() -> None:
    data = pax_header(pax_record("mtime", "1000"), b"g", "pax_global_header") + regular("f", b"x") + end()
    [(glob, _), (f, content)] = entries(data)
    assert glob.type == "g" and f.name == "f" and content == b"x"
    assert f.mtime_ns == 1_600_000_000 * 10**9
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert int(tf.getmember("f").mtime) == 1000  # tarfile applies it to what follows


def test_pax_sparse_1_0_keeps_the_map() -> None:
    data = pax_sparse_1_0("big", 10 << 30, [(4096, b"A" * 100), (5 << 30, b"B" * 600)]) + regular(
        "after", b"z"
    )
    [(e, stored), (after, content)] = entries(data + end())
    assert (e.name, e.type, e.size) == ("big", "0", 10 << 30)
    assert e.segments == ((4096, 100), (5 << 30, 600))
    assert stored == b"A" * 100 + b"B" * 600 and e.stored == 700
    assert (after.name, content) == ("after", b"z")


def test_a_sparse_map_that_never_ends_is_capped() -> None:
    records = pax_record("GNU.sparse.major", "1") + pax_record("GNU.sparse.minor", "0")
    records += pax_record("GNU.sparse.realsize", "100")
    body = b"1000000000\n" + b"0\n" * (MAX_SPECIAL // 2 + 1000)
    with pytest.raises(TarFormatError, match=f"^{ERR_SPARSE_TOO_LONG}$"):
        entries(pax_header(records) + header("s", b"0", len(body)) + pad(body) + end())


def test_sparse_maps_are_checked() -> None:
    overlapping = pax_sparse_1_0("s", 100, [(10, b"a" * 20), (20, b"b")])
    with pytest.raises(TarFormatError, match=f"^{ERR_HEADER}$"):
        entries(overlapping + end())
    beyond = pax_sparse_1_0("s", 100, [(99, b"ab")])
    with pytest.raises(TarFormatError, match=f"^{ERR_HEADER}$"):
        entries(beyond + end())


def test_old_gnu_sparse_comes_back_as_such_and_the_stream_goes_on() -> None:
    segments = [(i * 100_000, bytes([65 + i]) * 10) for i in range(30)]  # 30 segments: 2 extension blocks
    data = old_gnu_sparse("s", 4_000_000, segments) + regular("next", b"n") + end()
    [(e, stored), (nxt, content)] = entries(data)
    assert e.type == "S" and stored == b"".join(d for _, d in segments)
    assert (nxt.name, content) == ("next", b"n")


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("version", ["0.0", "0.1", "1.0"])
def test_gnu_tar_pax_sparse_versions(tmp_path: Path, version: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.truncate(64 << 20)
        f.seek(1 << 20)
        f.write(b"one")
        f.seek(40 << 20)
        f.write(b"two")
    archive = tmp_path / "a.tar"
    subprocess.run(
        [
            "tar",
            "--sparse",
            f"--sparse-version={version}",
            "--format=posix",
            "-C",
            str(src),
            "-cf",
            str(archive),
            "sparse",
        ],
        check=True,
    )
    [(e, stored)] = entries(archive.read_bytes())
    assert e.name == "sparse" and e.size == 64 << 20 and e.segments is not None
    rebuilt = bytearray(e.size)
    pos = 0
    for offset, length in e.segments:
        rebuilt[offset : offset + length] = stored[pos : pos + length]
        pos += length
    assert bytes(rebuilt) == (src / "sparse").read_bytes()


def _peak_while_reading(count: int) -> int:
    tracemalloc.start()
    try:
        reader = TarReader(ManyFiles(count))
        n = sum(1 for _ in reader)
        assert n == count + (count + 999) // 1000
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_entries() -> None:
    small, large = _peak_while_reading(2_000), _peak_while_reading(20_000)
    assert large < small + (256 << 10), (small, large)  # tarfile keeps ~550 bytes per entry: +10 MiB
