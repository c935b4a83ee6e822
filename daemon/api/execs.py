"""Routes of the exec API group."""

from typing import Any

from aiohttp import web

from daemon.api.common import Routes, json_response, query_int, read_json_body
from daemon.api.hijack import hijack
from daemon.containers.execs import ExecService
from daemon.errors import InvalidParameter


def _service(request: web.Request) -> ExecService:
    from daemon.api.app import SERVICES

    return request.app[SERVICES].execs


async def post_containers_exec(request: web.Request) -> web.Response:
    body = await read_json_body(request, allow_empty=False)
    return json_response(_service(request).create(request.match_info["id"], body), 201)


async def post_exec_start(request: web.Request) -> web.StreamResponse:
    body = await read_json_body(request)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid exec start body")
    svc = _service(request)
    inst = svc.get(request.match_info["id"])
    # the framing follows the start body's Tty, not the create body's (client-facts.md)
    tty = bool(body.get("Tty", inst.body.Tty))
    detach = bool(body.get("Detach"))
    inst, stream = await svc.open(request.match_info["id"], tty, detach)
    if detach:
        await svc.run_detached(inst, stream)
        return web.Response(status=200)
    async with hijack(request, multiplexed=not tty) as conn:
        await svc.run_attached(inst, stream, conn, tty)
        await conn.drain()
    return conn.response


async def post_exec_resize(request: web.Request) -> web.Response:
    h, w = query_int(request, "h", 0), query_int(request, "w", 0)
    await _service(request).resize(request.match_info["id"], h or 0, w or 0)
    return web.Response(status=200)


async def get_exec_json(request: web.Request) -> web.Response:
    return json_response(_service(request).inspect(request.match_info["id"]))


def register(app: web.Application, services: Any) -> None:
    r = Routes(app)
    r.post("/containers/{id}/exec", post_containers_exec)
    r.post("/exec/{id}/start", post_exec_start)
    r.post("/exec/{id}/resize", post_exec_resize)
    r.get("/exec/{id}/json", get_exec_json)
