"""`docker info`'s host figures, measured on temp-dir stand-ins for /proc and /sys/fs/cgroup."""

import asyncio
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from daemon import hostinfo
from daemon.events.bus import EventBus
from daemon.system import SystemService


@pytest.mark.parametrize(("content", "expected"), [("1\n", True), ("0\n", False)])
def test_ipv4_forwarding_is_the_sysctl(tmp_path: Path, content: str, expected: bool) -> None:
    (tmp_path / "ip_forward").write_text(content)
    assert hostinfo.ipv4_forwarding(tmp_path / "ip_forward") is expected


def test_ipv4_forwarding_unreadable_is_off(tmp_path: Path) -> None:
    assert hostinfo.ipv4_forwarding(tmp_path / "missing") is False


def cgroups(root: Path, version: int, controllers: set[str]) -> Any:
    return SimpleNamespace(root=str(root), version=version, controllers=frozenset(controllers))


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("max\n")


def test_swap_limit_on_v1_is_the_memsw_files(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    manager = cgroups(tmp_path, 1, {"memory", "pids"})
    assert hostinfo.swap_limit(manager) is False  # a kernel without swap accounting
    touch(tmp_path / "memory" / "memory.memsw.limit_in_bytes")
    assert hostinfo.swap_limit(manager) is True


def test_swap_limit_on_v2_looks_in_our_own_cgroup(tmp_path: Path) -> None:
    root, own = tmp_path / "cg", tmp_path / "cg" / "system.slice" / "pydockerd.service"
    own.mkdir(parents=True)
    proc_self_cgroup = tmp_path / "proc-self-cgroup"
    proc_self_cgroup.write_text("0::/system.slice/pydockerd.service\n")
    manager = cgroups(root, 2, {"memory", "pids"})
    touch(own / "memory.max")
    assert hostinfo.swap_limit(manager, proc_self_cgroup) is False
    touch(own / "memory.swap.max")
    assert hostinfo.swap_limit(manager, proc_self_cgroup) is True


def test_swap_limit_on_v2_from_the_root_cgroup_looks_at_its_children(tmp_path: Path) -> None:
    proc_self_cgroup = tmp_path / "proc-self-cgroup"
    proc_self_cgroup.write_text("0::/\n")
    root = tmp_path / "cg"
    touch(root / "memory.swap.max")  # the kernel shows none in the root; this one must not count
    manager = cgroups(root, 2, {"memory"})
    assert hostinfo.swap_limit(manager, proc_self_cgroup) is False
    touch(root / "init.scope" / "memory.swap.max")
    assert hostinfo.swap_limit(manager, proc_self_cgroup) is True


def test_swap_limit_on_v2_needs_the_memory_controller(tmp_path: Path) -> None:
    proc_self_cgroup = tmp_path / "proc-self-cgroup"
    proc_self_cgroup.write_text("0::/a\n")
    touch(tmp_path / "cg" / "a" / "memory.swap.max")
    assert hostinfo.swap_limit(cgroups(tmp_path / "cg", 2, {"pids"}), proc_self_cgroup) is False


def test_d_type_is_supported_on_the_test_file_system(tmp_path: Path) -> None:
    assert hostinfo.supports_d_type(tmp_path) is True
    assert os.listdir(tmp_path) == []  # the probe cleans up


class EntryWithoutDType:
    """A scandir entry of a file system that leaves d_type DT_UNKNOWN: every question is an lstat."""

    def __init__(self, entry: os.DirEntry[str]) -> None:
        self.name, self.path = entry.name, entry.path

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self.path).st_mode)
        except FileNotFoundError:
            return False


class ScandirWithoutDType:
    def __init__(self, path: str) -> None:
        self._listing = os.scandir(path)

    def __enter__(self) -> list[EntryWithoutDType]:
        return [EntryWithoutDType(e) for e in self._listing]

    def __exit__(self, *exc: object) -> None:
        self._listing.close()


def test_d_type_unknown_is_reported(tmp_path: Path) -> None:
    assert hostinfo.supports_d_type(tmp_path, ScandirWithoutDType) is False


def test_d_type_without_a_writable_data_root_is_not_claimed(tmp_path: Path) -> None:
    assert hostinfo.supports_d_type(tmp_path / "missing") is False


async def test_listener_count_follows_subscribers() -> None:
    bus = EventBus()
    assert bus.listener_count == 0
    stream = bus.subscribe(None, None, {})
    waiting = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    assert bus.listener_count == 1
    bus.publish("container", "start", "abc")
    assert (await waiting)["Action"] == "start"
    await stream.aclose()
    assert bus.listener_count == 0


def test_info_reports_what_was_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("daemon.system.ipv4_forwarding", lambda: False)
    monkeypatch.setattr("daemon.system.swap_limit", lambda _cgroups: False)
    monkeypatch.setattr("daemon.system.supports_d_type", lambda _root: False)
    bus = EventBus()
    bus._subscribers.update({asyncio.Queue(), asyncio.Queue()})  # two streams open
    containers: Any = SimpleNamespace(all=lambda: [], seccomp=SimpleNamespace(enabled=False))
    images: Any = SimpleNamespace(count=lambda: 0)
    system = SystemService(containers, images, cgroups(tmp_path, 2, set()), bus, tmp_path, tmp_path)
    info = system.info()
    assert (info["IPv4Forwarding"], info["SwapLimit"], info["NEventsListener"]) == (False, False, 2)
    assert ["Supports d_type", "false"] in info["DriverStatus"]
