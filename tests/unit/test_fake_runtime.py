"""The fake runtime does what its docstring promises. (That it is a ContainerRuntime is checked by mypy:
`make lint` covers tests/fakes, and the fake ends with an assignment to type[ContainerRuntime].)"""

import asyncio
import json
import signal

import pytest

from daemon.frames import CONTROL, HEADER, STDERR, STDOUT
from daemon.runtime.cgroups import Resources
from daemon.runtime.interface import ContainerRuntime, ExitInfo, RuntimeFailure
from daemon.runtime.spec import ContainerSpec, ProcessSpec
from tests.fakes.runtime import FINISHED_AT, FakeRuntime

CID = "c" * 64


def spec(cid: str = CID) -> ContainerSpec:
    return ContainerSpec(cid, ProcessSpec(["/bin/true"], []), ["/lower"], "/upper", "/work")


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame, None at EOF."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    stream, size = HEADER.unpack(header)
    return stream, await reader.readexactly(size)


async def running(rt: FakeRuntime, cid: str = CID) -> int:
    pid = await rt.create(spec(cid))
    await rt.start(cid)
    return pid


async def test_create_start_finish_wait() -> None:
    rt = FakeRuntime()
    pid = await running(rt)
    assert rt.alive(CID) and await rt.pids(CID) == [pid]
    rt.finish(CID, 3, oom=True)
    assert await rt.wait(CID) == ExitInfo(3, True, FINISHED_AT)
    assert rt.read_exit(CID) == ExitInfo(3, True, FINISHED_AT)
    assert not rt.alive(CID) and await rt.pids(CID) == []


async def test_create_and_start_fail_when_told() -> None:
    rt = FakeRuntime(fail_create="no such image layer")
    with pytest.raises(RuntimeFailure, match=r"^no such image layer$"):
        await rt.create(spec())
    assert CID not in rt.containers
    rt.fail_create, rt.fail_start = None, 'exec: "nope": executable file not found in $PATH'
    await rt.create(spec())
    with pytest.raises(RuntimeFailure, match="executable file not found"):
        await rt.start(CID)
    assert (await rt.wait(CID)).exit_code == 127


async def test_fatal_signals_end_the_container_others_are_recorded() -> None:
    rt = FakeRuntime()
    pid = await running(rt)
    rt.kill(CID, pid, signal.SIGHUP)
    assert rt.alive(CID)
    rt.kill(CID, pid, signal.SIGTERM)
    assert (await rt.wait(CID)).exit_code == 128 + signal.SIGTERM
    assert rt.signals == [(CID, signal.SIGHUP), (CID, signal.SIGTERM)]


async def test_fatal_signals_are_configurable() -> None:
    rt = FakeRuntime(fatal_signals=frozenset({signal.SIGKILL}))
    pid = await running(rt)
    rt.kill(CID, pid, signal.SIGTERM)  # a process that ignores SIGTERM
    assert rt.alive(CID)
    rt.kill(CID, pid, signal.SIGKILL)
    assert (await rt.wait(CID)).exit_code == 137


async def test_a_vanished_shim_leaves_an_unrecorded_exit_and_processes_until_released() -> None:
    rt = FakeRuntime()
    await running(rt)
    rt.vanish(CID)
    info = await rt.wait(CID)
    assert not info.recorded and info.exit_code == 255
    assert rt.read_exit(CID) is None and not rt.alive(CID)
    assert rt.containers[CID].processes_left and rt.has_leftovers(CID)
    rt.release(CID)
    assert not rt.containers[CID].processes_left and not rt.has_leftovers(CID)


async def test_discard_ends_a_leftover_run() -> None:
    rt = FakeRuntime()
    await running(rt)
    rt.discard(CID)
    assert not rt.alive(CID) and not rt.has_leftovers(CID) and rt.containers[CID].discarded


async def test_pause_resume_update_resize() -> None:
    rt = FakeRuntime()
    await running(rt)
    await rt.pause(CID)
    assert rt.is_paused(CID)
    await rt.resume(CID)
    assert not rt.is_paused(CID)
    await rt.update(CID, Resources(memory=1 << 20))
    assert rt.containers[CID].resources == Resources(memory=1 << 20)
    rt.fail_update = ValueError("out of range")
    with pytest.raises(ValueError, match="out of range"):
        await rt.update(CID, Resources())
    await rt.resize(CID, None, 25, 80)
    assert rt.containers[CID].sizes == [(None, 25, 80)]
    rt.finish(CID, 0)
    with pytest.raises(RuntimeFailure):
        await rt.pause(CID)


async def test_attach_carries_frames_both_ways_and_ends_with_the_container() -> None:
    rt = FakeRuntime()
    await running(rt)
    stream = await rt.attach(CID, stdin=True, stdout=True, stderr=True)
    rt.output(CID, STDOUT, b"hello\n")
    rt.output(CID, STDERR, b"oops\n")
    assert await read_frame(stream.reader) == (STDOUT, b"hello\n")
    assert await read_frame(stream.reader) == (STDERR, b"oops\n")
    stream.writer.write(b"typed")
    stream.writer.write_eof()
    assert await rt.stdin_of(CID) == b"typed"
    rt.finish(CID, 0)
    assert await asyncio.wait_for(read_frame(stream.reader), 5) is None  # EOF
    stream.writer.close()


async def test_exec_stream_ends_with_its_exit_code() -> None:
    rt = FakeRuntime()
    await running(rt)
    stream = await rt.exec(CID, "e1", ProcessSpec(["ls"], []), None)
    assert stream.pid > 0 and rt.containers[CID].execs["e1"].pid == stream.pid
    waiting = asyncio.create_task(rt.exec_exit(CID, "e1"))
    rt.end_exec(CID, "e1", 2)
    item = await read_frame(stream.reader)
    assert item is not None and item[0] == CONTROL and json.loads(item[1]) == {"exit_code": 2}
    assert await waiting == 2
    with pytest.raises(RuntimeFailure, match="no such exec"):
        await rt.exec_exit(CID, "e2")
    stream.writer.close()


async def test_attach_before_the_start_but_no_exec_and_nothing_after_the_exit() -> None:
    rt = FakeRuntime()
    await rt.create(spec())
    await rt.attach(CID, False, True, True)  # as a shim: attaches made before the start connect then
    with pytest.raises(RuntimeFailure):
        await rt.exec(CID, "e1", ProcessSpec(["ls"], []), None)
    rt.finish(CID, 0)
    with pytest.raises(RuntimeFailure):
        await rt.attach(CID, False, True, True)


async def test_ensure_ready_and_close() -> None:
    rt: ContainerRuntime = FakeRuntime()
    await rt.ensure_ready()
    await rt.close()
