"""safepath: paths resolved and created inside a root through descriptors, against hostile symlinks.

Every test runs twice: with openat2 (the kernel resolves inside the root) and with the walk that kernels
without it use (forced here with use_openat2=False).
"""

import errno
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.runtime import linux, safepath
from daemon.runtime.safepath import Handle, Root


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def use_openat2(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A root with an /etc, and a directory outside it that must stay empty whatever the root holds."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    outside.mkdir()
    return root, outside


@pytest.fixture
def root(tree: tuple[Path, Path], use_openat2: bool) -> Iterator[Root]:
    with Root(str(tree[0]), use_openat2=use_openat2) as r:
        yield r


def where(handle: Handle) -> str:
    """The kernel's name for what the handle holds."""
    with handle:
        return os.readlink(handle.proc_path)


def test_absolute_and_climbing_symlinks_resolve_inside_the_root(tree: tuple[Path, Path], root: Root) -> None:
    top, _ = tree
    os.symlink("/etc", top / "abs")
    os.symlink("../../../../../etc", top / "rel")
    os.symlink("/../../etc/../etc/./passwd", top / "file")
    passwd = str(top / "etc" / "passwd")
    assert where(root.open("/abs/passwd")) == passwd
    assert where(root.open("rel/passwd")) == passwd
    assert where(root.open("/file")) == passwd
    assert where(root.open("/../../../etc/passwd")) == passwd
    assert where(root.open("/")) == str(top)


def test_creation_through_symlinks_to_the_host_stays_in_the_root(tree: tuple[Path, Path], root: Root) -> None:
    top, outside = tree
    os.symlink(str(outside), top / "link")  # absolute: before pivot_root, the host's directory
    os.symlink(f"{outside}/hostname", top / "etc" / "hostname")  # dangling, into the host
    assert where(root.mkdir_all("/link/a/b")) == f"{top}{outside}/a/b"
    assert where(root.create_file("/etc/hostname")) == f"{top}{outside}/hostname"
    assert list(outside.iterdir()) == []


def test_symlink_loops_are_refused(tree: tuple[Path, Path], root: Root) -> None:
    top, _ = tree
    os.symlink("b", top / "a")
    os.symlink("a", top / "b")
    os.symlink("self/x", top / "self")
    for call in (root.open, root.mkdir_all, root.create_file):
        for path in ("/a/x", "/self"):
            with pytest.raises(OSError) as e:
                call(path)
            assert e.value.errno == errno.ELOOP


def test_kinds_are_checked(tree: tuple[Path, Path], root: Root) -> None:
    with pytest.raises(NotADirectoryError):
        root.mkdir_all("/etc/passwd")
    with pytest.raises(NotADirectoryError):
        root.mkdir_all("/etc/passwd/below")
    with pytest.raises(NotADirectoryError):
        root.create_file("/etc/passwd/below")
    with pytest.raises(IsADirectoryError):
        root.create_file("/etc")
    with root.create_file("/etc/passwd") as h:  # an existing file is kept as it is
        assert not h.is_dir() and h.stat.st_size > 0


def test_errors_name_the_path_in_the_root_only(tree: tuple[Path, Path], root: Root) -> None:
    with pytest.raises(FileNotFoundError) as e:
        root.open("/missing/file")
    assert e.value.filename == "/missing/file"
    assert str(tree[0]) not in str(e.value)


def test_created_things_have_the_modes_asked_and_parents_like_mkdir_p(
    tree: tuple[Path, Path], root: Root
) -> None:
    top, _ = tree
    old = os.umask(0)
    try:
        root.mkdir_all("/a/b", 0o700).close()
        root.create_file("/c/d/f", 0o600).close()
    finally:
        os.umask(old)
    assert (top / "a" / "b").stat().st_mode & 0o7777 == 0o700
    assert (top / "a").stat().st_mode & 0o7777 == 0o755
    assert (top / "c" / "d").stat().st_mode & 0o7777 == 0o755
    assert (top / "c" / "d" / "f").stat().st_mode & 0o7777 == 0o600


def test_a_handle_keeps_its_object_when_the_path_is_swapped(tree: tuple[Path, Path], root: Root) -> None:
    top, outside = tree
    with root.mkdir_all("/data/dir") as h:
        os.rename(top / "data", top / "moved")
        os.symlink(str(outside), top / "data")  # the same name now leads to the host
        os.mkdir("made-through-handle", dir_fd=h.fd)
        assert h.parent is not None
        assert h.name == "dir"
        assert os.path.isdir(top / "moved" / "dir" / "made-through-handle")
    with root.create_file("/data/dir/f") as h:  # resolved afresh: inside the root again
        assert os.readlink(h.proc_path) == f"{top}{outside}/dir/f"
    assert list(outside.iterdir()) == []


def test_reopen_reads_and_writes_the_object_itself(tree: tuple[Path, Path], root: Root) -> None:
    top, _ = tree
    with root.create_file("/etc/hosts") as h:
        fd = h.reopen(os.O_WRONLY)
        os.write(fd, b"127.0.0.1 localhost\n")
        os.close(fd)
    assert (top / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_magic_links_are_not_followed(use_openat2: bool) -> None:
    with Root("/", use_openat2=use_openat2) as host:
        with host.open("/proc/self/status") as h:  # /proc/self is a plain link of procfs
            assert not h.is_dir()
        with pytest.raises(OSError) as e:
            host.open("/proc/self/root/etc")  # .../root is a magic link: its text is not where it leads
        assert e.value.errno == errno.ELOOP


def test_without_openat2_the_walk_takes_over(
    tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    top, outside = tree
    calls = []

    def missing(*args: object) -> int:
        calls.append(args)
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(linux, "openat2", missing)
    os.symlink(str(outside), top / "link")
    with Root(str(top)) as r:
        assert where(r.mkdir_all("/link/x")) == f"{top}{outside}/x"
        assert not r.use_openat2
        r.open("/etc/passwd").close()
    assert len(calls) == 1  # found missing once, then never asked again
    assert list(outside.iterdir()) == []


RACE_TRIES = 2000  # the string-based resolution this replaced leaked within a few hundred here
RACE_SECONDS = 20


def test_a_racing_symlink_swap_never_leads_out(tree: tuple[Path, Path], root: Root) -> None:
    """What another container does to a shared volume: swap a component between a directory, nothing and
    a symlink to the host, while we create below it. The swapper is another process (a thread would
    only run between our steps, under the GIL); the tries are bounded in count and time."""
    top, outside = tree
    shared = top / "shared"
    shared.mkdir()
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs busybox (the busybox-static package)")
    loop = f"cd {shared}; while :; do rm -rf sub; mkdir sub; rm -rf sub; ln -s {outside} sub; done"
    swapper = subprocess.Popen([busybox, "sh", "-c", loop], stderr=subprocess.DEVNULL)
    made = failed = 0
    try:
        deadline = time.monotonic() + RACE_SECONDS
        for _ in range(RACE_TRIES):
            if time.monotonic() > deadline:
                break
            for call, path in ((root.mkdir_all, "/shared/sub/x/y"), (root.create_file, "/shared/sub/f")):
                try:
                    found = where(call(path))
                except OSError:
                    failed += 1  # lost the race, cleanly: what we made was removed under us
                    continue
                made += 1
                assert found.startswith(f"{top}/"), found
            assert list(outside.iterdir()) == []
    finally:
        swapper.kill()
        swapper.wait()
    assert swapper.returncode == -signal.SIGKILL  # it ran all along
    assert made > 0, f"all {failed} tries failed"


def test_components_drop_empty_and_dot() -> None:
    assert safepath.components("//a/./b/../c/") == ["a", "b", "..", "c"]
    assert safepath.components("/") == []
