"""Exec routes over HTTP against a fake backend (only the exec routes are mounted)."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon.api import execs
from daemon.api.app import error_middleware
from daemon.containers.splice import ClientConn
from daemon.errors import Conflict, no_such_exec
from tests.api.rawhttp import raw_request, upgrade

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]
EID = "e" * 64


class FakeSession:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    async def run(self, conn: ClientConn) -> None:
        stdin = await conn.read()
        conn.write(b"echo:" + stdin)
        await conn.drain()


class FakeExecs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: dict[str, Exception] = {}

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.fail:
            raise self.fail.pop(name)

    def create(self, ref: str, body: object) -> dict[str, str]:
        self._call("create", ref, body)
        return {"Id": EID}

    async def start(self, exec_id: str, tty: bool | None, detach: bool) -> FakeSession | None:
        self._call("start", exec_id, tty, detach)
        return None if detach else FakeSession(bool(tty))

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        self._call("resize", exec_id, height, width)

    def inspect(self, exec_id: str) -> dict[str, Any]:
        self._call("inspect", exec_id)
        return {"ID": exec_id, "Running": False}


@pytest.fixture
def backend() -> FakeExecs:
    return FakeExecs()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, backend: FakeExecs) -> TestClient:
    app = web.Application(middlewares=[error_middleware])
    execs.register(app, backend)
    return await aiohttp_client(app)


async def test_create_and_inspect(client: TestClient, backend: FakeExecs) -> None:
    resp = await client.post("/v1.47/containers/web/exec", json={"Cmd": ["true"]})
    assert resp.status == 201 and await resp.json() == {"Id": EID}
    resp = await client.get(f"/exec/{EID}/json")
    assert resp.status == 200 and await resp.json() == {"ID": EID, "Running": False}
    assert backend.calls == [("create", ("web", {"Cmd": ["true"]})), ("inspect", (EID,))]
    resp = await client.post("/containers/web/exec")
    assert resp.status == 400


async def test_detached_start_answers_200_without_taking_the_connection(
    client: TestClient, backend: FakeExecs
) -> None:
    resp = await client.post(f"/exec/{EID}/start", json={"Detach": True})
    assert resp.status == 200 and await resp.read() == b""
    resp = await client.post(f"/exec/{EID}/start", json={"Detach": True, "Tty": None})
    assert resp.status == 200
    # Tty absent: as the exec was created (None); present: its truth value, null too
    assert backend.calls == [("start", (EID, None, True)), ("start", (EID, False, True))]


@pytest.mark.parametrize(("tty", "content_type"), [(False, "multiplexed-stream"), (True, "raw-stream")])
async def test_attached_start_runs_the_session_over_the_hijacked_connection(
    client: TestClient, backend: FakeExecs, tty: bool, content_type: str
) -> None:
    body = '{"Tty": %s}' % ("true" if tty else "false")
    head, rest = await raw_request(client, upgrade(f"/v1.47/exec/{EID}/start", body), b"hi")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert f"Content-Type: application/vnd.docker.{content_type}".encode() in head
    assert rest == b"echo:hi"
    assert backend.calls == [("start", (EID, tty, False))]


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (no_such_exec(EID), 404, f"No such exec instance: {EID}"),
        (
            Conflict(f"Error: Exec command {EID} has already run"),
            409,
            f"Error: Exec command {EID} has already run",
        ),
    ],
)
async def test_start_errors_come_before_the_upgrade(
    client: TestClient, backend: FakeExecs, error: Exception, status: int, message: str
) -> None:
    backend.fail["start"] = error
    head, rest = await raw_request(client, upgrade(f"/exec/{EID}/start", "{}"))
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Content-Type: application/json" in head
    assert message.encode() in rest


async def test_start_refuses_a_body_that_is_not_an_object(client: TestClient, backend: FakeExecs) -> None:
    resp = await client.post(f"/exec/{EID}/start", json=[1])
    assert resp.status == 400 and await resp.json() == {"message": "invalid exec start body"}
    assert backend.calls == []


async def test_resize(client: TestClient, backend: FakeExecs) -> None:
    assert (await client.post(f"/exec/{EID}/resize?h=40&w=120")).status == 200
    backend.fail["resize"] = Conflict(f"Exec {EID} is not running")
    assert (await client.post(f"/exec/{EID}/resize?h=1&w=1")).status == 409
    assert (await client.post(f"/exec/{EID}/resize?h=tall")).status == 400
    assert backend.calls == [("resize", (EID, 40, 120)), ("resize", (EID, 1, 1))]
