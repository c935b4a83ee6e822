"""The v1 manager against the real kernel: limits must read back and really bite.

Needs root and cgroup v1 mounted at /sys/fs/cgroup/<controller>; skipped elsewhere.
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

from daemon.runtime.cgroups import Resources, V1Manager, detect

MiB = 1024 * 1024


def _v1_memory_mounted() -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                fstype = fields[fields.index("-") + 1]
                if fields[4] == "/sys/fs/cgroup/memory" and fstype == "cgroup":
                    return True
    except OSError:
        pass
    return False


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or not _v1_memory_mounted(),
        reason="needs root and cgroup v1 mounted at /sys/fs/cgroup/memory",
    ),
]


class Cgroup:
    """A throwaway cgroup plus the processes started in it."""

    def __init__(self, manager: V1Manager, name: str) -> None:
        self.m = manager
        self.name = name
        self.procs: list[subprocess.Popen[bytes]] = []

    def file(self, controller: str, filename: str) -> str:
        return Path(self.m.paths(self.name)[controller], filename).read_text().strip()

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
    m = detect()
    assert isinstance(m, V1Manager)
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
        for d in set(m.paths("pydockerd-test").values()):
            with suppress(OSError):  # another test may still use it
                os.rmdir(d)
        assert not m.exists(c.name)


def test_limits_read_back_from_the_kernel(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=64 * MiB, pids_limit=20, nano_cpus=500_000_000, cpu_shares=512))
    assert cg.file("memory", "memory.limit_in_bytes") == "67108864"
    if os.path.exists(os.path.join(cg.m.paths(cg.name)["memory"], "memory.memsw.limit_in_bytes")):
        assert cg.file("memory", "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert cg.file("pids", "pids.max") == "20"
    assert cg.file("cpu", "cpu.cfs_quota_us") == "50000"
    assert cg.file("cpu", "cpu.cfs_period_us") == "100000"
    assert cg.file("cpu", "cpu.shares") == "512"
    assert cg.file("cpuset", "cpuset.cpus") == Path("/sys/fs/cgroup/cpuset/cpuset.cpus").read_text().strip()

    p = cg.spawn("exec sleep 30")
    assert cg.m.pids(cg.name) == [p.pid]
    membership = Path(f"/proc/{p.pid}/cgroup").read_text()
    assert f":memory:/{cg.name}\n" in membership
    assert f":pids:/{cg.name}\n" in membership
    assert cg.m.stats(cg.name)["pids"] == {"current": 1, "limit": 20}


def test_update_raises_and_lowers_memory(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=64 * MiB))
    cg.m.update(cg.name, Resources(memory=512 * MiB, pids_limit=7))
    assert cg.file("memory", "memory.limit_in_bytes") == str(512 * MiB)
    assert cg.file("pids", "pids.max") == "7"
    cg.m.update(cg.name, Resources(memory=32 * MiB, memory_swap=40 * MiB))
    assert cg.file("memory", "memory.limit_in_bytes") == str(32 * MiB)
    memsw = os.path.join(cg.m.paths(cg.name)["memory"], "memory.memsw.limit_in_bytes")
    if os.path.exists(memsw):
        assert cg.file("memory", "memory.memsw.limit_in_bytes") == str(40 * MiB)
    cg.m.update(cg.name, Resources())
    assert int(cg.file("memory", "memory.limit_in_bytes")) > 1 << 62
    assert cg.file("pids", "pids.max") == "max"


def test_cpuset_restricts_cpus(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(cpuset_cpus="0"))
    assert cg.file("cpuset", "cpuset.cpus") == "0"
    p = cg.spawn("exec sleep 30")
    assert os.sched_getaffinity(p.pid) == {0}


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
    assert int(cg.file("pids", "pids.current")) <= 20
    events = dict(line.split() for line in cg.file("pids", "pids.events").splitlines())
    assert int(events["max"]) > 0


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
    p = cg.spawn(f"exec {sys.executable} {script}")
    deadline = time.monotonic() + 10
    while _counter(out) < 5:
        assert time.monotonic() < deadline, "the loop never started"
        time.sleep(0.02)

    cg.m.freeze(cg.name)
    assert cg.m.is_frozen(cg.name)
    assert cg.file("freezer", "freezer.state") == "FROZEN"
    state = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state == "D"
    before = _counter(out)
    time.sleep(0.3)
    assert _counter(out) == before

    cg.m.thaw(cg.name)
    assert not cg.m.is_frozen(cg.name)
    deadline = time.monotonic() + 10
    while _counter(out) <= before:
        assert time.monotonic() < deadline, "the loop did not resume"
        time.sleep(0.02)


def test_oom_kill_is_reported(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=8 * MiB))
    assert not cg.m.oom_killed(cg.name)
    p = cg.spawn(f"exec {sys.executable} -c \"b = b'x' * (64 * 1024 * 1024)\"")
    assert p.wait(timeout=30) == -9
    assert cg.m.oom_killed(cg.name)


def test_remove_kills_frozen_processes_and_leaves_no_dirs(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(pids_limit=10))
    p = cg.spawn("sleep 30 & sleep 30 & wait")
    deadline = time.monotonic() + 5
    while len(cg.m.pids(cg.name)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cg.m.freeze(cg.name)
    cg.m.remove(cg.name)
    assert p.wait(timeout=10) == -9
    assert not cg.m.exists(cg.name)
    for d in cg.m.paths(cg.name).values():
        assert not os.path.exists(d)


def test_a_process_joins_every_hierarchy_itself(cg: Cgroup) -> None:
    cg.m.create(cg.name, Resources(memory=64 * MiB))
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
        joined = {line.split(":")[1] for line in lines if line.endswith("/" + cg.name)}
        assert {"memory", "pids", "freezer", "cpuset"} <= joined, lines
        assert str(pid) in cg.file("memory", "cgroup.procs").split()
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(read_end)
        os.close(write_end)
