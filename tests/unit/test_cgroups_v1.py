"""cgroup v1 manager against plain directories standing in for the per-controller mounts."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.runtime.cgroups import CgroupError, InvalidLimit, Resources, V1Manager, detect
from daemon.runtime.cgroups import v1 as v1mod
from daemon.runtime.cgroups.fs import write as real_write

MiB = 1024 * 1024
NAME = "pydockerd/abc123"
CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices")
UNLIMITED = "9223372036854771712"  # what v1 shows for -1


def make_root(tmp: Path, controllers: tuple[str, ...] = CONTROLLERS) -> Path:
    for c in controllers:
        (tmp / c).mkdir()
        (tmp / c / "cgroup.procs").write_text("")
    if "cpuset" in controllers:
        (tmp / "cpuset" / "cpuset.cpus").write_text("0-3\n")
        (tmp / "cpuset" / "cpuset.mems").write_text("0\n")
    # a hybrid host's controller-less v2 mount, which v1 must ignore
    (tmp / "unified").mkdir()
    (tmp / "unified" / "cgroup.procs").write_text("")
    return tmp


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def mgr(root: Path) -> V1Manager:
    m = detect(str(root))
    assert isinstance(m, V1Manager)
    return m


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "60"])
    yield p
    p.kill()
    p.wait()


def leaf(root: Path, controller: str) -> Path:
    return root / controller / "pydockerd" / "abc123"


def read(path: Path) -> str:
    return path.read_text().strip()


def test_detect_finds_mounted_controllers_only(tmp_path: Path) -> None:
    make_root(tmp_path, ("memory", "pids", "freezer"))
    (tmp_path / "cpu").mkdir()  # an empty dir is not a mounted hierarchy
    m = detect(str(tmp_path))
    assert m.version == 1
    assert m.controllers == {"memory", "pids", "freezer"}
    expected = {c: str(tmp_path / c / "pydockerd" / "abc123") for c in ("memory", "pids", "freezer")}
    assert m.paths(NAME) == expected


def test_create_makes_a_dir_per_controller_and_copies_cpusets(mgr: V1Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    for c in CONTROLLERS:
        assert leaf(root, c).is_dir(), c
    assert not (root / "unified" / "pydockerd").exists()
    for d in (root / "cpuset" / "pydockerd", leaf(root, "cpuset")):
        assert read(d / "cpuset.cpus") == "0-3"
        assert read(d / "cpuset.mems") == "0"
    assert mgr.exists(NAME)


def test_create_writes_each_limit(mgr: V1Manager, root: Path) -> None:
    mgr.create(
        NAME,
        Resources(
            memory=64 * MiB,
            memory_reservation=32 * MiB,
            cpu_shares=512,
            nano_cpus=500_000_000,
            cpuset_cpus="1",
            pids_limit=20,
        ),
    )
    mem = leaf(root, "memory")
    assert read(mem / "memory.limit_in_bytes") == str(64 * MiB)
    assert read(mem / "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert not (mem / "memory.memsw.limit_in_bytes").exists()  # swap accounting off: skipped
    cpu = leaf(root, "cpu")
    assert read(cpu / "cpu.shares") == "512"
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert read(leaf(root, "cpuset") / "cpuset.cpus") == "1"
    assert read(root / "cpuset" / "pydockerd" / "cpuset.cpus") == "0-3"
    assert read(leaf(root, "pids") / "pids.max") == "20"


def test_unset_resources_mean_unlimited(mgr: V1Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    assert read(leaf(root, "memory") / "memory.limit_in_bytes") == "-1"
    assert read(leaf(root, "memory") / "memory.soft_limit_in_bytes") == "-1"
    assert read(leaf(root, "cpu") / "cpu.shares") == "1024"
    assert read(leaf(root, "cpu") / "cpu.cfs_quota_us") == "-1"
    assert read(leaf(root, "pids") / "pids.max") == "max"


@pytest.fixture
def strict_memory(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the fake refuse what the kernel refuses: memory.limit above memsw, or memsw below memory."""
    order: list[str] = []

    def value(path: str) -> int:
        text = Path(path).read_text().strip() if os.path.exists(path) else ""
        n = int(text) if text else -1
        return n if n >= 0 else int(UNLIMITED)

    def checked(path: str, data: str, what: str = "", action: str = "") -> None:
        d, f = os.path.split(path)
        if f in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
            new = int(data) if int(data) >= 0 else int(UNLIMITED)
            if f == "memory.limit_in_bytes" and new > value(os.path.join(d, "memory.memsw.limit_in_bytes")):
                raise InvalidLimit(f"memory {data} above memsw", 22, path)
            if f == "memory.memsw.limit_in_bytes" and new < value(os.path.join(d, "memory.limit_in_bytes")):
                raise InvalidLimit(f"memsw {data} below memory", 22, path)
        order.append(f)
        real_write(path, data, what, action)

    monkeypatch.setattr(v1mod, "write", checked)
    return order


