"""Routes of the container API group. Each handler parses, calls the service, writes the answer."""

import json
from collections.abc import Awaitable
from typing import Any, Protocol

from aiohttp import web

from daemon.api.common import Routes, json_response, query_bool, query_filters, query_int, read_json_body
from daemon.api.disconnect import unless_client_leaves
from daemon.api.hijack import MULTIPLEXED_STREAM, RAW_STREAM, ClientSession, serve_hijacked
from daemon.containers.attach import AttachOptions
from daemon.containers.logs import LogRequest, LogStream
from daemon.containers.results import WaitResult
from daemon.frames import frame


class ContainerBackend(Protocol):
    async def create(self, name: str | None, body: object) -> dict[str, Any]: ...

    async def list_summaries(
        self, all_: bool, limit: int | None, filters: dict[str, list[str]], size: bool
    ) -> list[dict[str, Any]]: ...

    async def inspect(self, ref: str, size: bool = False) -> dict[str, Any]: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, timeout: int | None, signal: str | None = None) -> None: ...

    async def restart(self, ref: str, timeout: int | None, signal: str | None = None) -> None: ...

    async def kill(self, ref: str, signal: str | None) -> None: ...

    def wait(self, ref: str, condition: str) -> Awaitable[WaitResult]: ...

    async def remove(self, ref: str, force: bool, volumes: bool) -> None: ...

    async def rename(self, ref: str, new_name: str) -> None: ...

    async def pause(self, ref: str) -> None: ...

    async def unpause(self, ref: str) -> None: ...

    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def resize(self, ref: str, height: int, width: int) -> None: ...

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]: ...

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]: ...

    def logs(self, ref: str, request: LogRequest) -> LogStream: ...

    def prepare_attach(self, ref: str, options: AttachOptions) -> ClientSession: ...


