"""Container routes over HTTP against a fake backend (only the container routes are mounted): query
parsing, status codes, Docker's error mapping, wait's body, and the framing of logs and attach."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon.api import containers
from daemon.api.app import error_middleware
from daemon.containers.attach import AttachOptions
from daemon.containers.logs import LogEntry, LogRequest, LogStream
from daemon.containers.results import WaitResult
from daemon.containers.splice import ClientConn
from daemon.errors import Conflict, InvalidParameter, NotFound, NotModified, no_such_container
from daemon.frames import frame
from tests.api.rawhttp import raw_request, upgrade

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]
CID = "c" * 64


class FakeSession:
    def __init__(self, tty: bool, output: bytes) -> None:
        self.tty = tty
        self.output = output
        self.stdin = b""

    async def run(self, conn: ClientConn) -> None:
        self.stdin = await conn.read()
        conn.write(self.output)
        await conn.drain()


class FakeContainers:
    """Records each call; `fail` makes the next call of a method raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: dict[str, Exception] = {}
        self.waiting: asyncio.Future[WaitResult] | None = None
        self.entries: list[LogEntry] = []
        self.tty = False
        self.session = FakeSession(False, b"")

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.fail:
            raise self.fail.pop(name)

    async def create(self, name: str | None, body: object) -> dict[str, Any]:
        self._call("create", name, body)
        return {"Id": CID, "Warnings": []}

    async def list_summaries(
        self, all_: bool, limit: int | None, filters: dict[str, list[str]], size: bool
    ) -> list[dict[str, Any]]:
        self._call("list_summaries", all_, limit, filters, size)
        return [{"Id": CID}]

    async def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        self._call("inspect", ref, size)
        return {"Id": CID, "SizeRw": 1} if size else {"Id": CID}

    async def start(self, ref: str) -> None:
        self._call("start", ref)

    async def stop(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        self._call("stop", ref, timeout, signal)

    async def restart(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        self._call("restart", ref, timeout, signal)

    async def kill(self, ref: str, signal: str | None) -> None:
        self._call("kill", ref, signal)

    def wait(self, ref: str, condition: str) -> Awaitable[WaitResult]:
        self._call("wait", ref, condition)
        self.waiting = asyncio.get_running_loop().create_future()
        return self.waiting

    async def remove(self, ref: str, force: bool, volumes: bool) -> None:
        self._call("remove", ref, force, volumes)

    async def rename(self, ref: str, new_name: str) -> None:
        self._call("rename", ref, new_name)

    async def pause(self, ref: str) -> None:
        self._call("pause", ref)

    async def unpause(self, ref: str) -> None:
        self._call("unpause", ref)

    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        self._call("update", ref, body)
        return {"Warnings": []}

    async def resize(self, ref: str, height: int, width: int) -> None:
        self._call("resize", ref, height, width)

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        self._call("top", ref, ps_args)
        return {"Titles": ["PID"], "Processes": [["1"]]}

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        self._call("prune", filters)
        return {"ContainersDeleted": None, "SpaceReclaimed": 0}

    def logs(self, ref: str, request: LogRequest) -> LogStream:
        self._call("logs", ref, request)
        request.query()  # Docker's checks of the values, as the service makes them

        async def entries() -> AsyncIterator[LogEntry]:
            for entry in self.entries:
                yield entry

        return LogStream(self.tty, entries())

    def prepare_attach(self, ref: str, options: AttachOptions) -> FakeSession:
        self._call("prepare_attach", ref, options)
        return self.session


@pytest.fixture
def backend() -> FakeContainers:
    return FakeContainers()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, backend: FakeContainers) -> TestClient:
    app = web.Application(middlewares=[error_middleware])
    containers.register(app, backend)
    return await aiohttp_client(app)


async def test_create_passes_name_and_body_and_answers_201(
    client: TestClient, backend: FakeContainers
) -> None:
    resp = await client.post("/v1.47/containers/create?name=web", json={"Image": "busybox"})
    assert resp.status == 201 and resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"Id": CID, "Warnings": []}
    assert backend.calls == [("create", ("web", {"Image": "busybox"}))]
    resp = await client.post("/containers/create")
    assert resp.status == 400 and await resp.json() == {"message": "request body is empty"}