def test_memory_and_memsw_written_in_the_order_the_kernel_accepts(
    mgr: V1Manager, root: Path, strict_memory: list[str]
) -> None:
    mem = leaf(root, "memory")
    mem.mkdir(parents=True)
    (mem / "memory.limit_in_bytes").write_text(UNLIMITED)
    (mem / "memory.memsw.limit_in_bytes").write_text(UNLIMITED)  # swap accounting on

    mgr.create(NAME, Resources(memory=64 * MiB))
    assert read(mem / "memory.limit_in_bytes") == str(64 * MiB)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(128 * MiB)

    # raising memory above the current memsw: memsw must go first
    strict_memory.clear()
    mgr.update(NAME, Resources(memory=512 * MiB, memory_swap=600 * MiB))
    assert read(mem / "memory.limit_in_bytes") == str(512 * MiB)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(600 * MiB)
    assert strict_memory.index("memory.memsw.limit_in_bytes") < strict_memory.index("memory.limit_in_bytes")

    # lowering: memory first
    strict_memory.clear()
    mgr.update(NAME, Resources(memory=16 * MiB, memory_swap=20 * MiB))
    assert read(mem / "memory.limit_in_bytes") == str(16 * MiB)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(20 * MiB)
    assert strict_memory.index("memory.limit_in_bytes") < strict_memory.index("memory.memsw.limit_in_bytes")

    # back to unlimited
    mgr.update(NAME, Resources())
    assert read(mem / "memory.limit_in_bytes") == "-1"
    assert read(mem / "memory.memsw.limit_in_bytes") == "-1"


def test_memory_swap_unlimited(mgr: V1Manager, root: Path) -> None:
    mem = leaf(root, "memory")
    mem.mkdir(parents=True)
    (mem / "memory.memsw.limit_in_bytes").write_text(UNLIMITED)
    mgr.create(NAME, Resources(memory=64 * MiB, memory_swap=-1))
    assert read(mem / "memory.memsw.limit_in_bytes") == "-1"


def test_missing_controller_for_a_limit(tmp_path: Path) -> None:
    make_root(tmp_path, ("memory", "cpu", "freezer"))
    m = detect(str(tmp_path))
    with pytest.raises(CgroupError, match="pids cgroup controller is not available"):
        m.create(NAME, Resources(pids_limit=10))
    assert not m.exists(NAME)
    m.create(NAME, Resources(memory=64 * MiB))  # nothing asked of pids: fine
    assert read(tmp_path / "memory" / "pydockerd" / "abc123" / "memory.limit_in_bytes") == str(64 * MiB)


def test_shared_cpu_cpuacct_hierarchy(tmp_path: Path) -> None:
    make_root(tmp_path, ("memory", "pids"))
    both = tmp_path / "cpu,cpuacct"
    both.mkdir()
    (both / "cgroup.procs").write_text("")
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuacct").symlink_to("cpu,cpuacct")
    m = detect(str(tmp_path))
    assert {"cpu", "cpuacct"} <= m.controllers
    m.create(NAME, Resources(nano_cpus=10**9))
    assert read(both / "pydockerd" / "abc123" / "cpu.cfs_quota_us") == "100000"
    m.add_process(NAME, 99)
    assert read(both / "pydockerd" / "abc123" / "cgroup.procs") == "99"
    m.remove(NAME)
    assert not (both / "pydockerd" / "abc123").exists()


