"""cgroup v2 manager against a plain directory standing in for /sys/fs/cgroup."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.runtime.cgroups import CgroupError, Resources, V2Manager, detect
from daemon.runtime.cgroups import v2 as v2mod

MiB = 1024 * 1024
NAME = "pydockerd/abc123"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return tmp_path


@pytest.fixture
def mgr(root: Path) -> V2Manager:
    m = detect(str(root))
    assert isinstance(m, V2Manager)
    return m


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "60"])
    yield p
    p.kill()
    p.wait()


def read(path: Path) -> str:
    return path.read_text().strip()


def test_detect_picks_v2_and_reads_controllers(mgr: V2Manager, root: Path) -> None:
    assert mgr.version == 2
    assert mgr.controllers == {"cpuset", "cpu", "io", "memory", "pids"}
    assert mgr.paths(NAME) == {"": str(root / "pydockerd" / "abc123")}


def test_create_enables_controllers_in_every_ancestor(mgr: V2Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    expected = "+cpu +cpuset +io +memory +pids"
    assert read(root / "cgroup.subtree_control") == expected
    assert read(root / "pydockerd" / "cgroup.subtree_control") == expected
    # the leaf holds processes, so it must not enable controllers for children
    assert not (root / "pydockerd" / "abc123" / "cgroup.subtree_control").exists()
    assert mgr.exists(NAME)


def test_create_enables_only_available_controllers(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids hugetlb\n")
    m = detect(str(tmp_path))
    m.create(NAME, Resources(memory=64 * MiB))
    assert read(tmp_path / "cgroup.subtree_control") == "+memory +pids"
    leaf = tmp_path / "pydockerd" / "abc123"
    assert read(leaf / "memory.max") == str(64 * MiB)
    assert not (leaf / "cpu.max").exists()


def test_limit_for_missing_controller_fails_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    m = detect(str(tmp_path))
    with pytest.raises(CgroupError, match="cpu cgroup controller is not available"):
        m.create(NAME, Resources(nano_cpus=10**9))
    assert not m.exists(NAME)


def test_create_writes_each_limit(mgr: V2Manager, root: Path) -> None:
    res = Resources(
        memory=64 * MiB,
        memory_reservation=32 * MiB,
        cpu_shares=512,
        nano_cpus=500_000_000,
        cpuset_cpus="0-1",
        cpuset_mems="0",
        pids_limit=20,
    )
    mgr.create(NAME, res)
    leaf = root / "pydockerd" / "abc123"
    assert read(leaf / "memory.max") == "67108864"
    assert read(leaf / "memory.low") == "33554432"
    assert read(leaf / "cpu.max") == "50000 100000"
    assert read(leaf / "cpu.weight") == "20"  # 1 + (510 * 9999) // 262142
    assert read(leaf / "cpuset.cpus") == "0-1"
    assert read(leaf / "cpuset.mems") == "0"
    assert read(leaf / "pids.max") == "20"
    # swap accounting is off here (no memory.swap.max): skipped, not created
    assert not (leaf / "memory.swap.max").exists()


def test_unset_resources_mean_unlimited(mgr: V2Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    leaf = root / "pydockerd" / "abc123"
    assert read(leaf / "memory.max") == "max"
    assert read(leaf / "memory.low") == "0"
    assert read(leaf / "cpu.max") == "max 100000"
    assert read(leaf / "cpu.weight") == "100"
    assert read(leaf / "pids.max") == "max"
    assert not (leaf / "cpuset.cpus").exists()


@pytest.mark.parametrize(
    ("memory_swap", "expected"),
    [(0, str(64 * MiB)), (-1, "max"), (64 * MiB, "0"), (100 * MiB, str(36 * MiB))],
)
def test_swap_max_is_swap_beyond_memory(mgr: V2Manager, root: Path, memory_swap: int, expected: str) -> None:
    leaf = root / "pydockerd" / "abc123"
    leaf.mkdir(parents=True)
    (leaf / "memory.swap.max").write_text("max\n")  # this kernel accounts swap
    mgr.create(NAME, Resources(memory=64 * MiB, memory_swap=memory_swap))
    assert read(leaf / "memory.swap.max") == expected


def test_update_rewrites_limits(mgr: V2Manager, root: Path) -> None:
    leaf = root / "pydockerd" / "abc123"
    mgr.create(NAME, Resources(memory=64 * MiB, pids_limit=5, cpuset_cpus="1", cpu_quota=20000))
    mgr.update(NAME, Resources(memory=128 * MiB, pids_limit=0, cpu_period=50000, cpu_quota=25000))
    assert read(leaf / "memory.max") == str(128 * MiB)
    assert read(leaf / "pids.max") == "max"
    assert read(leaf / "cpu.max") == "25000 50000"
    assert read(leaf / "cpuset.cpus") == ""  # back to the parent's set
    with pytest.raises(CgroupError, match="does not exist"):
        mgr.update("pydockerd/missing", Resources())


def test_freeze_waits_for_the_kernel_to_report_frozen(mgr: V2Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    leaf = root / "pydockerd" / "abc123"
    events = leaf / "cgroup.events"
    events.write_text("populated 1\nfrozen 0\n")

    def kernel_freezes_later() -> None:
        time.sleep(0.2)
        events.write_text("populated 1\nfrozen 1\n")

    t = threading.Thread(target=kernel_freezes_later)
    start = time.monotonic()
    t.start()
    mgr.freeze(NAME)
    elapsed = time.monotonic() - start
    t.join()
    assert elapsed >= 0.15
    assert read(leaf / "cgroup.freeze") == "1"
    assert mgr.is_frozen(NAME)

    events.write_text("populated 1\nfrozen 0\n")
    mgr.thaw(NAME)
    assert read(leaf / "cgroup.freeze") == "0"
    assert not mgr.is_frozen(NAME)


def test_freeze_times_out_and_undoes(root: Path) -> None:
    mgr = V2Manager(str(root), freeze_timeout=0.1)
    mgr.create(NAME, Resources())
    leaf = root / "pydockerd" / "abc123"
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    with pytest.raises(CgroupError, match="timed out freezing"):
        mgr.freeze(NAME)
    assert read(leaf / "cgroup.freeze") == "0"
    assert not mgr.is_frozen(NAME)


def test_oom_killed_reads_memory_events(mgr: V2Manager, root: Path) -> None:
    mgr.create(NAME, Resources(memory=64 * MiB))
    events = root / "pydockerd" / "abc123" / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not mgr.oom_killed(NAME)
    events.write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")
    assert mgr.oom_killed(NAME)


def test_add_process_and_pids(mgr: V2Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    leaf = root / "pydockerd" / "abc123"
    mgr.add_process(NAME, 4242)
    assert read(leaf / "cgroup.procs") == "4242"
    (leaf / "sub").mkdir()
    (leaf / "sub" / "cgroup.procs").write_text("77\n4242\n")
    assert mgr.pids(NAME) == [77, 4242]
    assert mgr.pids("pydockerd/other") == []
    with pytest.raises(CgroupError, match=r"cannot add process 1 to cgroup .*other.*does not exist"):
        mgr.add_process("pydockerd/other", 1)


def test_remove_kills_processes_and_removes_dirs(
    mgr: V2Manager, root: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    mgr.create(NAME, Resources())
    leaf = root / "pydockerd" / "abc123"
    (leaf / "nested").mkdir()
    (leaf / "nested" / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    mgr.remove(NAME)
    assert sleeper.wait(timeout=5) == -9
    assert not leaf.exists()
    assert (root / "pydockerd").is_dir()  # shared parent stays
    assert not mgr.exists(NAME)
    mgr.remove(NAME)  # already gone: fine


def test_remove_prefers_cgroup_kill(
    mgr: V2Manager, root: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr.create(NAME, Resources())
    leaf = root / "pydockerd" / "abc123"
    (leaf / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    (leaf / "cgroup.kill").write_text("")
    monkeypatch.setattr(v2mod, "remove_tree", lambda *a: None)  # keep the files to look at
    mgr.remove(NAME)
    assert read(leaf / "cgroup.kill") == "1"
    assert sleeper.poll() is None  # the kernel does the killing, not a signal from us


def test_stats(mgr: V2Manager, root: Path) -> None:
    mgr.create(NAME, Resources(pids_limit=50))
    leaf = root / "pydockerd" / "abc123"
    (leaf / "memory.current").write_text("1048576\n")
    (leaf / "memory.peak").write_text("2097152\n")
    (leaf / "memory.stat").write_text("anon 4096\nfile 8192\n")
    (leaf / "cpu.stat").write_text(
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n"
    )
    (leaf / "pids.current").write_text("3\n")
    s = mgr.stats(NAME)
    assert s["memory"] == {
        "usage": 1048576,
        "max_usage": 2097152,
        "limit": None,
        "stats": {"anon": 4096, "file": 8192},
    }
    assert s["cpu"]["usage_ns"] == 1_500_000
    assert s["cpu"]["user_ns"] == 1_000_000
    assert s["cpu"]["system_ns"] == 500_000
    assert s["cpu"]["throttling"] == {"periods": 4, "throttled_periods": 1, "throttled_time_ns": 20_000}
    assert s["pids"] == {"current": 3, "limit": 50}


def test_detect_without_any_hierarchy(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="no cgroup v1 or v2 hierarchy"):
        detect(str(tmp_path))
