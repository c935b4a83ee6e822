"""The container life cycle on a fake runtime: no root, no shim, no kernel. What a daemon does with a
start that fails, AutoRemove, the wait conditions, a restart of the daemon, a shim that vanishes."""

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daemon.containers.runspec import build_spec
from daemon.containers.service import ContainerService
from daemon.containers.state import Status
from daemon.containers.waiters import WaitError
from daemon.errors import Conflict, InvalidParameter, NotModified, SystemError_
from daemon.events.bus import EventBus
from daemon.frames import STDOUT, frame
from tests.fakes.networking import FakeNetworking
from tests.fakes.runtime import FINISHED_AT, FakeRuntime

IMAGE_ID = "sha256:" + "ab" * 32


@dataclass
class FakeImage:
    id: str
    config: dict[str, Any]


@dataclass
class FakeImages:
    collected: int = 0
    config: dict[str, Any] = field(default_factory=lambda: {"config": {"Cmd": ["sh"], "Env": ["A=1"]}})

    async def resolve(self, ref: str) -> FakeImage:
        return FakeImage(IMAGE_ID, self.config)

    def layer_dirs(self, image_id: str) -> list[str]:
        return ["/nonexistent/layer"]

    def collect_garbage(self) -> None:
        self.collected += 1

    def size(self, image_id: str) -> int:
        return 1000


@dataclass
class Daemon:
    """One daemon's services over a data root; `restarted()` is the next daemon on the same root."""

    root: Path
    runtime: FakeRuntime
    events: EventBus = field(default_factory=EventBus)
    images: FakeImages = field(default_factory=FakeImages)

    def __post_init__(self) -> None:
        self.networking = FakeNetworking()
        self.svc = ContainerService(self.root, self.runtime, self.images, self.events, self.networking)

    def actions(self, cid: str) -> list[str]:
        return [e["Action"] for e in self.events._history if e["Actor"]["ID"] == cid]

    async def restarted(self) -> "Daemon":
        after = Daemon(self.root, self.runtime)
        await after.svc.restore()
        return after


@pytest.fixture
async def d(tmp_path: Path) -> AsyncIterator[Daemon]:
    daemon = Daemon(tmp_path, FakeRuntime())
    yield daemon
    for c in daemon.svc.all():  # end the monitors: no task outlives the test's loop
        if c.monitor is not None and not c.monitor.done():
            c.monitor.cancel()


async def create(d: Daemon, name: str | None = None, **body: Any) -> str:
    result = await d.svc.create(name, {"Image": "busybox", **body})
    return str(result["Id"])


async def exited(d: Daemon, cid: str) -> int:
    _, fut = d.svc.wait_future(cid, "not-running")
    return await asyncio.wait_for(fut, 5)


async def test_create_start_exit_inspect(d: Daemon) -> None:
    cid = await create(d, "web", Cmd=["echo", "hi"])
    await d.svc.start("web")
    running = await d.svc.inspect(cid)
    assert running["State"]["Status"] == "running"
    assert running["State"]["Pid"] == d.runtime.containers[cid].pid
    spec = d.runtime.containers[cid].spec
    assert spec.process.args == ["echo", "hi"] and "A=1" in spec.process.env
    d.runtime.finish(cid, 3)
    assert await exited(d, cid) == 3
    state = (await d.svc.inspect(cid))["State"]
    assert (state["Status"], state["ExitCode"], state["Pid"], state["FinishedAt"]) == (
        "exited",
        3,
        0,
        FINISHED_AT,
    )
    assert d.runtime.containers[cid].released  # the shim's files went after the exit was saved
    assert d.actions(cid) == ["create", "start", "die"]


async def test_a_start_the_runtime_refuses_leaves_the_container_created(d: Daemon) -> None:
    cid = await create(d)
    d.runtime.fail_create = 'exec: "nope": executable file not found in $PATH'
    _, waiter = d.svc.wait_future(cid, "next-exit")
    with pytest.raises(InvalidParameter) as refused:
        await d.svc.start(cid)
    assert (
        "OCI runtime create failed" in refused.value.message
        and "executable file not found" in refused.value.message
    )
    c = d.svc.get(cid)
    assert (c.status, c.state.exit_code) == (Status.CREATED, 127)
    assert c.state.error == refused.value.message
    assert await waiter == 127  # `docker run` learns the code from its wait
    assert d.actions(cid) == ["create", "die"]
    d.runtime.fail_create = None
    await d.svc.start(cid)  # the container is not spoiled: it starts once the cause is gone
    assert d.svc.get(cid).status == Status.RUNNING and d.svc.get(cid).state.error == ""


