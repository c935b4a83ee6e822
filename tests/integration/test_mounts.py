"""Bind mounts against a real daemon: where their targets land, what a wrong one says, and the mount race.

The race of issue 5, kept as a test: a container that shares a writable bind with another swaps a path
component for a symlink to a host directory while the other starts. The daemon resolves, creates and
mounts the victim's targets before pivot_root, where an absolute symlink still means the host's root: done
by path strings, that creates directories and root-owned files on the host (runc's CVE-2021-30465 for
mounts, CVE-2024-45310 for created files). Nothing may ever appear in the host directory the links aim at.
"""

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.tools.busybox_rootfs import build_rootfs_tar
from tests.conftest import RunningDaemon

pytestmark = [pytest.mark.root, pytest.mark.integration]

STARTS = 60  # the old code fell to it within the first few starts here; every start is a fresh try
SECONDS = 150  # a bound for a slow shared machine: stop starting the victim after this long

# The attacker swaps, as fast as busybox can (its rm/mkdir/ln run inside the shell, without a fork):
#   sub       a directory, nothing, a symlink to the host target        (the victim binds under /shared/sub)
#   hostname  nothing, a symlink to a file in the host target           (the victim's /etc is the shared dir)
ATTACK = """
cd /shared
while :; do
  rm -rf sub; mkdir sub; rm -rf sub; ln -s {target} sub
  rm -f hostname; ln -s {target}/hostname hostname
done
"""


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"race-attacker-{tag}", f"race-victim-{tag}"


@pytest.fixture
def race_dir() -> Iterator[Path]:
    """/tmp/pyd-race-XXXX with shared/ (the bind both share), src/ (the victim's second bind) and target/."""
    base = Path(tempfile.mkdtemp(prefix="pyd-race-", dir="/tmp"))
    for sub in ("shared", "src", "target"):
        (base / sub).mkdir()
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_symlink_swaps_in_a_shared_bind_never_reach_the_host(daemon: RunningDaemon, race_dir: Path) -> None:
    shared, target = race_dir / "shared", race_dir / "target"
    attacker, victim = _names()
    try:
        daemon.docker(
            "run", "-d", "--name", attacker, "-v", f"{shared}:/shared",
            "busybox", "sh", "-c", ATTACK.format(target=target), check=True,
        )  # fmt: skip
        daemon.docker(
            "create", "--name", victim,
            "-v", f"{shared}:/shared", "-v", f"{race_dir / 'src'}:/shared/sub/x", "-v", f"{shared}:/etc",
            "busybox", "true", check=True,
        )  # fmt: skip
        started = failed = 0
        deadline = time.monotonic() + SECONDS
        for attempt in range(1, STARTS + 1):
            if time.monotonic() > deadline:
                break
            p = daemon.docker("start", "-a", victim, timeout=60)
            leaked = sorted(str(f.relative_to(target)) for f in target.rglob("*"))
            assert leaked == [], f"start {attempt} created {leaked} in the host's {target}"
            if p.returncode == 0:
                started += 1
            else:
                failed += 1
                _assert_clear_start_error(daemon, p)
        running = daemon.docker("inspect", "-f", "{{.State.Running}}", attacker).stdout.strip()
        assert running == b"true", "the attacker stopped: the race was not run"
        assert started > 0, f"no start of {started + failed} succeeded"
    finally:
        daemon.docker("rm", "-f", attacker, victim)


def _assert_clear_start_error(daemon: RunningDaemon, p: subprocess.CompletedProcess[bytes]) -> None:
    """A start that lost the race says so in Docker's words: a mount error, no Python, no daemon path."""
    err = p.stderr.decode()
    assert "error mounting" in err, err
    assert not re.search(r"[A-Za-z]+Error\b|Errno|Traceback", err), err
    assert str(daemon.data_root) not in err and str(daemon.exec_root) not in err, err


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="pyd-mnt-", dir="/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_a_bind_of_the_wrong_kind_is_refused_in_dockers_words(daemon: RunningDaemon, scratch: Path) -> None:
    (scratch / "file").write_text("x\n")
    (scratch / "dir").mkdir()
    for source, destination in ((scratch / "file", "/etc"), (scratch / "dir", "/etc/passwd")):
        p = daemon.docker("run", "--rm", "-v", f"{source}:{destination}", "busybox", "true")
        err = p.stderr.decode()
        assert p.returncode == 125, err
        assert (
            f'error mounting "{source}" to rootfs at "{destination}": not a directory: unknown: '
            "Are you trying to mount a directory onto a file (or vice-versa)? "
            "Check if the specified host path exists and is the expected type"
        ) in err
        assert not re.search(r"[A-Za-z]+Error\b|Errno|Traceback", err), err
        assert str(daemon.data_root) not in err and str(daemon.exec_root) not in err, err
    assert (scratch / "file").read_text() == "x\n" and list((scratch / "dir").iterdir()) == []


