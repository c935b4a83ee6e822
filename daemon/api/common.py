"""Helpers shared by the route modules: JSON responses, query parsing, double registration."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from daemon.api.request_json import parse_json
from daemon.apiversion import API_VERSION, parse_version
from daemon.errors import InvalidParameter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

VERSION_PREFIX = r"/v{api_version:[0-9]+\.[0-9]+}"


def api_version(request: web.Request) -> tuple[int, ...]:
    """The API version the client asked for in the path; the current one for a bare path."""
    return parse_version(request.match_info.get("api_version") or API_VERSION)


def json_response(data: Any, status: int = 200) -> web.Response:
    # Content-Type exactly application/json: some clients only parse error bodies then.
    return web.Response(
        body=json.dumps(data).encode() + b"\n", status=status, content_type="application/json"
    )


def error_response(message: str, status: int) -> web.Response:
    return json_response({"message": message}, status)


class Routes:
    """Registers each route both bare and under /vX.YZ, as Docker serves them."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)
        self.app.router.add_route(method, VERSION_PREFIX + path, handler)

    def get(self, path: str, handler: Handler) -> None:
        # aiohttp adds HEAD for GET routes by default; we register HEAD explicitly where needed.
        self.app.router.add_get(path, handler, allow_head=False)
        self.app.router.add_get(VERSION_PREFIX + path, handler, allow_head=False)

    def post(self, path: str, handler: Handler) -> None:
        self.add("POST", path, handler)

    def delete(self, path: str, handler: Handler) -> None:
        self.add("DELETE", path, handler)

    def head(self, path: str, handler: Handler) -> None:
        self.add("HEAD", path, handler)


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    return raw.strip().lower() not in ("", "0", "false", "no", "none")  # moby's httputils.BoolValue


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise InvalidParameter(f"invalid value for {name}: {raw!r}") from e


def query_filters(request: web.Request) -> dict[str, list[str]]:
    """Docker's `filters` query parameter: {"name": ["a"]} or the old {"name": {"a": true}}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        parsed = parse_json(raw)
    except InvalidParameter as e:
        raise InvalidParameter(f"invalid filter: {e.message}") from None
    if not isinstance(parsed, dict):
        raise InvalidParameter("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in parsed.items():
        if isinstance(value, dict):
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            raise InvalidParameter(f"invalid filter value for {key!r}")
    return out


async def read_json_body(request: web.Request, allow_empty: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise InvalidParameter("request body is empty")
    return parse_json(raw)