async def test_a_failed_execve_reports_the_shim_s_code_and_releases_the_run(d: Daemon) -> None:
    cid = await create(d)
    d.runtime.fail_start = "permission denied"
    d.runtime.fail_start_code = 126
    with pytest.raises(InvalidParameter):
        await d.svc.start(cid)
    assert d.svc.get(cid).state.exit_code == 126 and d.runtime.containers[cid].released


async def test_a_start_that_fails_for_another_reason_is_a_server_error(d: Daemon) -> None:
    cid = await create(d)
    d.runtime.fail_create = "cannot mount the root"
    with pytest.raises(SystemError_):
        await d.svc.start(cid)
    assert d.svc.get(cid).state.exit_code == 128


async def test_auto_remove_after_the_exit_and_after_a_failed_start(d: Daemon) -> None:
    cid = await create(d, HostConfig={"AutoRemove": True})
    await d.svc.start(cid)
    _, removed = d.svc.wait_future(cid, "removed")
    d.runtime.finish(cid, 0)
    assert await asyncio.wait_for(removed, 5) == 0
    assert d.svc.store.find(cid) is None and not (d.root / "containers" / cid).exists()
    assert d.actions(cid) == ["create", "start", "die", "destroy"]
    assert d.images.collected == 1

    failing = await create(d, HostConfig={"AutoRemove": True})
    d.runtime.fail_create = "no such file or directory"
    with pytest.raises(InvalidParameter):
        await d.svc.start(failing)
    assert d.svc.store.find(failing) is None  # as Docker: `run --rm` of a bad command leaves nothing


async def test_wait_conditions(d: Daemon) -> None:
    cid = await create(d)
    _, created_not_running = d.svc.wait_future(cid, "not-running")
    assert created_not_running.done() and created_not_running.result() == 0  # not running already
    _, next_exit = d.svc.wait_future(cid, "next-exit")
    _, removed = d.svc.wait_future(cid, "removed")
    with pytest.raises(InvalidParameter):
        d.svc.wait_future(cid, "sometime")
    await d.svc.start(cid)
    _, not_running = d.svc.wait_future(cid, "not-running")
    assert not next_exit.done() and not not_running.done()
    d.runtime.finish(cid, 5)
    assert await asyncio.wait_for(next_exit, 5) == 5 and await not_running == 5
    assert not removed.done()  # an exit is not a removal
    await d.svc.remove(cid, force=False, volumes=False)
    assert await removed == 5


