"""remove_tree and tree_size on trees a container could build: deeper than Python's recursion limit,
deeper than PATH_MAX, wide, with hard links, symlinks out and a mount point inside."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.files.trees import remove_tree, tree_size
from tests.deep_trees import make_chain


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def _no_deep_leftovers(tmp_path: Path) -> Iterator[None]:
    """pytest's own clean-up of old temporary directories recurses: a deep tree left behind would
    break the next pytest run on this machine (anyone's)."""
    yield
    for entry in tmp_path.iterdir():
        remove_tree(entry)


def test_python_recursion_cannot_remove_1500_levels_but_remove_tree_can(tmp_path: Path) -> None:
    top = tmp_path / "upper"
    top.mkdir()
    make_chain(top, 1500, payload=b"x" * 10)
    with pytest.raises(RecursionError):  # why this module exists (ignore_errors does not help)
        shutil.rmtree(top, ignore_errors=True)
    remove_tree(top)
    assert not top.exists()


def test_remove_tree_beyond_path_max(tmp_path: Path) -> None:
    top = tmp_path / "upper"
    top.mkdir()
    make_chain(top, 3000, name="dd")  # 3 bytes a level: 9,000 bytes of path, over PATH_MAX (4096)
    before = open_fds()
    remove_tree(top)
    assert not top.exists()
    assert open_fds() == before


def test_size_of_a_tree_beyond_path_max(tmp_path: Path) -> None:
    top = tmp_path / "upper"
    top.mkdir()
    make_chain(top, 3000, name="dd", payload=b"y" * 1234)
    (top / "a").write_bytes(b"z" * 100)
    size = tree_size(top)
    assert size.complete
    assert size.bytes == 1234 + 100
    assert size.entries == 3000 + 2  # the directories, the file at the bottom and a


def test_size_counts_like_docker(tmp_path: Path) -> None:
    top = tmp_path / "upper"
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / "f").write_bytes(b"1" * 10)
    (top / "sub" / "g").write_bytes(b"2" * 20)
    os.link(top / "sub" / "g", top / "sub" / "deeper" / "g-again")  # a hard link counts once
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"3" * 5000)
    os.symlink(outside, top / "link-to-dir")  # never followed: its own size only
    os.symlink(outside / "big", top / "link-to-file")
    link_sizes = sum(os.lstat(top / n).st_size for n in ("link-to-dir", "link-to-file"))
    size = tree_size(top)
    assert size.complete
    assert size.bytes == 10 + 20 + link_sizes
    remove_tree(top)
    assert not top.exists()
    assert (outside / "big").stat().st_size == 5000  # removal did not follow the symlinks either


def test_wide_directory(tmp_path: Path) -> None:
    top = tmp_path / "upper"
    wide = top / "wide"
    wide.mkdir(parents=True)
    for i in range(5000):
        (wide / f"f{i}").write_bytes(b"a")
        if i % 100 == 0:
            (wide / f"d{i}" / "x").mkdir(parents=True)
    assert tree_size(top).bytes == 5000
    remove_tree(top)
    assert not top.exists()


def test_size_walk_is_bounded(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"f{i}").write_bytes(b"abc")
    size = tree_size(tmp_path, max_entries=10)
    assert not size.complete
    assert size.entries == 10
    assert size.bytes <= 30


def test_remove_below_a_directory_fd(tmp_path: Path) -> None:
    (tmp_path / "parent").mkdir()
    make_chain(tmp_path / "parent", 1500)
    fd = os.open(tmp_path / "parent", os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree("d", dir_fd=fd)
    finally:
        os.close(fd)
    assert os.listdir(tmp_path / "parent") == []


def test_missing_and_non_directories(tmp_path: Path) -> None:
    assert tree_size(tmp_path / "absent").bytes == 0
    remove_tree(tmp_path / "absent")
    (tmp_path / "file").write_bytes(b"x")
    remove_tree(tmp_path / "file")
    os.symlink("/", tmp_path / "root-link")
    remove_tree(tmp_path / "root-link")
    assert os.listdir(tmp_path) == []


@pytest.mark.root
def test_a_mount_inside_is_neither_entered_nor_emptied(tmp_path: Path) -> None:
    top = tmp_path / "upper"
    mnt = top / "a" / "mnt"
    mnt.mkdir(parents=True)
    (top / "a" / "file").write_bytes(b"x" * 7)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], check=True)
    try:
        (mnt / "precious").write_bytes(b"p" * 1000)
        assert tree_size(top).bytes == 7
        with pytest.raises(OSError):
            remove_tree(top)
        assert (mnt / "precious").read_bytes() == b"p" * 1000
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    remove_tree(top)  # once unmounted, the rest goes
    assert not top.exists()
