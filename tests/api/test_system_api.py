"""System routes over HTTP against fake backends (only the system routes are mounted)."""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon.api import system
from daemon.api.app import error_middleware
from daemon.apiversion import API_VERSION

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


class FakeSystem:
    def version(self) -> dict[str, Any]:
        return {"ApiVersion": API_VERSION}

    def info(self) -> dict[str, Any]:
        return {"Containers": 2}


class FakeEvents:
    def __init__(self) -> None:
        self.subscriptions: list[tuple[int | None, int | None, dict[str, list[str]]]] = []
        self.events = [{"Type": "container", "Action": "start"}, {"Type": "image", "Action": "tag"}]

    async def subscribe(
        self, since_ns: int | None, until_ns: int | None, filters: dict[str, list[str]]
    ) -> AsyncIterator[dict[str, Any]]:
        self.subscriptions.append((since_ns, until_ns, filters))
        for event in self.events:
            yield event


@pytest.fixture
def events() -> FakeEvents:
    return FakeEvents()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, events: FakeEvents) -> TestClient:
    app = web.Application(middlewares=[error_middleware])
    system.register(app, FakeSystem(), events)
    return await aiohttp_client(app)


async def test_ping(client: TestClient) -> None:
    resp = await client.get("/_ping")
    assert resp.status == 200 and await resp.text() == "OK"
    assert resp.headers["Api-Version"] == API_VERSION and resp.headers["Content-Type"].startswith(
        "text/plain"
    )
    resp = await client.head("/v1.47/_ping")
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["Ostype"] == "linux"


async def test_version_and_info(client: TestClient) -> None:
    assert await (await client.get("/v1.47/version")).json() == {"ApiVersion": API_VERSION}
    resp = await client.get("/info")
    assert resp.headers["Content-Type"] == "application/json" and await resp.json() == {"Containers": 2}


async def test_events_stream_json_lines_and_pass_times_and_filters(
    client: TestClient, events: FakeEvents
) -> None:
    before = time.time()
    resp = await client.get('/events?since=1700000000.25&until=10m&filters={"type":["container"]}')
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert [json.loads(line) for line in (await resp.read()).splitlines()] == events.events
    [(since, until, filters)] = events.subscriptions
    assert since == 1_700_000_000_250_000_000 and filters == {"type": ["container"]}
    assert until is not None and (before - 600) * 1e9 - 1e9 < until < (time.time() - 600) * 1e9 + 1e9


async def test_events_refuse_a_bad_time(client: TestClient, events: FakeEvents) -> None:
    resp = await client.get("/events?since=yesterday")
    assert resp.status == 400 and await resp.json() == {"message": "invalid time value: 'yesterday'"}
    assert events.subscriptions == []
