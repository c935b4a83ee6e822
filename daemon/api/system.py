"""Routes of the system API group: ping, version, info, events."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from daemon.api.common import Routes, json_response, query_filters
from daemon.api.disconnect import unless_client_leaves
from daemon.apiversion import API_VERSION
from daemon.errors import InvalidParameter
from daemon.timefmt import parse_since_until

PING_HEADERS = {
    "Api-Version": API_VERSION,
    "Ostype": "linux",
    "Docker-Experimental": "false",
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


class SystemBackend(Protocol):
    def version(self) -> dict[str, Any]: ...

    def info(self) -> dict[str, Any]: ...


class EventsBackend(Protocol):
    def subscribe(
        self, since_ns: int | None, until_ns: int | None, filters: dict[str, list[str]]
    ) -> AsyncIterator[dict[str, Any]]:
        """Past events from `since`, then live ones until `until` (forever when None)."""
        ...


def parse_event_time(value: str | None, now_ns: int) -> int | None:
    """Docker's since/until (daemon.timefmt.parse_since_until) in Unix nanoseconds; None when unset."""
    if not value:
        return None
    try:
        return parse_since_until(value, now_ns)
    except ValueError as e:
        raise InvalidParameter(f"invalid time value: {value!r}") from e


class SystemRoutes:
    def __init__(self, backend: SystemBackend, events: EventsBackend) -> None:
        self.backend = backend
        self.events = events

    async def get_ping(self, request: web.Request) -> web.Response:
        return web.Response(text="OK", content_type="text/plain", headers=PING_HEADERS)

    async def head_ping(self, request: web.Request) -> web.Response:
        headers = {**PING_HEADERS, "Content-Type": "text/plain; charset=utf-8"}
        return web.Response(status=200, headers=headers)

    async def get_version(self, request: web.Request) -> web.Response:
        return json_response(self.backend.version())

    async def get_info(self, request: web.Request) -> web.Response:
        return json_response(self.backend.info())

    async def get_events(self, request: web.Request) -> web.StreamResponse:
        now = time.time_ns()
        since = parse_event_time(request.query.get("since"), now)
        until = parse_event_time(request.query.get("until"), now)
        filters = query_filters(request)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        async def stream() -> None:
            async for event in self.events.subscribe(since, until, filters):
                await resp.write(json.dumps(event).encode() + b"\n")

        # a client that leaves is noticed now, not at the next event (its subscription goes with it)
        await unless_client_leaves(request, stream())
        await resp.write_eof()
        return resp


def register(app: web.Application, backend: SystemBackend, events: EventsBackend) -> None:
    handlers = SystemRoutes(backend, events)
    r = Routes(app)
    r.get("/_ping", handlers.get_ping)
    r.head("/_ping", handlers.head_ping)
    r.get("/version", handlers.get_version)
    r.get("/info", handlers.get_info)
    r.get("/events", handlers.get_events)
