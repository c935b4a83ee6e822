"""Unit tests of the container service's pure parts: request checks, binds, listing, logs, streams."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.containers import logs
from daemon.containers.bind_specs import parse_bind
from daemon.containers.logs import LogQuery, parse_time_arg, read_logs
from daemon.containers.model import parse_create
from daemon.containers.record import effective_command, merge_env
from daemon.containers.service import parse_signal
from daemon.containers.splice import parse_detach_keys, pump_input
from daemon.errors import InvalidParameter, NotImplementedYet
from daemon.runtime.interface import ShimStream


def test_wrong_types_get_go_style_400() -> None:
    with pytest.raises(
        InvalidParameter,
        match=r"^invalid JSON: json: cannot unmarshal string into Go struct field "
        r"HostConfig\.HostConfig\.Memory of type int64$",
    ):
        parse_create({"Image": "x", "HostConfig": {"Memory": "lots"}})
    with pytest.raises(InvalidParameter, match=r"Go struct field CreateRequest\.Tty of type bool$"):
        parse_create({"Image": "x", "Tty": "yes"})
    assert parse_create({"Image": "x", "Cmd": "echo hi"}).Cmd == "echo hi"


def test_env_merge_and_command_defaults() -> None:
    assert merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    body = parse_create({"Image": "x", "Entrypoint": ["/bin/ls"]})
    assert effective_command(body, {"Cmd": ["sh"]}) == ([], ["/bin/ls"])
    body = parse_create({"Image": "x"})
    assert effective_command(body, {"Cmd": ["sh"], "Entrypoint": None}) == (["sh"], None)


def test_bind_specs() -> None:
    b = parse_bind("/host/dir:/data:ro")
    assert (b.source, b.destination, b.readonly) == ("/host/dir", "/data", True)
    with pytest.raises(InvalidParameter):
        parse_bind("/a:relative")
    with pytest.raises(InvalidParameter):
        parse_bind("/a:/b:bogus")
    with pytest.raises(NotImplementedYet):
        parse_bind("named:/data")


def test_signals_and_detach_keys() -> None:
    assert parse_signal("KILL") == 9 and parse_signal("SIGTERM") == 15 and parse_signal("2") == 2
    with pytest.raises(InvalidParameter):
        parse_signal("NOPE")
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    with pytest.raises(InvalidParameter):
        parse_detach_keys("ctrl-aa")


def _write_log(path: Path, entries: list[tuple[str, str, str]]) -> None:
    path.write_text("".join(json.dumps({"log": log, "stream": s, "time": t}) + "\n" for s, log, t in entries))


async def test_logs_tail_streams_and_time_window(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    _write_log(
        path,
        [
            ("stdout", "a\n", "2026-01-01T00:00:01.000000000Z"),
            ("stderr", "b\n", "2026-01-01T00:00:02.000000000Z"),
            ("stdout", "c\n", "2026-01-01T00:00:03.000000000Z"),
            ("stdout", "d\n", "2026-01-01T00:00:04.000000000Z"),
        ],
    )

    async def collect(q: LogQuery) -> list[bytes]:
        return [e.data async for e in read_logs(str(path), q, lambda: False)]

    assert await collect(LogQuery()) == [b"a\n", b"b\n", b"c\n", b"d\n"]
    assert await collect(LogQuery(tail=2)) == [b"c\n", b"d\n"]
    assert await collect(LogQuery(stderr=False)) == [b"a\n", b"c\n", b"d\n"]
    since = 1767225602 * 1_000_000_000  # 2026-01-01T00:00:02Z
    assert await collect(LogQuery(since_ns=since, until_ns=since + 1_000_000_000)) == [b"b\n", b"c\n"]


async def test_logs_follow_sees_new_lines_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    _write_log(path, [("stdout", "first\n", "2026-01-01T00:00:01Z")])
    running = True
    got: list[bytes] = []

    async def follow() -> None:
        async for e in read_logs(str(path), LogQuery(follow=True), lambda: running):
            got.append(e.data)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    with open(path, "a") as f:
        f.write(json.dumps({"log": "second\n", "stream": "stdout", "time": "2026-01-01T00:00:02Z"}) + "\n")
    await asyncio.sleep(0.3)
    running = False
    await asyncio.wait_for(task, 5)
    assert got == [b"first\n", b"second\n"]


async def test_logs_read_a_big_file_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "READ_CHUNK", 7)  # every line straddles chunks
    path = tmp_path / "c-json.log"
    _write_log(path, [("stdout", f"{i}\n", "2026-01-01T00:00:01Z") for i in range(50)])

    async def collect(q: LogQuery) -> list[bytes]:
        return [e.data async for e in read_logs(str(path), q, lambda: False)]

    assert await collect(LogQuery()) == [f"{i}\n".encode() for i in range(50)]
    assert await collect(LogQuery(tail=3)) == [b"47\n", b"48\n", b"49\n"]
    assert await collect(LogQuery(tail=0)) == []
    assert [e.data async for e in read_logs(str(tmp_path / "none"), LogQuery(), lambda: False)] == []


async def test_logs_without_follow_stop_at_the_size_the_file_had(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    _write_log(path, [("stdout", "first\n", "2026-01-01T00:00:01Z")])
    got: list[bytes] = []
    async for e in read_logs(str(path), LogQuery(), lambda: True):
        got.append(e.data)
        if len(got) > 3:
            break  # it would never end
        with open(path, "a") as f:  # a container still writing while we read
            f.write(json.dumps({"log": "more\n", "stream": "stdout", "time": "2026-01-01T00:00:02Z"}) + "\n")
    assert got == [b"first\n"]


def test_logs_time_arguments() -> None:
    assert parse_time_arg(None) == parse_time_arg("") == 0
    assert parse_time_arg("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_time_arg("2023-11-14T22:13:20Z") == 1_700_000_000 * 10**9
    assert parse_time_arg("2023-11-14T23:13:20+01:00") == 1_700_000_000 * 10**9
    for refused in ("soon", "10m", "2023-11-14"):  # durations and dates are the CLI's to turn into times
        with pytest.raises(InvalidParameter, match=f"invalid value for time: '{refused}'"):
            parse_time_arg(refused)


class _Client:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def read(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


class _Writer:
    def __init__(self) -> None:
        self.data = b""
        self.eof = False

    def write(self, data: bytes) -> None:
        self.data += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_pump_input_stops_at_detach_keys_and_forwards_eof() -> None:
    w: Any = _Writer()
    shim = ShimStream(reader=None, writer=w)  # type: ignore[arg-type]
    assert await pump_input(shim, _Client([b"ab", b"c\x10\x11zz"]), b"\x10\x11") is True
    assert w.data == b"abc" and not w.eof
    w2: Any = _Writer()
    shim2 = ShimStream(reader=None, writer=w2)  # type: ignore[arg-type]
    assert await pump_input(shim2, _Client([b"x\x10y"]), b"\x10\x11") is False
    assert w2.data == b"x\x10y" and w2.eof


async def test_exec_instances_of_a_stopped_container_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from daemon.containers import execs
    from daemon.containers.execs import ExecInstance, ExecOptions, ExecService

    monkeypatch.setattr(execs, "EXEC_GRACE", 0.05)
    containers = SimpleNamespace(exit_listeners=[])
    svc = ExecService(containers, None, None)  # type: ignore[arg-type]
    svc.execs["e1"] = ExecInstance("e1", "c1", ExecOptions(Cmd=["true"]), running=True)
    svc.execs["e2"] = ExecInstance("e2", "c2", ExecOptions(Cmd=["true"]), running=True)
    for listener in containers.exit_listeners:
        listener(SimpleNamespace(id="c1"))
    assert svc.execs["e1"].running is False and "e1" in svc.execs  # still readable for a while
    await asyncio.sleep(0.2)
    assert list(svc.execs) == ["e2"]