async def test_ps_parses_all_limit_filters_and_size(client: TestClient, backend: FakeContainers) -> None:
    resp = await client.get('/containers/json?all=1&limit=3&size=true&filters={"status":{"exited":true}}')
    assert resp.status == 200 and await resp.json() == [{"Id": CID}]
    resp = await client.get("/v1.44/containers/json")
    assert resp.status == 200
    assert backend.calls == [
        ("list_summaries", (True, 3, {"status": ["exited"]}, True)),
        ("list_summaries", (False, None, {}, False)),
    ]
    resp = await client.get("/containers/json?limit=many")
    assert resp.status == 400 and await resp.json() == {"message": "invalid value for limit: 'many'"}
    resp = await client.get("/containers/json?filters=[1]")
    assert resp.status == 400
    assert len(backend.calls) == 2


async def test_inspect_size_and_404(client: TestClient, backend: FakeContainers) -> None:
    assert await (await client.get("/containers/web/json?size=1")).json() == {"Id": CID, "SizeRw": 1}
    backend.fail["inspect"] = no_such_container("nope")
    resp = await client.get("/containers/nope/json")
    assert resp.status == 404 and resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"message": "No such container: nope"}
    assert backend.calls == [("inspect", ("web", True)), ("inspect", ("nope", False))]


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, 204), (NotModified("container already started"), 304), (Conflict("paused"), 409)],
)
async def test_start_maps_errors(
    client: TestClient, backend: FakeContainers, error: Exception | None, status: int
) -> None:
    if error is not None:
        backend.fail["start"] = error
    resp = await client.post("/v1.47/containers/web/start")
    assert resp.status == status
    if status == 409:
        assert await resp.json() == {"message": "paused"}
    else:
        assert await resp.read() == b""


async def test_stop_restart_kill_remove_parse_their_options(
    client: TestClient, backend: FakeContainers
) -> None:
    assert (await client.post("/containers/web/stop?t=5&signal=SIGINT")).status == 204
    assert (await client.post("/containers/web/stop")).status == 204
    assert (await client.post("/containers/web/restart?t=-1")).status == 204
    assert (await client.post("/containers/web/kill?signal=HUP")).status == 204
    assert (await client.delete("/containers/web?force=1&v=1")).status == 204
    assert (await client.delete("/containers/web")).status == 204
    assert backend.calls == [
        ("stop", ("web", 5, "SIGINT")),
        ("stop", ("web", None, None)),
        ("restart", ("web", -1, None)),
        ("kill", ("web", "HUP")),
        ("remove", ("web", True, True)),
        ("remove", ("web", False, False)),
    ]
    resp = await client.post("/containers/web/stop?t=soon")
    assert resp.status == 400 and len(backend.calls) == 6


async def test_small_routes(client: TestClient, backend: FakeContainers) -> None:
    assert (await client.post("/containers/web/rename?name=db")).status == 204
    assert (await client.post("/containers/web/pause")).status == 204
    assert (await client.post("/containers/web/unpause")).status == 204
    resp = await client.post("/containers/web/update", json={"Memory": 1 << 20})
    assert resp.status == 200 and await resp.json() == {"Warnings": []}
    assert (await client.post("/containers/web/resize?h=24&w=80")).status == 200
    assert (await client.post("/containers/web/resize")).status == 200
    resp = await client.get("/containers/web/top?ps_args=aux")
    assert await resp.json() == {"Titles": ["PID"], "Processes": [["1"]]}
    resp = await client.post('/containers/prune?filters={"label":["a=b"]}')
    assert await resp.json() == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    assert backend.calls == [
        ("rename", ("web", "db")),
        ("pause", ("web",)),
        ("unpause", ("web",)),
        ("update", ("web", {"Memory": 1 << 20})),
        ("resize", ("web", 24, 80)),
        ("resize", ("web", 0, 0)),
        ("top", ("web", "aux")),
        ("prune", ({"label": ["a=b"]},)),
    ]