def test_an_image_symlink_at_a_bind_destination_is_followed_inside_the_container(
    daemon: RunningDaemon, scratch: Path
) -> None:
    """An image's own absolute symlink means a path in the container, not on the host."""
    target, source = scratch / "target", scratch / "src"
    target.mkdir()
    source.mkdir()
    (source / "seen").write_text("bound\n")
    tar = scratch / "image.tar"
    build_rootfs_tar(tar)
    with tarfile.open(tar, "a") as t:  # busybox, and /escape -> the host directory's path
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(target)
        t.addfile(link)
    image = f"pyd-mnt-link-{uuid.uuid4().hex[:8]}"
    daemon.docker("import", str(tar), image, check=True)
    try:
        p = daemon.docker("run", "--rm", "-v", f"{source}:/escape/data", image, "cat", f"{target}/data/seen")
        assert (p.returncode, p.stdout) == (0, b"bound\n"), p.stderr
        assert list(target.iterdir()) == []
    finally:
        daemon.docker("rmi", "-f", image)


def test_a_symlink_bind_source_binds_what_it_points_to(daemon: RunningDaemon, scratch: Path) -> None:
    (scratch / "real").mkdir()
    (scratch / "real" / "f").write_text("through the link\n")
    os.symlink(scratch / "real", scratch / "link")
    p = daemon.docker("run", "--rm", "-v", f"{scratch / 'link'}:/data:ro", "busybox", "cat", "/data/f")
    assert (p.returncode, p.stdout) == (0, b"through the link\n"), p.stderr
    assert (scratch / "link").is_symlink()


def test_the_container_inherits_no_descriptor_of_the_mount_work(daemon: RunningDaemon, scratch: Path) -> None:
    (scratch / "f").write_text("x\n")
    p = daemon.docker(
        "run", "--rm", "-v", f"{scratch}:/data:ro", "-v", f"{scratch / 'f'}:/etc/f", "busybox",
        "ls", "/proc/self/fd",
    )  # fmt: skip
    assert p.stdout.split() == [b"0", b"1", b"2", b"3"], p.stderr  # 3: the directory ls is reading


def test_an_image_symlink_cannot_steer_a_bind_into_proc(daemon: RunningDaemon, scratch: Path) -> None:
    """runc's checkProcMount applies where a bind really lands: `-v x:/data` on an image whose /data is a
    symlink to /proc/sys would hide the read-only /proc/sys under a writable directory of the user's."""
    source = scratch / "src"
    source.mkdir()
    tar = scratch / "image.tar"
    build_rootfs_tar(tar)
    with tarfile.open(tar, "a") as t:  # busybox, and /data -> /proc/sys
        link = tarfile.TarInfo("data")
        link.type, link.linkname = tarfile.SYMTYPE, "/proc/sys"
        t.addfile(link)
    image = f"pyd-mnt-proc-{uuid.uuid4().hex[:8]}"
    daemon.docker("import", str(tar), image, check=True)
    try:
        p = daemon.docker("run", "--rm", "-v", f"{source}:/data", image, "true")
        err = p.stderr.decode()
        assert p.returncode == 125, err
        assert (
            f'error mounting "{source}" to rootfs at "/data": "/proc/sys" cannot be mounted because it is '
            "inside /proc" in err
        )
        # the allowed lxcfs-style files stay allowed through the same resolution
        (scratch / "uptime").write_text("1.00 2.00\n")
        p = daemon.docker(
            "run", "--rm", "-v", f"{scratch / 'uptime'}:/proc/uptime:ro", image, "cat", "/proc/uptime"
        )
        assert (p.returncode, p.stdout) == (0, b"1.00 2.00\n"), p.stderr
    finally:
        daemon.docker("rmi", "-f", image)
