"""Unpacking layer tars: diff IDs, whiteouts, modes, links, and refusing to write outside the root."""

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from daemon.images.layers import LayerError, clean_parts, extract_layer
from tests.tarcraft import (
    ManyFiles,
    end,
    header,
    old_gnu_sparse,
    pax_header,
    pax_record,
    pax_sparse_1_0,
    regular,
)


def member(name: str, type_: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    info.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
    info.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def tar_bytes(*members: tuple, pax: bool = False) -> bytes:
    buf = io.BytesIO()
    fmt = tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def unpack(tmp_path: Path, data: bytes) -> tuple[Path, str, int]:
    dest = tmp_path / "layer" / "diff"
    result = extract_layer(io.BytesIO(data), dest)
    return dest, result.diff_id, result.size


def test_diff_id_is_sha256_of_the_whole_uncompressed_tar(tmp_path: Path) -> None:
    data = tar_bytes(member("etc/", tarfile.DIRTYPE), member("etc/hosts", data=b"127.0.0.1 localhost\n"))
    dest, diff_id, size = unpack(tmp_path, data)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (dest / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert size == len(b"127.0.0.1 localhost\n")


def test_gzip_layers_hash_the_uncompressed_stream(tmp_path: Path) -> None:
    data = tar_bytes(member("a", data=b"hello"))
    dest, diff_id, _ = unpack(tmp_path, gzip.compress(data))
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (dest / "a").read_bytes() == b"hello"


def test_missing_parents_are_created_and_entries_replace_each_other(tmp_path: Path) -> None:
    data = tar_bytes(
        member("deep/er/file", data=b"1"),
        member("x", data=b"file first"),
        member("x/", tarfile.DIRTYPE),  # a directory replaces the file
        member("y/", tarfile.DIRTYPE),
        member("y/inner", data=b"gone"),
        member("y", data=b"file now"),  # a file replaces the directory and its contents
    )
    dest, _, _ = unpack(tmp_path, data)
    assert (dest / "deep/er/file").read_bytes() == b"1"
    assert stat.S_IMODE((dest / "deep").stat().st_mode) == 0o755
    assert (dest / "x").is_dir()
    assert (dest / "y").read_bytes() == b"file now"


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../evil"])
def test_names_climbing_out_are_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(LayerError, match="escapes"):
        unpack(tmp_path, tar_bytes(member(name, data=b"x")))
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "layer" / "evil").exists()


def test_absolute_names_stay_inside_the_root(tmp_path: Path) -> None:
    dest, _, _ = unpack(tmp_path, tar_bytes(member("/abs/file", data=b"x")))
    assert (dest / "abs/file").read_bytes() == b"x"
    assert clean_parts("/a/./b/../c") == ["a", "c"]


def test_writing_through_a_symlinked_parent_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data = tar_bytes(
        member("link", tarfile.SYMTYPE, linkname=str(outside)),
        member("link/pwned", data=b"x"),
    )
    with pytest.raises(LayerError, match="symlink"):
        unpack(tmp_path, data)
    assert list(outside.iterdir()) == []


def test_relative_symlink_parent_is_rejected_too(tmp_path: Path) -> None:
    data = tar_bytes(member("up", tarfile.SYMTYPE, linkname=".."), member("up/pwned", data=b"x"))
    with pytest.raises(LayerError):
        unpack(tmp_path, data)
    assert not (tmp_path / "layer" / "pwned").exists()


def test_symlinks_are_kept_verbatim(tmp_path: Path) -> None:
    data = tar_bytes(
        member("bin/busybox", data=b"elf"),
        member("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
        member("rel", tarfile.SYMTYPE, linkname="../../etc/passwd"),
    )
    dest, _, _ = unpack(tmp_path, data)
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.readlink(dest / "rel") == "../../etc/passwd"


def test_hardlinks_share_the_inode(tmp_path: Path) -> None:
    data = tar_bytes(
        member("bin/busybox", data=b"elf", mode=0o755),
        member("bin/ls", tarfile.LNKTYPE, linkname="bin/busybox"),
    )
    dest, _, size = unpack(tmp_path, data)
    assert (dest / "bin/ls").stat().st_ino == (dest / "bin/busybox").stat().st_ino
    assert (dest / "bin/busybox").stat().st_nlink == 2
    assert size == 3  # the link carries no data


def test_hardlink_targets_outside_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    with pytest.raises(LayerError):
        unpack(tmp_path, tar_bytes(member("l", tarfile.LNKTYPE, linkname="../../secret")))
    data = tar_bytes(
        member("d", tarfile.SYMTYPE, linkname=str(tmp_path)),
        member("l", tarfile.LNKTYPE, linkname="d/secret"),
    )
    with pytest.raises(LayerError, match="symlink"):
        unpack(tmp_path / "second", data)
    assert (tmp_path / "secret").stat().st_nlink == 1


@pytest.mark.root
def test_modes_ownership_and_times_are_kept(tmp_path: Path) -> None:
    data = tar_bytes(
        member("tmp/", tarfile.DIRTYPE, mode=0o1777, mtime=1_500_000_000),
        member("tmp/x", data=b"x"),  # created after the dir entry: the dir's mtime is set at the end
        member("bin/su", data=b"elf", mode=0o4755, uid=0, gid=0),
        member("bin/sg", data=b"elf", mode=0o2711, uid=1000, gid=1001),
        member("home/u/", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000),
    )
    dest, _, _ = unpack(tmp_path, data)
    tmp_st = (dest / "tmp").stat()
    assert stat.S_IMODE(tmp_st.st_mode) == 0o1777
    assert tmp_st.st_mtime == 1_500_000_000
    assert stat.S_IMODE((dest / "bin/su").stat().st_mode) == 0o4755
    sg = (dest / "bin/sg").stat()
    assert stat.S_IMODE(sg.st_mode) == 0o2711  # chown before chmod: setgid survives
    assert (sg.st_uid, sg.st_gid) == (1000, 1001)
    home = (dest / "home/u").stat()
    assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (1000, 0o700)
    assert (dest / "bin/su").stat().st_mtime == 1_600_000_000


@pytest.mark.root
def test_device_nodes_and_fifos(tmp_path: Path) -> None:
    data = tar_bytes(
        member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        member("dev/loop0", tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660, gid=6),
        member("run/fifo", tarfile.FIFOTYPE, mode=0o600),
    )
    dest, _, _ = unpack(tmp_path, data)
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(dest / "dev/loop0")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_gid == 6
    assert stat.S_ISFIFO(os.lstat(dest / "run/fifo").st_mode)


@pytest.mark.root
def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    data = tar_bytes(
        member("etc/", tarfile.DIRTYPE),
        member("etc/.wh.motd"),
        member("var/cache/", tarfile.DIRTYPE),
        member("var/cache/.wh..wh..opq"),
        member("var/cache/new", data=b"n"),
        member(".wh..wh.plnk/", tarfile.DIRTYPE),  # aufs bookkeeping: ignored
    )
    dest, _, _ = unpack(tmp_path, data)
    wh = os.lstat(dest / "etc/motd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert not (dest / "etc/.wh.motd").exists()
    assert os.getxattr(dest / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not (dest / "var/cache/.wh..wh..opq").exists()
    assert (dest / "var/cache/new").read_bytes() == b"n"
    assert not (dest / ".wh..wh.plnk").exists()


def test_bad_whiteouts_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(LayerError):
        unpack(tmp_path, tar_bytes(member("a/.wh...")))


def test_xattrs_from_pax_headers(tmp_path: Path) -> None:
    info, data = member("f", data=b"x")
    info.pax_headers = {"SCHILY.xattr.user.origin": "layer-test"}
    dest, _, _ = unpack(tmp_path, tar_bytes((info, data), pax=True))
    assert os.getxattr(dest / "f", "user.origin") == b"layer-test"


def test_garbage_is_a_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError):
        unpack(tmp_path, b"this is not a tar archive at all" * 40)
    with pytest.raises(LayerError):
        unpack(tmp_path / "z", b"\x1f\x8b\x08\x00garbage")


# ---- hostile and malformed layers (issue 5) ----------------------------------------------------------


def test_a_corrupt_header_in_the_middle_refuses_the_layer(tmp_path: Path) -> None:
    data = bytearray(tar_bytes(member("a", data=b"1"), member("b", data=b"2"), member("c", data=b"3")))
    data[1024 + 148 : 1024 + 156] = b"0000000\0"  # b's checksum: tarfile took this for the end
    with pytest.raises(LayerError, match=r"^archive/tar: invalid tar header$"):
        unpack(tmp_path, bytes(data))


@pytest.mark.parametrize("compress", [False, True])
def test_a_truncated_layer_is_an_unexpected_eof(tmp_path: Path, compress: bool) -> None:
    data = tar_bytes(member("a", data=b"x" * 5000))[:3000]
    with pytest.raises(LayerError, match=r"^unexpected EOF$"):
        unpack(tmp_path, gzip.compress(data) if compress else data)
    if compress:
        whole = gzip.compress(tar_bytes(member("a", data=os.urandom(5000))))
        with pytest.raises(LayerError, match=r"^unexpected EOF$"):
            unpack(tmp_path / "cut", whole[: len(whole) // 2])


def test_sparse_files_keep_their_holes(tmp_path: Path) -> None:
    size = 256 << 20
    data = pax_sparse_1_0("var/log/lastlog", size, [(8192, b"A" * 4096), (200 << 20, b"B" * 100)]) + end()
    dest, _, reported = unpack(tmp_path, data)
    path = dest / "var/log/lastlog"
    st = path.stat()
    assert st.st_size == size == reported
    assert st.st_blocks * 512 < 1 << 20  # tarfile wrote 256 MiB of zeros here
    with open(path, "rb") as f:
        assert f.read(8192) == bytes(8192)
        assert f.read(4096) == b"A" * 4096
        f.seek(200 << 20)
        assert f.read(101) == b"B" * 100 + b"\0"


def test_old_gnu_sparse_entries_are_refused_as_docker_does(tmp_path: Path) -> None:
    data = old_gnu_sparse("big", 2 << 30, [(1 << 20, b"data")]) + end()
    with pytest.raises(LayerError, match=r"^unhandled tar header type 83$"):
        unpack(tmp_path, data)
    assert not (tmp_path / "layer/diff/big").exists()


def test_types_docker_does_not_unpack_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"^unhandled tar header type 86$"):  # 'V', a GNU volume label
        unpack(tmp_path, header("label", b"V") + end())


def test_a_global_header_changes_nothing(tmp_path: Path) -> None:
    data = pax_header(pax_record("mtime", "1000"), b"g", "pax_global_header") + regular("f", b"x") + end()
    dest, _, _ = unpack(tmp_path, data)
    assert (dest / "f").stat().st_mtime == 1_600_000_000  # tarfile gave it the global mtime
    assert not (dest / "pax_global_header").exists()


def test_the_layer_size_cap_stops_a_gzip_bomb(tmp_path: Path) -> None:
    bomb = gzip.compress(tar_bytes(member("zeros", data=bytes(8 << 20))))
    assert len(bomb) < 20_000
    dest = tmp_path / "layer" / "diff"
    with pytest.raises(LayerError, match=r"^layer too large: its uncompressed tar exceeds 1 MiB"):
        extract_layer(io.BytesIO(bomb), dest, max_bytes=1 << 20)
    assert (dest / "zeros").stat().st_size <= 1 << 20  # stopped early, not after writing it all


def test_a_hardlink_to_a_directory_is_a_layer_error(tmp_path: Path) -> None:
    data = tar_bytes(member("d/", tarfile.DIRTYPE), member("l", tarfile.LNKTYPE, linkname="d"))
    with pytest.raises(LayerError, match=r"^link /d /l: operation not permitted$"):
        unpack(tmp_path, data)


def test_a_name_over_255_bytes_is_a_layer_error(tmp_path: Path) -> None:
    name = "d/" + "x" * 300
    with pytest.raises(LayerError, match=f"^open /{name}: file name too long$"):
        unpack(tmp_path, tar_bytes(member(name, data=b"x")))


def test_ids_the_kernel_cannot_take_are_a_layer_error(tmp_path: Path) -> None:
    info, data = member("f", data=b"x")
    info.pax_headers = {"uid": str(1 << 40)}
    with pytest.raises(LayerError, match=r'^failed to Lchown "/f" for UID 1099511627776, GID 0'):
        unpack(tmp_path, tar_bytes((info, data), pax=True))


def test_replacing_a_very_deep_tree_needs_no_recursion(tmp_path: Path) -> None:
    deep = "/".join(["a"] * 1200)  # deeper than the recursion limit (1000)
    data = tar_bytes(member(deep + "/f", data=b"x"), member("a", data=b"now a file"), pax=True)
    try:
        dest, _, _ = unpack(tmp_path, data)  # shutil.rmtree recursed once per level: RecursionError
        assert (dest / "a").read_bytes() == b"now a file"
    finally:  # a tree left behind would make pytest's own clean-up (shutil.rmtree) fail
        subprocess.run(["rm", "-rf", str(tmp_path / "layer")], check=True)


def test_directory_times_survive_children_in_any_order(tmp_path: Path) -> None:
    data = tar_bytes(
        member("a/", tarfile.DIRTYPE, mtime=1_100_000_000),
        member("b/", tarfile.DIRTYPE, mtime=1_200_000_000),
        member("a/x", data=b"x"),
        member("b/y", data=b"y"),
        member("a/sub/z", data=b"z"),  # a/sub is made on the way
        member("b/y", data=b"replaced"),
        member("a/.wh.x"),
    )
    dest, _, _ = unpack(tmp_path, data)
    assert (dest / "a").stat().st_mtime == 1_100_000_000
    assert (dest / "b").stat().st_mtime == 1_200_000_000


def _peak_while_unpacking(tmp_path: Path, count: int) -> int:
    tracemalloc.start()
    try:
        result = extract_layer(ManyFiles(count), tmp_path / str(count))
        assert len(list((tmp_path / str(count) / "d0").iterdir())) == min(count, 1000)
        assert result.size == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_unpacking_memory_does_not_grow_with_the_number_of_entries(tmp_path: Path) -> None:
    # few entries: creating a file takes up to a millisecond on a busy disk, ten times that traced
    small, large = _peak_while_unpacking(tmp_path, 300), _peak_while_unpacking(tmp_path, 3_000)
    assert large < small + (256 << 10), (small, large)  # tarfile kept ~550 bytes per entry: +1.5 MiB