class ContainerRoutes:
    def __init__(self, backend: ContainerBackend) -> None:
        self.backend = backend

    async def post_containers_create(self, request: web.Request) -> web.Response:
        body = await read_json_body(request, allow_empty=False)
        result = await self.backend.create(request.query.get("name"), body)
        return json_response(result, 201)

    async def get_containers_json(self, request: web.Request) -> web.Response:
        work = self.backend.list_summaries(
            query_bool(request, "all"),
            query_int(request, "limit"),
            query_filters(request),
            query_bool(request, "size"),
        )
        # sizes are measured one container after the other: a client that leaves stops the rest
        return json_response(await unless_client_leaves(request, work))

    async def get_containers_inspect(self, request: web.Request) -> web.Response:
        work = self.backend.inspect(request.match_info["id"], query_bool(request, "size"))
        return json_response(await unless_client_leaves(request, work))

    # Start, stop, restart and remove may wait in the container's queue; a client that leaves there
    # takes its request along (the service finishes what has begun, see daemon.containers.locking).

    async def post_containers_start(self, request: web.Request) -> web.Response:
        await unless_client_leaves(request, self.backend.start(request.match_info["id"]))
        return web.Response(status=204)

    async def post_containers_stop(self, request: web.Request) -> web.Response:
        work = self.backend.stop(
            request.match_info["id"], query_int(request, "t"), request.query.get("signal")
        )
        await unless_client_leaves(request, work)
        return web.Response(status=204)

    async def post_containers_restart(self, request: web.Request) -> web.Response:
        work = self.backend.restart(
            request.match_info["id"], query_int(request, "t"), request.query.get("signal")
        )
        await unless_client_leaves(request, work)
        return web.Response(status=204)

    async def post_containers_kill(self, request: web.Request) -> web.Response:
        work = self.backend.kill(request.match_info["id"], request.query.get("signal"))
        await unless_client_leaves(request, work)
        return web.Response(status=204)

    async def post_containers_wait(self, request: web.Request) -> web.StreamResponse:
        # headers at once, body when the condition is met: the docker CLI blocks until it sees the headers
        waiting = self.backend.wait(request.match_info["id"], request.query.get("condition", "not-running"))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        result = await unless_client_leaves(request, waiting)  # the docker CLI drops it after `run -d`
        error = {"Message": result.error} if result.error else None
        await resp.write(json.dumps({"StatusCode": result.status_code, "Error": error}).encode() + b"\n")
        await resp.write_eof()
        return resp

    async def delete_containers(self, request: web.Request) -> web.Response:
        work = self.backend.remove(
            request.match_info["id"], query_bool(request, "force"), query_bool(request, "v")
        )
        await unless_client_leaves(request, work)
        return web.Response(status=204)

    async def post_containers_rename(self, request: web.Request) -> web.Response:
        await self.backend.rename(request.match_info["id"], request.query.get("name", ""))
        return web.Response(status=204)

    async def post_containers_pause(self, request: web.Request) -> web.Response:
        await self.backend.pause(request.match_info["id"])
        return web.Response(status=204)

    async def post_containers_unpause(self, request: web.Request) -> web.Response:
        await self.backend.unpause(request.match_info["id"])
        return web.Response(status=204)

    async def post_containers_update(self, request: web.Request) -> web.Response:
        body = await read_json_body(request)
        return json_response(await self.backend.update(request.match_info["id"], body))

    async def post_containers_resize(self, request: web.Request) -> web.Response:
        h, w = query_int(request, "h", 0), query_int(request, "w", 0)
        await self.backend.resize(request.match_info["id"], h or 0, w or 0)
        return web.Response(status=200)

    async def get_containers_top(self, request: web.Request) -> web.Response:
        top = await self.backend.top(request.match_info["id"], request.query.get("ps_args", ""))
        return json_response(top)

    async def post_containers_prune(self, request: web.Request) -> web.Response:
        return json_response(await self.backend.prune(query_filters(request)))

    async def get_containers_logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        logs = self.backend.logs(
            request.match_info["id"],
            LogRequest(
                stdout=query_bool(request, "stdout"),
                stderr=query_bool(request, "stderr"),
                since=q.get("since"),
                until=q.get("until"),
                tail=q.get("tail"),
                follow=query_bool(request, "follow"),
            ),
        )
        timestamps = query_bool(request, "timestamps")
        resp = web.StreamResponse(status=200)
        resp.content_type = RAW_STREAM if logs.tty else MULTIPLEXED_STREAM
        await resp.prepare(request)

        async def stream() -> None:
            async for entry in logs.entries:
                payload = (entry.time.encode() + b" " + entry.data) if timestamps else entry.data
                if not logs.tty:
                    payload = frame(entry.frame_stream, payload)
                await resp.write(payload)

        await unless_client_leaves(request, stream())  # a follower that left stops following now
        await resp.write_eof()
        return resp

    async def post_containers_attach(self, request: web.Request) -> web.StreamResponse:
        options = AttachOptions(
            stdin=query_bool(request, "stdin"),
            stdout=query_bool(request, "stdout"),
            stderr=query_bool(request, "stderr"),
            logs=query_bool(request, "logs"),
            stream=query_bool(request, "stream"),
            detach_keys=request.query.get("detachKeys"),
        )
        return await serve_hijacked(request, self.backend.prepare_attach(request.match_info["id"], options))


def register(app: web.Application, backend: ContainerBackend) -> None:
    handlers = ContainerRoutes(backend)
    r = Routes(app)
    r.post("/containers/create", handlers.post_containers_create)
    r.get("/containers/json", handlers.get_containers_json)
    r.post("/containers/prune", handlers.post_containers_prune)
    r.get("/containers/{id}/json", handlers.get_containers_inspect)
    r.post("/containers/{id}/start", handlers.post_containers_start)
    r.post("/containers/{id}/stop", handlers.post_containers_stop)
    r.post("/containers/{id}/restart", handlers.post_containers_restart)
    r.post("/containers/{id}/kill", handlers.post_containers_kill)
    r.post("/containers/{id}/wait", handlers.post_containers_wait)
    r.delete("/containers/{id}", handlers.delete_containers)
    r.post("/containers/{id}/rename", handlers.post_containers_rename)
    r.post("/containers/{id}/pause", handlers.post_containers_pause)
    r.post("/containers/{id}/unpause", handlers.post_containers_unpause)
    r.post("/containers/{id}/update", handlers.post_containers_update)
    r.post("/containers/{id}/resize", handlers.post_containers_resize)
    r.get("/containers/{id}/top", handlers.get_containers_top)
    r.get("/containers/{id}/logs", handlers.get_containers_logs)
    r.post("/containers/{id}/attach", handlers.post_containers_attach)
