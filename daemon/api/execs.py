"""Routes of the exec API group."""

from typing import Any, Protocol

from aiohttp import web

from daemon.api.common import Routes, json_response, query_int, read_json_body
from daemon.api.hijack import ClientSession, serve_hijacked
from daemon.errors import InvalidParameter


class ExecBackend(Protocol):
    def create(self, ref: str, body: object) -> dict[str, str]: ...

    async def start(self, exec_id: str, tty: bool | None, detach: bool) -> ClientSession | None: ...

    async def resize(self, exec_id: str, height: int, width: int) -> None: ...

    def inspect(self, exec_id: str) -> dict[str, Any]: ...


class ExecRoutes:
    def __init__(self, backend: ExecBackend) -> None:
        self.backend = backend

    async def post_containers_exec(self, request: web.Request) -> web.Response:
        body = await read_json_body(request, allow_empty=False)
        return json_response(self.backend.create(request.match_info["id"], body), 201)

    async def post_exec_start(self, request: web.Request) -> web.StreamResponse:
        body = await read_json_body(request)
        if not isinstance(body, dict):
            raise InvalidParameter("invalid exec start body")
        tty = bool(body["Tty"]) if "Tty" in body else None  # None: as the exec was created
        session = await self.backend.start(request.match_info["id"], tty, bool(body.get("Detach")))
        if session is None:  # detached
            return web.Response(status=200)
        return await serve_hijacked(request, session)

    async def post_exec_resize(self, request: web.Request) -> web.Response:
        h, w = query_int(request, "h", 0), query_int(request, "w", 0)
        await self.backend.resize(request.match_info["id"], h or 0, w or 0)
        return web.Response(status=200)

    async def get_exec_json(self, request: web.Request) -> web.Response:
        return json_response(self.backend.inspect(request.match_info["id"]))


def register(app: web.Application, backend: ExecBackend) -> None:
    handlers = ExecRoutes(backend)
    r = Routes(app)
    r.post("/containers/{id}/exec", handlers.post_containers_exec)
    r.post("/exec/{id}/start", handlers.post_exec_start)
    r.post("/exec/{id}/resize", handlers.post_exec_resize)
    r.get("/exec/{id}/json", handlers.get_exec_json)
