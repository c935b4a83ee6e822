"""The v2 manager against the real kernel, twin of test_cgroups_kernel_v1.py: limits must read back in
v2's files and really bite.

Runs on the host's cgroup2 mount: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one.
A test that sets limits needs their controllers enabled there and is skipped, saying which, where the
host binds them to v1. Freezing, killing and joining are core v2 files and run on any cgroup2 mount.
Needs root.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO

import pytest

from daemon.runtime.cgroups import Resources, V2Manager
from daemon.runtime.cgroups.v2 import unified_mount

MiB = 1024 * 1024


CGROUP2 = unified_mount()
CONTROLLERS = set(Path(CGROUP2, "cgroup.controllers").read_text().split()) if CGROUP2 else set()

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or CGROUP2 is None, reason="needs root and a cgroup2 mount"),
]


def needs(*controllers: str) -> pytest.MarkDecorator:
    missing = sorted(set(controllers) - CONTROLLERS)
    return pytest.mark.skipif(
        bool(missing),
        reason=f"the cgroup2 mount at {CGROUP2} has no {', '.join(missing)} controller (bound to cgroup v1 "
        "on this host, or not enabled at its root); a host with them on v2 runs this test",
    )


class Cgroup:
    """A throwaway cgroup plus the processes started in it."""

    def __init__(self, manager: V2Manager, name: str) -> None:
        self.m = manager
        self.name = name
        self.dir = Path(manager.paths(name)[""])
        self.procs: list[subprocess.Popen[bytes]] = []

    def file(self, filename: str) -> str:
        return (self.dir / filename).read_text().strip()

    def keyed(self, filename: str) -> dict[str, int]:
        return {k: int(v) for k, v in (line.split() for line in self.file(filename).splitlines())}

    def spawn(self, script: str, stderr: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
        """Start `sh -c script` inside the cgroup: it waits on stdin until it has been moved in,
        so nothing it forks escapes the limits."""
        p = subprocess.Popen(["sh", "-c", f"read _ ; {script}"], stdin=subprocess.PIPE, stderr=stderr)
        self.procs.append(p)
        self.m.add_process(self.name, p.pid)
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.close()
        return p


@pytest.fixture
def cg() -> Iterator[Cgroup]:
    assert CGROUP2 is not None
    m = V2Manager(CGROUP2)
    c = Cgroup(m, f"pydockerd-test/{secrets.token_hex(6)}")
    try:
        yield c
    finally:
        for p in c.procs:
            with suppress(ProcessLookupError):
                p.kill()
        m.remove(c.name)
        for p in c.procs:
            p.wait(timeout=10)
        with suppress(OSError):  # another test may still use it
            os.rmdir(c.dir.parent)
        assert not m.exists(c.name)


@needs("memory", "pids", "cpu", "cpuset")
def test_limits_read_back_from_the_kernel(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=64 * MiB, pids_limit=20, nano_cpus=500_000_000, cpu_shares=512))
    assert cg.file("memory.max") == str(64 * MiB)
    if (cg.dir / "memory.swap.max").exists():  # swap accounting on: Docker's default swap = memory
        assert cg.file("memory.swap.max") == str(64 * MiB)
    assert cg.file("pids.max") == "20"
    assert cg.file("cpu.max") == "50000 100000"
    assert cg.file("cpu.weight") == "20"  # shares 512 on runc's [2, 262144] -> [1, 10000] scale
    assert cg.file("cpuset.cpus") == ""  # none asked: the parent's set
    assert cg.file("cpuset.cpus.effective") == (cg.dir.parent / "cpuset.cpus.effective").read_text().strip()

    p = cg.spawn("exec sleep 30")
    assert cg.m.pids(cg.name) == [p.pid]
    assert f"0::/{cg.dir.relative_to(CGROUP2)}\n" in Path(f"/proc/{p.pid}/cgroup").read_text()
    assert cg.m.stats(cg.name)["pids"] == {"current": 1, "limit": 20}


@needs("memory", "pids")
def test_update_raises_and_lowers_memory(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=64 * MiB))
    cg.m.update(cg.name, Resources(memory=512 * MiB, pids_limit=7))
    assert cg.file("memory.max") == str(512 * MiB)
    assert cg.file("pids.max") == "7"
    cg.m.update(cg.name, Resources(memory=32 * MiB, memory_swap=40 * MiB))
    assert cg.file("memory.max") == str(32 * MiB)
    if (cg.dir / "memory.swap.max").exists():
        assert cg.file("memory.swap.max") == str(8 * MiB)  # v2 limits swap alone: 40 MiB - 32 MiB
    cg.m.update(cg.name, Resources())
    assert cg.file("memory.max") == "max"
    assert cg.file("pids.max") == "max"


@needs("cpuset")
def test_cpuset_restricts_cpus(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(cpuset_cpus="0"))
    assert cg.file("cpuset.cpus") == "0"
    p = cg.spawn("exec sleep 30")
    assert os.sched_getaffinity(p.pid) == {0}


@needs("pids")
def test_pids_limit_bounds_a_fork_bomb(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(pids_limit=20))
    with tempfile.TemporaryFile() as err:
        p = cg.spawn("for i in $(seq 30); do sleep 20 & done; wait", stderr=err)
        p.wait(timeout=15)
        err.seek(0)
        message = err.read().decode()
    assert p.returncode != 0
    assert "fork" in message.lower()
    assert 0 < len(cg.m.pids(cg.name)) <= 20
    assert int(cg.file("pids.current")) <= 20
    assert cg.keyed("pids.events")["max"] > 0


@needs("memory")
def test_oom_kill_is_reported(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=8 * MiB, memory_swap=8 * MiB))  # no swap to escape to
    assert not cg.m.oom_killed(cg.name)
    p = cg.spawn(f"exec {sys.executable} -c \"b = b'x' * (64 * 1024 * 1024)\"")
    assert p.wait(timeout=30) == -9
    assert cg.m.oom_killed(cg.name)
    assert cg.keyed("memory.events")["oom_kill"] >= 1


def _counter(path: Path) -> int:
    text = path.read_text()
    return int(text) if text.strip() else 0


def test_freeze_stops_a_process_and_thaw_resumes_it(cg: Cgroup, tmp_path: Path) -> None:
    cg.m.create(cg.name, Resources())
    out = tmp_path / "count"
    out.write_text("")
    loop = (
        "import time\ni = 0\nwhile True:\n    i += 1\n"
        f"    open({str(out)!r}, 'w').write(str(i))\n    time.sleep(0.01)\n"
    )
    script = tmp_path / "loop.py"
    script.write_text(loop)
    cg.spawn(f"exec {sys.executable} {script}")
    deadline = time.monotonic() + 10
    while _counter(out) < 5:
        assert time.monotonic() < deadline, "the loop never started"
        time.sleep(0.02)

    cg.m.freeze(cg.name)
    assert cg.m.is_frozen(cg.name)
    assert cg.file("cgroup.freeze") == "1"
    assert cg.keyed("cgroup.events")["frozen"] == 1
    before = _counter(out)
    time.sleep(0.3)
    assert _counter(out) == before

    cg.m.thaw(cg.name)
    assert not cg.m.is_frozen(cg.name)
    assert cg.keyed("cgroup.events")["frozen"] == 0
    deadline = time.monotonic() + 10
    while _counter(out) <= before:
        assert time.monotonic() < deadline, "the loop did not resume"
        time.sleep(0.02)


def test_remove_kills_frozen_processes_and_leaves_no_dirs(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources())
    p = cg.spawn("sleep 30 & sleep 30 & wait")
    deadline = time.monotonic() + 5
    while len(cg.m.pids(cg.name)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cg.m.freeze(cg.name)
    cg.m.remove(cg.name)
    assert p.wait(timeout=10) == -9
    assert not cg.m.exists(cg.name)
    assert not cg.dir.exists()


def test_a_process_joins_the_cgroup_itself(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources())
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child moves itself, as a container's first process does
        code = 0
        try:
            cg.m.join_self(cg.name)
        except BaseException:
            code = 1
        os.write(write_end, b"x")
        time.sleep(5)
        os._exit(code)
    try:
        os.read(read_end, 1)
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        assert f"0::/{cg.dir.relative_to(CGROUP2)}" in lines, lines
        assert cg.file("cgroup.procs").split() == [str(pid)]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(read_end)
        os.close(write_end)