@pytest.mark.parametrize(
    ("result", "body"),
    [
        (WaitResult(3), {"StatusCode": 3, "Error": None}),
        (
            WaitResult(0, "unable to remove filesystem"),
            {"StatusCode": 0, "Error": {"Message": "unable to remove filesystem"}},
        ),
    ],
)
async def test_wait_answers_200_at_once_and_the_body_later(
    client: TestClient, backend: FakeContainers, result: WaitResult, body: dict[str, Any]
) -> None:
    resp = await client.post("/containers/web/wait?condition=removed")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    assert backend.calls == [("wait", ("web", "removed"))]
    assert backend.waiting is not None and not backend.waiting.done()
    backend.waiting.set_result(result)
    assert json.loads(await resp.read()) == body


async def test_wait_errors_come_before_the_headers(client: TestClient, backend: FakeContainers) -> None:
    backend.fail["wait"] = InvalidParameter("invalid condition: 'soon'")
    resp = await client.post("/containers/web/wait?condition=soon")
    assert resp.status == 400 and await resp.json() == {"message": "invalid condition: 'soon'"}
    await client.post("/containers/web/wait")
    assert backend.calls[-1] == ("wait", ("web", "not-running"))
    assert backend.waiting is not None
    backend.waiting.set_result(WaitResult(0))


ENTRIES = [
    LogEntry("stdout", b"out\n", "2024-01-01T00:00:00.000000001Z"),
    LogEntry("stderr", b"err\n", "2024-01-01T00:00:01Z"),
]


async def test_logs_without_tty_are_multiplexed(client: TestClient, backend: FakeContainers) -> None:
    backend.entries = ENTRIES
    resp = await client.get("/v1.47/containers/web/logs?stdout=1&stderr=1&since=10&until=20.5&tail=5")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    assert await resp.read() == frame(1, b"out\n") + frame(2, b"err\n")
    assert backend.calls == [("logs", ("web", LogRequest(True, True, "10", "20.5", "5", False)))]


async def test_logs_with_tty_are_raw_and_timestamps_prefix_each_entry(
    client: TestClient, backend: FakeContainers
) -> None:
    backend.entries, backend.tty = ENTRIES, True
    resp = await client.get("/containers/web/logs?stdout=1&timestamps=1&follow=1")
    assert resp.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert await resp.read() == b"2024-01-01T00:00:00.000000001Z out\n2024-01-01T00:00:01Z err\n"
    assert backend.calls == [("logs", ("web", LogRequest(True, False, None, None, None, True)))]


async def test_logs_refusals(client: TestClient, backend: FakeContainers) -> None:
    resp = await client.get("/containers/web/logs")
    assert resp.status == 400
    assert await resp.json() == {"message": "Bad parameters: you must choose at least one stream"}
    resp = await client.get("/containers/web/logs?stdout=1&tail=some")
    assert resp.status == 400 and await resp.json() == {"message": "invalid value for tail: 'some'"}
    backend.fail["logs"] = NotFound("No such container: nope")
    resp = await client.get("/containers/nope/logs?stdout=1")
    assert resp.status == 404


@pytest.mark.parametrize(("tty", "content_type"), [(False, "multiplexed-stream"), (True, "raw-stream")])
async def test_attach_hijacks_the_connection_and_runs_the_session(
    client: TestClient, backend: FakeContainers, tty: bool, content_type: str
) -> None:
    backend.session = FakeSession(tty, b"copied")
    path = "/v1.47/containers/web/attach?stdin=1&stdout=1&stream=1&detachKeys=ctrl-x"
    head, rest = await raw_request(client, upgrade(path), b"typed")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert f"Content-Type: application/vnd.docker.{content_type}".encode() in head
    assert rest == b"copied" and backend.session.stdin == b"typed"
    options = AttachOptions(
        stdin=True, stdout=True, stderr=False, logs=False, stream=True, detach_keys="ctrl-x"
    )
    assert backend.calls == [("prepare_attach", ("web", options))]


async def test_attach_errors_come_before_the_upgrade(client: TestClient, backend: FakeContainers) -> None:
    backend.fail["prepare_attach"] = InvalidParameter("Invalid detach keys (ctrl-ä) provided")
    resp = await client.post("/containers/web/attach?stdin=1&detachKeys=ctrl-ä")
    assert resp.status == 400
    assert await resp.json() == {"message": "Invalid detach keys (ctrl-ä) provided"}