async def test_a_removal_that_fails_leaves_the_container_dead_and_tells_its_waiters(
    d: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = await create(d)
    _, removed = d.svc.wait_future(cid, "removed")

    def refuse(path: Path) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(d.svc.store.trash, "discard", refuse)
    with pytest.raises(SystemError_) as failed:
        await d.svc.remove(cid, force=False, volumes=False)
    assert (
        failed.value.message
        == f'cannot remove container "{cid}": unable to remove filesystem: Permission denied'
    )
    assert d.svc.get(cid).status == Status.DEAD
    with pytest.raises(WaitError) as told:
        await removed
    assert told.value.message == "unable to remove filesystem: Permission denied"
    with pytest.raises(Conflict):
        await d.svc.start(cid)  # a dead container is not used again
    monkeypatch.undo()
    await d.svc.remove(cid, force=False, volumes=False)  # `rm` may be retried
    assert d.svc.store.find(cid) is None


async def test_stop_sends_the_stop_signal_then_kill_after_the_timeout(d: Daemon) -> None:
    d.runtime.fatal_signals = frozenset({signal.SIGKILL})  # the process ignores SIGTERM
    cid = await create(d, StopSignal="SIGUSR1")
    await d.svc.start(cid)
    await d.svc.stop(cid, timeout=0)
    assert d.runtime.signals == [(cid, signal.SIGUSR1), (cid, signal.SIGKILL)]
    assert d.svc.get(cid).state.exit_code == 137
    with pytest.raises(NotModified):
        await d.svc.stop(cid, timeout=0)


async def test_kill_pause_and_rm_force(d: Daemon) -> None:
    cid = await create(d)
    with pytest.raises(Conflict):
        await d.svc.kill(cid, None)  # not running
    await d.svc.start(cid)
    await d.svc.pause(cid)
    assert d.svc.get(cid).status == Status.PAUSED and d.runtime.is_paused(cid)
    with pytest.raises(Conflict) as refused:
        await d.svc.remove(cid, force=False, volumes=False)
    assert "You cannot remove a paused container" in refused.value.message
    await d.svc.unpause(cid)
    await d.svc.kill(cid, "USR2")  # not fatal: recorded, the container runs on
    assert d.svc.get(cid).status == Status.RUNNING
    await d.svc.remove(cid, force=True, volumes=False)
    assert d.runtime.signals[-1] == (cid, signal.SIGKILL) and d.svc.store.find(cid) is None
    assert d.actions(cid) == ["create", "start", "pause", "unpause", "kill", "kill", "die", "destroy"]


async def test_restart_stops_and_starts_a_new_process(d: Daemon) -> None:
    cid = await create(d)
    await d.svc.start(cid)
    first = d.svc.get(cid).pid
    await d.svc.restart(cid, timeout=1)
    c = d.svc.get(cid)
    assert c.status == Status.RUNNING and c.pid != first
    assert d.actions(cid)[-5:] == ["kill", "die", "stop", "start", "restart"]


async def test_update_reaches_the_runtime_only_while_running(d: Daemon) -> None:
    cid = await create(d)
    await d.svc.update(cid, {"Memory": 64 << 20})
    assert d.svc.get(cid).host_config["Memory"] == 64 << 20
    await d.svc.start(cid)
    await d.svc.update(cid, {"PidsLimit": 50})
    resources = d.runtime.containers[cid].resources
    assert resources is not None and resources.pids_limit == 50 and resources.memory == 64 << 20
    d.runtime.fail_update = OSError("the kernel said no")
    with pytest.raises(InvalidParameter):
        await d.svc.update(cid, {"PidsLimit": 60})
    assert d.svc.get(cid).host_config["PidsLimit"] == 50  # a refused update changes nothing


async def test_an_attach_waits_for_the_start_and_a_failed_start_releases_it(d: Daemon) -> None:
    cid = await create(d, OpenStdin=True)
    attach = asyncio.ensure_future(d.svc.attach(cid, True, True, True))
    await asyncio.sleep(0)
    assert not attach.done()
    await d.svc.start(cid)
    _, stream = await asyncio.wait_for(attach, 5)
    assert stream is not None
    d.runtime.output(cid, STDOUT, b"hello")
    assert await stream.reader.readexactly(13) == frame(STDOUT, b"hello")

    other = await create(d)
    waiting = asyncio.ensure_future(d.svc.attach(other, False, True, True))
    await asyncio.sleep(0)
    d.runtime.fail_create = "no such file or directory"
    with pytest.raises(InvalidParameter):
        await d.svc.start(other)
    with pytest.raises(Exception, match="did not start"):
        await asyncio.wait_for(waiting, 5)  # it does not wait forever


async def test_restore_after_a_daemon_restart_finds_running_paused_and_ended_containers(d: Daemon) -> None:
    running, paused, ended, vanished, created = [await create(d) for _ in range(5)]
    for cid in (running, paused, ended, vanished):
        await d.svc.start(cid)
    await d.svc.pause(paused)
    for c in d.svc.all():  # the daemon goes away; the shims (the fake runtime) stay
        if c.monitor is not None:
            c.monitor.cancel()
    await d.svc.unpause(paused)  # behind the back of the stored state: the kernel is the truth
    await d.runtime.pause(paused)
    d.runtime.finish(ended, 9)  # exited while no daemon watched
    d.runtime.vanish(vanished)  # its shim was killed: no exit recorded
    after = await d.restarted()
    status = {cid: after.svc.get(cid).status for cid in (running, paused, ended, vanished, created)}
    assert status == {
        running: Status.RUNNING, paused: Status.PAUSED, ended: Status.EXITED,
        vanished: Status.EXITED, created: Status.CREATED,
    }  # fmt: skip
    assert after.svc.get(ended).state.exit_code == 9
    assert after.svc.get(vanished).state.exit_code == 255
    assert after.runtime.containers[vanished].processes_left is False  # what was left is killed
    d.runtime.finish(running, 0)  # the new daemon watches the containers it found running
    assert await exited(after, running) == 0
    for c in after.svc.all():
        if c.monitor is not None:
            c.monitor.cancel()


async def test_restore_undoes_a_run_the_record_never_saw_start(d: Daemon) -> None:
    cid = await create(d)
    await d.runtime.create(await build_spec(d.svc.get(cid), d.svc.seccomp))
    after = await d.restarted()  # a crash between the shim's start and the record's "running"
    assert after.svc.get(cid).status == Status.CREATED
    assert after.runtime.containers[cid].discarded


async def test_a_shim_that_vanishes_while_watched_ends_the_container_with_255(d: Daemon) -> None:
    cid = await create(d)
    await d.svc.start(cid)
    d.runtime.vanish(cid)
    assert await exited(d, cid) == 255
    assert d.svc.get(cid).status == Status.EXITED
    assert d.runtime.containers[cid].processes_left is False  # release() killed what the shim left


async def test_two_pauses_at_once_one_pauses_the_other_is_told_it_is_paused(d: Daemon) -> None:
    cid = await create(d)
    await d.svc.start(cid)
    results = await asyncio.gather(d.svc.pause(cid), d.svc.pause(cid), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], Conflict)
    assert results[1].message == f"Container {cid} is already paused"
    assert d.actions(cid).count("pause") == 1