def test_update_missing_cgroup(mgr: V1Manager) -> None:
    with pytest.raises(CgroupError, match="does not exist"):
        mgr.update(NAME, Resources())


def test_add_process_joins_every_hierarchy(mgr: V1Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    mgr.add_process(NAME, 4242)
    for c in CONTROLLERS:
        assert read(leaf(root, c) / "cgroup.procs") == "4242", c
    assert mgr.pids(NAME) == [4242]


def test_freeze_and_thaw(mgr: V1Manager, root: Path) -> None:
    mgr.create(NAME, Resources())
    state = leaf(root, "freezer") / "freezer.state"
    state.write_text("THAWED\n")
    assert not mgr.is_frozen(NAME)
    mgr.freeze(NAME)
    assert read(state) == "FROZEN"
    assert mgr.is_frozen(NAME)
    mgr.thaw(NAME)
    assert read(state) == "THAWED"
    assert not mgr.is_frozen(NAME)


def test_freeze_without_freezer(tmp_path: Path) -> None:
    make_root(tmp_path, ("memory",))
    m = detect(str(tmp_path))
    m.create(NAME, Resources())
    with pytest.raises(CgroupError, match="freezer"):
        m.freeze(NAME)
    assert not m.is_frozen(NAME)


def test_oom_killed_reads_oom_control(mgr: V1Manager, root: Path) -> None:
    mgr.create(NAME, Resources(memory=64 * MiB))
    ctl = leaf(root, "memory") / "memory.oom_control"
    ctl.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not mgr.oom_killed(NAME)
    ctl.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert mgr.oom_killed(NAME)


def test_remove_kills_thaws_and_removes_everywhere(
    mgr: V1Manager, root: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    mgr.create(NAME, Resources(pids_limit=5))
    (leaf(root, "pids") / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    (leaf(root, "freezer") / "freezer.state").write_text("FROZEN\n")
    mgr.remove(NAME)
    assert sleeper.wait(timeout=5) == -9
    for c in CONTROLLERS:
        assert not leaf(root, c).exists(), c
        assert (root / c / "pydockerd").is_dir()
    assert not mgr.exists(NAME)
    mgr.remove(NAME)


def test_stats(mgr: V1Manager, root: Path) -> None:
    mgr.create(NAME, Resources(pids_limit=9))
    mem = leaf(root, "memory")
    (mem / "memory.usage_in_bytes").write_text("4096\n")
    (mem / "memory.max_usage_in_bytes").write_text("8192\n")
    (mem / "memory.limit_in_bytes").write_text(UNLIMITED + "\n")
    (mem / "memory.stat").write_text("cache 10\nrss 20\n")
    acct = leaf(root, "cpuacct")
    (acct / "cpuacct.usage").write_text("123456789\n")
    (acct / "cpuacct.usage_percpu").write_text("100000000 23456789 \n")
    tick = os.sysconf("SC_CLK_TCK")
    (acct / "cpuacct.stat").write_text(f"user {tick}\nsystem {2 * tick}\n")
    (leaf(root, "cpu") / "cpu.stat").write_text("nr_periods 7\nnr_throttled 2\nthrottled_time 5000\n")
    (leaf(root, "pids") / "pids.current").write_text("2\n")
    s = mgr.stats(NAME)
    assert s["memory"] == {"usage": 4096, "max_usage": 8192, "limit": None, "stats": {"cache": 10, "rss": 20}}
    assert s["cpu"]["usage_ns"] == 123456789
    assert s["cpu"]["percpu_ns"] == [100000000, 23456789]
    assert s["cpu"]["user_ns"] == 1_000_000_000
    assert s["cpu"]["system_ns"] == 2_000_000_000
    assert s["cpu"]["throttling"] == {"periods": 7, "throttled_periods": 2, "throttled_time_ns": 5000}
    assert s["pids"] == {"current": 2, "limit": 9}
