"""Routes of the container API group. Each handler parses, calls the service, writes the answer."""

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from daemon.api.common import Routes, json_response, query_bool, query_filters, query_int, read_json_body
from daemon.api.disconnect import unless_client_leaves
from daemon.api.hijack import hijack
from daemon.containers import listing
from daemon.containers.logs import LogQuery, parse_time_arg, read_logs
from daemon.containers.service import ContainerService, WaitError
from daemon.containers.streams import parse_detach_keys, splice
from daemon.errors import InvalidParameter
from daemon.runtime.client import RuntimeFailure
from daemon.runtime.frames import HEADER


def _service(request: web.Request) -> ContainerService:
    from daemon.api.app import SERVICES

    return request.app[SERVICES].containers


async def post_containers_create(request: web.Request) -> web.Response:
    body = await read_json_body(request, allow_empty=False)
    result = await _service(request).create(request.query.get("name"), body)
    return json_response(result, 201)


async def get_containers_json(request: web.Request) -> web.Response:
    svc = _service(request)
    filters = query_filters(request)
    image_ids = {}
    for ref in filters.get("ancestor", []):
        with contextlib.suppress(Exception):
            image_ids[ref] = (await svc.images.resolve(ref)).id
    chosen = listing.select(
        svc.all(), query_bool(request, "all"), query_int(request, "limit"), filters, image_ids
    )
    if not query_bool(request, "size"):
        return json_response([listing.summary(c) for c in chosen])
    # measured one after the other, off the event loop; a client that leaves stops the rest
    sizes = await unless_client_leaves(request, _sizes(svc, chosen))
    return json_response([listing.summary(c, size) for c, size in zip(chosen, sizes, strict=True)])


async def _sizes(svc: ContainerService, chosen: list[Any]) -> list[int]:
    return [await svc.size_rw(c) for c in chosen]


async def get_containers_inspect(request: web.Request) -> web.Response:
    work = _service(request).inspect(request.match_info["id"], query_bool(request, "size"))
    return json_response(await unless_client_leaves(request, work))


# Start, stop, restart and remove may wait in the container's queue; a client that leaves there takes
# its request along (the service finishes what has begun, see daemon.containers.locking).


async def post_containers_start(request: web.Request) -> web.Response:
    await unless_client_leaves(request, _service(request).start(request.match_info["id"]))
    return web.Response(status=204)


async def post_containers_stop(request: web.Request) -> web.Response:
    work = _service(request).stop(
        request.match_info["id"], query_int(request, "t"), request.query.get("signal")
    )
    await unless_client_leaves(request, work)
    return web.Response(status=204)


async def post_containers_restart(request: web.Request) -> web.Response:
    work = _service(request).restart(
        request.match_info["id"], query_int(request, "t"), request.query.get("signal")
    )
    await unless_client_leaves(request, work)
    return web.Response(status=204)


async def post_containers_kill(request: web.Request) -> web.Response:
    await unless_client_leaves(
        request, _service(request).kill(request.match_info["id"], request.query.get("signal"))
    )
    return web.Response(status=204)


async def post_containers_wait(request: web.Request) -> web.StreamResponse:
    # headers at once, body when the condition is met: the docker CLI blocks until it sees the headers
    c, fut = _service(request).wait_future(
        request.match_info["id"], request.query.get("condition", "not-running")
    )
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        code = await unless_client_leaves(request, fut)  # the docker CLI drops it after `run -d`
        error = c.state.error
    except WaitError as e:  # the removal failed: the container stays, dead
        code, error = e.code, e.message
    body = {"StatusCode": code, "Error": {"Message": error} if error else None}
    await resp.write(json.dumps(body).encode() + b"\n")
    await resp.write_eof()
    return resp


async def delete_containers(request: web.Request) -> web.Response:
    work = _service(request).remove(
        request.match_info["id"], query_bool(request, "force"), query_bool(request, "v")
    )
    await unless_client_leaves(request, work)
    return web.Response(status=204)


async def post_containers_rename(request: web.Request) -> web.Response:
    name = request.query.get("name", "")
    await _service(request).rename(request.match_info["id"], name)
    return web.Response(status=204)


async def post_containers_pause(request: web.Request) -> web.Response:
    await _service(request).pause(request.match_info["id"])
    return web.Response(status=204)


async def post_containers_unpause(request: web.Request) -> web.Response:
    await _service(request).unpause(request.match_info["id"])
    return web.Response(status=204)


async def post_containers_update(request: web.Request) -> web.Response:
    body = await read_json_body(request)
    return json_response(await _service(request).update(request.match_info["id"], body))


