"""Runtime owns the container's cgroup name: it puts it in the spec and every cgroup call uses it.

No root: the cgroup manager records its calls, and the shim is a stub that reads the spec it was given.
"""

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from daemon.runtime import shimproto
from daemon.runtime.cgroups import Resources
from daemon.runtime.client import Runtime
from daemon.runtime.interface import RuntimeFailure
from daemon.runtime.spec import ContainerSpec, ProcessSpec

CID = "a" * 64
NAME = f"parent/{CID}"


class RecordingCgroups:
    """The CgroupManager calls the runtime makes; frozen and pids as a test sets them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.frozen = False
        self.updated: Resources | None = None

    def __getattr__(self, method: str) -> Any:
        def call(name: str, *args: Any) -> Any:
            self.calls.append((method, name))
            if method == "is_frozen":
                return self.frozen
            if method == "pids":
                return [7, 8]
            if method == "update":
                self.updated = args[0]
            return None

        return call


@pytest.fixture
def cgroups() -> RecordingCgroups:
    return RecordingCgroups()


@pytest.fixture
def rt(tmp_path: Path, cgroups: RecordingCgroups) -> Runtime:
    return Runtime(tmp_path, cgroups, "parent")  # type: ignore[arg-type]


def spec() -> ContainerSpec:
    return ContainerSpec(CID, ProcessSpec(["/bin/true"], []), [], "/u", "/w", cgroup_name="the/old/way")


async def test_create_puts_the_runtimes_cgroup_name_in_the_spec(rt: Runtime, monkeypatch: Any) -> None:
    seen: list[ContainerSpec] = []

    async def shim(exec_dir: Path) -> bytes:
        seen.append(ContainerSpec.from_json((exec_dir / "spec.json").read_text()))
        return shimproto.encode(shimproto.Created(4242, 4241))

    monkeypatch.setattr(rt._spawner, "spawn", shim)
    given = spec()
    assert await rt.create(given) == 4242
    assert seen[0].cgroup_name == NAME
    assert given.cgroup_name == "the/old/way"  # the caller's spec is not changed under it


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (shimproto.encode(shimproto.Failed("cannot set a memory limit")), "^cannot set a memory limit$"),
        (b"", "^shim exited without a report$"),
        (b"Traceback (most recent call last):\n", "^shim said b'Traceback"),
    ],
)
async def test_a_failed_create_says_why_and_leaves_no_exec_dir(
    rt: Runtime, monkeypatch: Any, report: bytes, message: str
) -> None:
    async def shim(exec_dir: Path) -> bytes:
        return report

    monkeypatch.setattr(rt._spawner, "spawn", shim)
    with pytest.raises(RuntimeFailure, match=message):
        await rt.create(spec())
    assert not rt.has_leftovers(CID)


async def test_pause_resume_update_pids_reach_the_named_cgroup(
    rt: Runtime, cgroups: RecordingCgroups
) -> None:
    await rt.pause(CID)
    await rt.resume(CID)
    await rt.update(CID, Resources(memory=1 << 20))
    assert await rt.pids(CID) == [7, 8]
    assert cgroups.calls == [("freeze", NAME), ("thaw", NAME), ("update", NAME), ("pids", NAME)]
    assert cgroups.updated == Resources(memory=1 << 20)


def test_sigkill_thaws_a_frozen_container_other_signals_do_not(
    rt: Runtime, cgroups: RecordingCgroups
) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        cgroups.frozen = True
        rt.kill(CID, sleeper.pid, signal.SIGCONT)
        assert ("thaw", NAME) not in cgroups.calls
        rt.kill(CID, sleeper.pid, signal.SIGKILL)
        assert ("thaw", NAME) in cgroups.calls
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()


def _leave_run(rt: Runtime, exit_code: int | None) -> Path:
    exec_dir = rt.exec_root / "containers" / CID
    exec_dir.mkdir(parents=True)
    (exec_dir / "state.json").write_text(json.dumps({"pid": 1, "shim_pid": 2**22 + 1, "status": "running"}))
    if exit_code is not None:
        (exec_dir / "exit.json").write_text(json.dumps({"exit_code": exit_code, "finished_at": "x"}))
    return exec_dir


def test_release_after_a_recorded_exit_only_removes_the_files(rt: Runtime, cgroups: RecordingCgroups) -> None:
    _leave_run(rt, 0)
    assert rt.read_exit(CID) is not None and not rt.alive(CID)
    rt.release(CID)
    assert ("remove", NAME) not in cgroups.calls
    assert not rt.has_leftovers(CID)


def test_release_after_a_shim_died_removes_the_cgroup(rt: Runtime, cgroups: RecordingCgroups) -> None:
    _leave_run(rt, None)
    rt.release(CID)
    assert ("remove", NAME) in cgroups.calls
    assert not rt.has_leftovers(CID)


def test_discard_kills_the_shim_and_removes_cgroup_and_files(rt: Runtime, cgroups: RecordingCgroups) -> None:
    exec_dir = _leave_run(rt, None)
    shim = subprocess.Popen(["sleep", "30"])
    try:
        (exec_dir / "state.json").write_text(
            json.dumps({"pid": 1, "shim_pid": shim.pid, "status": "created"})
        )
        rt.discard(CID)
        assert shim.wait(timeout=10) == -signal.SIGKILL
    finally:
        shim.kill()
        shim.wait()
    assert ("remove", NAME) in cgroups.calls
    assert not rt.has_leftovers(CID) and not os.path.exists(exec_dir)
