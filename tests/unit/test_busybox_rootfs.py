"""The busybox root file system that tests, `make run` and the benchmark import as busybox:latest."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from daemon.tools.busybox_rootfs import build_rootfs_tar, busybox_path, is_static_elf


def _elf(path: Path, *, interp: bool, elf_class: int = 2, order: str = "<") -> Path:
    """A tiny ELF file with two program headers: PT_LOAD, then PT_INTERP or PT_NOTE."""
    ident = b"\x7fELF" + bytes([elf_class, 1 if order == "<" else 2, 1]) + bytes(9)
    if elf_class == 2:
        ehdr_fmt, phentsize = "HHIQQQIHHHHHH", 56
    else:
        ehdr_fmt, phentsize = "HHIIIIIHHHHHH", 32
    phoff = 16 + struct.calcsize(order + ehdr_fmt)
    header = struct.pack(order + ehdr_fmt, 2, 62, 1, 0x400000, phoff, 0, 0, phoff, phentsize, 2, 0, 0, 0)
    second = 3 if interp else 4
    phdrs = b"".join(struct.pack(order + "I", t) + bytes(phentsize - 4) for t in (1, second))
    path.write_bytes(ident + header + phdrs)
    return path


@pytest.mark.parametrize("elf_class", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
def test_is_static_elf_looks_for_an_interpreter(tmp_path: Path, elf_class: int, order: str) -> None:
    static = _elf(tmp_path / "static", interp=False, elf_class=elf_class, order=order)
    dynamic = _elf(tmp_path / "dynamic", interp=True, elf_class=elf_class, order=order)
    assert is_static_elf(static)
    assert not is_static_elf(dynamic)


def test_is_static_elf_rejects_what_is_not_elf(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(b"\x7fELF\x02\x01\x01")
    assert not is_static_elf(script)
    assert not is_static_elf(truncated)


def test_a_dynamic_executable_of_the_host_is_not_static() -> None:
    # Debian's coreutils are linked against libc, so they name ld-linux as their interpreter.
    assert not is_static_elf(os.path.realpath("/bin/ls"))


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    try:
        source = busybox_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    dest = tmp_path_factory.mktemp("rootfs") / "busybox.tar"
    build_rootfs_tar(dest, extra_files={"etc/motd": b"hello\n"})
    return source, dest


def test_busybox_path_is_static(rootfs: tuple[str, Path]) -> None:
    source, _ = rootfs
    assert is_static_elf(source)
    assert os.access(source, os.X_OK)


def test_rootfs_holds_the_busybox_binary(rootfs: tuple[str, Path]) -> None:
    source, dest = rootfs
    with tarfile.open(dest) as tar:
        member = tar.getmember("bin/busybox")
        assert member.isreg()
        assert member.mode & 0o111 == 0o111
        assert (member.uid, member.gid) == (0, 0)
        f = tar.extractfile(member)
        assert f is not None
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(Path(source).read_bytes()).digest()


def test_rootfs_links_every_applet(rootfs: tuple[str, Path]) -> None:
    _, dest = rootfs
    with tarfile.open(dest) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for applet in ("sh", "true", "ls", "cat", "sleep", "env"):
        link = members[f"bin/{applet}"]
        assert link.issym()
        assert link.linkname == "busybox"
    assert members["usr/bin/env"].linkname == "../../bin/busybox"
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())


def test_rootfs_directories_and_modes(rootfs: tuple[str, Path]) -> None:
    _, dest = rootfs
    with tarfile.open(dest) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "home", "usr/bin"):
        assert members[name].isdir(), name
    assert stat.S_IMODE(members["tmp"].mode) == 0o1777
    assert stat.S_IMODE(members["root"].mode) == 0o700


def test_rootfs_users_and_groups(rootfs: tuple[str, Path]) -> None:
    _, dest = rootfs
    with tarfile.open(dest) as tar:
        passwd = tar.extractfile("etc/passwd")
        group = tar.extractfile("etc/group")
        motd = tar.extractfile("etc/motd")
        assert passwd is not None and group is not None and motd is not None
        passwd_lines = passwd.read().decode().splitlines()
        group_lines = group.read().decode().splitlines()
        assert motd.read() == b"hello\n"
    assert "root:x:0:0:root:/root:/bin/sh" in passwd_lines
    assert any(line.startswith("nobody:x:65534:65534:") for line in passwd_lines)
    assert "root:x:0:" in group_lines
    assert "nogroup:x:65534:" in group_lines


def test_rootfs_is_reproducible(rootfs: tuple[str, Path], tmp_path: Path) -> None:
    source, dest = rootfs
    again = tmp_path / "again.tar"
    build_rootfs_tar(again, source, extra_files={"etc/motd": b"hello\n"})
    assert again.read_bytes() == dest.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.root
def test_rootfs_runs_as_a_chroot(rootfs: tuple[str, Path], tmp_path: Path) -> None:
    """The extracted tree is usable: /bin/sh inside it runs applets through their symlinks."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    _, dest = rootfs
    root = tmp_path / "root"
    with tarfile.open(dest) as tar:
        tar.extractall(root, filter="tar")
    script = "test -d /tmp && id -un > /tmp/out && /usr/bin/env true"
    result = subprocess.run(["chroot", str(root), "/bin/sh", "-c", script], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert (root / "tmp" / "out").read_text() == "root\n"
