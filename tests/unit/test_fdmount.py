"""fdmount and rootfs's bind step against the real kernel, each in a child process with a mount namespace
of its own (nothing it mounts is seen by the host, and everything goes when it exits)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.root

PRELUDE = """
import errno, json, os, stat, sys
from daemon.runtime import fdmount, linux, rootfs
from daemon.runtime.safepath import Root
linux.unshare(linux.CLONE_NEWNS)
linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
top = sys.argv[1]
out = {}
"""


def in_mount_namespace(script: str, top: Path, use_openat2: bool = True) -> dict[str, object]:
    """Run `script` (after PRELUDE) in a child with its own mount namespace; what it put in `out`."""
    setup = f"use_openat2 = {use_openat2}\n"
    code = PRELUDE + setup + textwrap.dedent(script) + "\nprint(json.dumps(out))\n"
    command = [sys.executable, "-c", code, str(top)]
    p = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    result: dict[str, object] = json.loads(p.stdout)
    return result


@pytest.fixture
def top(tmp_path: Path) -> Path:
    for d in ("root/etc", "src/sub", "outside"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "src" / "file").write_text("from the host\n")
    (tmp_path / "hostname").write_text("ctr\n")
    return tmp_path


def test_read_only_bind_is_read_only_on_the_bound_tree(top: Path) -> None:
    out = in_mount_namespace(
        """
        root = Root(top + "/root")
        rootfs.bind_into(root, top + "/src", "/data/in", readonly=True)
        try:
            os.mkdir(top + "/root/data/in/new")
            out["mkdir"] = "ok"
        except OSError as e:
            out["mkdir"] = errno.errorcode[e.errno]
        out["read"] = open(top + "/root/data/in/file").read()
        """,
        top,
    )
    assert out == {"mkdir": "EROFS", "read": "from the host\n"}
    assert not (top / "src" / "new").exists()
    assert (top / "root" / "data" / "in").is_dir()  # the mount point, made inside the root


def test_read_only_without_mount_setattr_still_holds(top: Path) -> None:
    out = in_mount_namespace(
        """
        def missing(path):
            raise OSError(errno.ENOSYS, "Function not implemented")
        linux.make_tree_readonly = missing  # a kernel before 5.12: the remount fallback
        root = Root(top + "/root")
        rootfs.bind_into(root, top + "/src", "/data", readonly=True)
        try:
            open(top + "/root/data/new", "w")
            out["write"] = "ok"
        except OSError as e:
            out["write"] = errno.errorcode[e.errno]
        """,
        top,
    )
    assert out == {"write": "EROFS"}


@pytest.mark.parametrize("use_openat2", [True, False], ids=["openat2", "walk"])
def test_file_binds_and_kind_mismatches(top: Path, use_openat2: bool) -> None:
    out = in_mount_namespace(
        """
        root = Root(top + "/root", use_openat2=use_openat2)
        rootfs.bind_into(root, top + "/hostname", "/etc/hostname", readonly=False, recursive=False)
        out["hostname"] = open(top + "/root/etc/hostname").read()
        for source, dest in ((top + "/hostname", "/etc"), (top + "/src", "/etc/hostname")):
            try:
                rootfs.bind_into(root, source, dest, readonly=False)
            except rootfs.StartError as e:
                out[dest] = str(e)
        """,
        top,
        use_openat2,
    )
    assert out["hostname"] == "ctr\n"
    assert out["/etc"] == (
        f'error during container init: error mounting "{top}/hostname" to rootfs at "/etc": not a directory'
    )
    assert out["/etc/hostname"] == (
        f'error during container init: error mounting "{top}/src" to rootfs at "/etc/hostname": '
        "not a directory"
    )


@pytest.mark.parametrize("use_openat2", [True, False], ids=["openat2", "walk"])
def test_bind_targets_through_symlinks_to_the_host_stay_in_the_root(top: Path, use_openat2: bool) -> None:
    outside = top / "outside"
    os.symlink(str(outside), top / "root" / "link")
    os.symlink(f"{outside}/hosts", top / "root" / "etc" / "hosts")
    in_mount_namespace(
        """
        root = Root(top + "/root", use_openat2=use_openat2)
        rootfs.bind_into(root, top + "/src", "/link/data", readonly=False)
        rootfs.bind_into(root, top + "/hostname", "/etc/hosts", readonly=False, recursive=False)
        """,
        top,
        use_openat2,
    )
    assert list(outside.iterdir()) == []
    assert (top / "root" / str(outside).lstrip("/") / "data").is_dir()
    assert (top / "root" / str(outside).lstrip("/") / "hosts").is_file()


def test_the_top_of_a_mount_is_refused_once_its_name_was_swapped(top: Path) -> None:
    """Between the mount and the reopen of its top, another container renames the mount point away and
    puts a directory of its own in its place (a rename from another mount namespace is allowed)."""
    script = """
        root = Root(top + "/root")
        source = fdmount.open_source(top + "/src")
        with root.mkdir_all("/shared/x") as target:
            linux.mount(f"/proc/self/fd/{source}", target.proc_path, None, linux.MS_BIND)
            print("mounted", flush=True)
            sys.stdin.readline()  # the host swaps the name meanwhile
            try:
                fdmount.open_top(target, expect=(os.fstat(source).st_dev, os.fstat(source).st_ino))
                out["top"] = "found"
            except OSError as e:
                out["top"] = errno.errorcode[e.errno]
    """
    code = PRELUDE + textwrap.dedent(script) + "\nprint(json.dumps(out))\n"
    command = [sys.executable, "-c", code, str(top)]
    child = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "mounted\n"
        os.rename(top / "root" / "shared" / "x", top / "root" / "shared" / "moved")
        (top / "root" / "shared" / "x").mkdir()
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
    assert result == {"top": "EBUSY"}


def test_a_fresh_file_system_is_reached_through_its_top(top: Path) -> None:
    out = in_mount_namespace(
        """
        root = Root(top + "/root")
        with root.mkdir_all("/dev") as target:
            fdmount.mount_fs("tmpfs", target, 0, "mode=755")
            top_fd = fdmount.open_top(target)
        out["type"] = linux.filesystem_type(top_fd)
        os.mkdir("pts", dir_fd=top_fd)
        out["listed"] = os.listdir(top + "/root/dev")
        """,
        top,
    )
    assert out == {"type": 0x01021994, "listed": ["pts"]}  # TMPFS_MAGIC
    assert not (top / "root" / "dev" / "pts").exists()  # it went into the tmpfs, not under it