async def test_a_prune_leaves_a_container_that_started_while_it_waited(d: Daemon) -> None:
    cid = await create(d)
    async with d.svc.get(cid).lock:  # a start holds the container while the prune comes
        pruning = asyncio.ensure_future(d.svc.prune({}))
        await asyncio.sleep(0.05)
        d.svc.get(cid).state.running(d.runtime._pid(), FINISHED_AT)
    assert (await pruning)["ContainersDeleted"] is None
    assert d.svc.get(cid).status == Status.RUNNING


async def test_an_auto_remove_exit_does_not_remove_a_container_a_start_brought_back(
    d: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    cid = await create(d, HostConfig={"AutoRemove": True})
    await d.svc.start(cid)
    c = d.svc.get(cid)
    async with c.lock:  # a start queued before the exit handler takes the lock
        d.runtime.finish(cid, 0)
        await asyncio.sleep(0.05)  # the exit is recorded; its removal waits for the lock
        assert c.status == Status.EXITED
        c.state.running(d.runtime._pid(), FINISHED_AT)
    await asyncio.sleep(0.05)
    assert d.svc.store.find(cid) is c and c.status == Status.RUNNING
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]  # nothing went wrong


async def test_rm_force_during_a_restart_of_an_auto_remove_container_removes_it(d: Daemon) -> None:
    d.runtime.fatal_signals = frozenset({signal.SIGKILL})  # the stop of the restart waits its timeout
    cid = await create(d, HostConfig={"AutoRemove": True})
    await d.svc.start(cid)
    restart = asyncio.ensure_future(d.svc.restart(cid, timeout=30))
    await asyncio.sleep(0.05)  # the restart sent its SIGTERM and waits, without the lock
    await d.svc.remove(cid, force=True, volumes=False)
    assert d.svc.store.find(cid) is None
    with pytest.raises(Conflict, match="marked for removal"):
        await restart  # it does not start the removed container again


async def test_restore_turns_an_interrupted_removal_into_dead(d: Daemon) -> None:
    cid = await create(d)
    c = d.svc.get(cid)
    c.state.removing()
    d.svc.store.save_state(c)  # as if the daemon ended right after
    after = await d.restarted()
    assert after.svc.get(cid).status == Status.DEAD
    await after.svc.remove(cid, force=False, volumes=False)  # and `rm` can finish the job
    assert after.svc.store.find(cid) is None


async def test_inspect_with_size_counts_the_image(d: Daemon) -> None:
    cid = await create(d)
    (d.svc.get(cid).dir / "rw" / "upper" / "f").write_bytes(b"x" * 10)
    info = await d.svc.inspect(cid, size=True)
    assert info["SizeRootFs"] == info["SizeRw"] + 1000 and info["SizeRw"] >= 10