async def post_containers_resize(request: web.Request) -> web.Response:
    h, w = query_int(request, "h", 0), query_int(request, "w", 0)
    await _service(request).resize(request.match_info["id"], h or 0, w or 0)
    return web.Response(status=200)


async def get_containers_top(request: web.Request) -> web.Response:
    return json_response(
        await _service(request).top(request.match_info["id"], request.query.get("ps_args", ""))
    )


async def post_containers_prune(request: web.Request) -> web.Response:
    return json_response(await _service(request).prune(query_filters(request)))


async def get_containers_logs(request: web.Request) -> web.StreamResponse:
    svc = _service(request)
    c = svc.get(request.match_info["id"])
    q = LogQuery(
        stdout=query_bool(request, "stdout"),
        stderr=query_bool(request, "stderr"),
        since_ns=parse_time_arg(request.query.get("since")),
        until_ns=parse_time_arg(request.query.get("until")),
        follow=query_bool(request, "follow"),
        tail=_tail(request.query.get("tail")),
    )
    if not (q.stdout or q.stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    tty = bool(c.config.get("Tty"))
    timestamps = query_bool(request, "timestamps")
    resp = web.StreamResponse(status=200)
    resp.content_type = (
        "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    )
    await resp.prepare(request)

    async def stream() -> None:
        async for entry in read_logs(
            c.data["LogPath"], q, lambda: c.running and svc.store.find(c.id) is not None
        ):
            payload = (entry.time.encode() + b" " + entry.data) if timestamps else entry.data
            if tty:
                await resp.write(payload)
            else:
                await resp.write(HEADER.pack(1 if entry.stream == "stdout" else 2, len(payload)) + payload)

    await unless_client_leaves(request, stream())  # a follower that left stops following now
    await resp.write_eof()
    return resp


def _tail(value: str | None) -> int | None:
    if value is None or value in ("", "all"):
        return None
    try:
        return int(value)
    except ValueError as e:
        raise InvalidParameter(f"invalid value for tail: {value!r}") from e


async def post_containers_attach(request: web.Request) -> web.StreamResponse:
    svc = _service(request)
    c = svc.get(request.match_info["id"])
    stdin, stdout, stderr = (query_bool(request, k) for k in ("stdin", "stdout", "stderr"))
    logs, stream = query_bool(request, "logs"), query_bool(request, "stream")
    tty = bool(c.config.get("Tty"))
    # like Docker, the detach keys only apply to a TTY: piped stdin is passed on byte for byte
    keys = parse_detach_keys(request.query.get("detachKeys")) if stdin and tty else None
    async with hijack(request, multiplexed=not tty) as conn:
        if logs:
            q = LogQuery(stdout=stdout, stderr=stderr)
            async for entry in read_logs(c.data["LogPath"], q, lambda: False):
                kind = 1 if entry.stream == "stdout" else 2
                conn.write(entry.data if tty else HEADER.pack(kind, len(entry.data)) + entry.data)
        if stream:
            attach_task = asyncio.ensure_future(svc.attach(c.id, stdin, stdout, stderr))
            # a client that hangs up before the container starts must not leave a waiting attach behind
            closed = asyncio.ensure_future(conn.wait_closed())
            done, _ = await asyncio.wait({attach_task, closed}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if attach_task not in done:
                attach_task.cancel()
                return conn.response
            try:
                _, shim = attach_task.result()
            except RuntimeFailure:  # the start failed: its own request reports why
                return conn.response
            if shim is not None:
                await splice(shim, conn, tty, stdin, keys)
        await conn.drain()
    return conn.response


def register(app: web.Application, services: Any) -> None:
    r = Routes(app)
    r.post("/containers/create", post_containers_create)
    r.get("/containers/json", get_containers_json)
    r.post("/containers/prune", post_containers_prune)
    r.get("/containers/{id}/json", get_containers_inspect)
    r.post("/containers/{id}/start", post_containers_start)
    r.post("/containers/{id}/stop", post_containers_stop)
    r.post("/containers/{id}/restart", post_containers_restart)
    r.post("/containers/{id}/kill", post_containers_kill)
    r.post("/containers/{id}/wait", post_containers_wait)
    r.delete("/containers/{id}", delete_containers)
    r.post("/containers/{id}/rename", post_containers_rename)
    r.post("/containers/{id}/pause", post_containers_pause)
    r.post("/containers/{id}/unpause", post_containers_unpause)
    r.post("/containers/{id}/update", post_containers_update)
    r.post("/containers/{id}/resize", post_containers_resize)
    r.get("/containers/{id}/top", get_containers_top)
    r.get("/containers/{id}/logs", get_containers_logs)
    r.post("/containers/{id}/attach", post_containers_attach)
