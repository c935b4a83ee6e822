"""Image routes: import, load, list, inspect, tag, delete. Thin: parse, call the service, answer."""

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from aiohttp import web

from daemon.api.common import Routes, api_version, json_response, query_bool, query_filters
from daemon.errors import DaemonError, InvalidParameter, NotImplementedYet
from daemon.images.uploads import AsyncReadable

log = logging.getLogger(__name__)

# image names contain slashes ("127.0.0.1:5055/smoke/built:1"), so {name} takes everything
NAME = "{name:.+}"


Records = list[dict[str, str]]  # a name, because `list` is a method of the protocol below


class ImageBackend(Protocol):
    async def import_image(
        self,
        stream: AsyncReadable,
        repo: str | None,
        tag: str | None,
        changes: Sequence[str],
        message: str | None,
        platform: str | None,
    ) -> str: ...

    def load(self, stream: AsyncReadable) -> AsyncIterator[dict[str, Any]]: ...

    def list(
        self, all_: bool, filters: dict[str, list[str]], digests: bool = False
    ) -> list[dict[str, Any]]: ...

    def inspect(self, ref: str) -> dict[str, Any]: ...

    def tag(self, ref: str, repo: str, tag: str | None) -> None: ...

    def delete(self, ref: str, force: bool, noprune: bool) -> Records: ...


def _older_than(request: web.Request, version: tuple[int, int]) -> bool:
    return api_version(request) < version


class JSONStream:
    """A chunked application/json message stream; headers go out with the first message."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.response is None:
            self.response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            self.response.enable_chunked_encoding()
            await self.response.prepare(self.request)
        await self.response.write(json.dumps(message).encode() + b"\r\n")

    async def send_error(self, message: str) -> None:
        await self.send({"errorDetail": {"message": message}, "error": message})

    async def finish(self) -> web.StreamResponse:
        assert self.response is not None
        await self.response.write_eof()
        return self.response


class ImageRoutes:
    def __init__(self, backend: ImageBackend) -> None:
        self.backend = backend

    async def post_images_create(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("fromImage"):
            raise NotImplementedYet("pulling images from a registry is not implemented yet")
        src = q.get("fromSrc", "")
        if not src:
            raise InvalidParameter("either fromImage or fromSrc is required")
        if src != "-":
            raise NotImplementedYet("importing images from a URL is not implemented yet")
        # a client that goes away mid-upload: the failed unpack cleans up after itself, and
        # error_middleware drops the ConnectionError quietly
        image_id = await self.backend.import_image(
            request.content,
            q.get("repo") or None,
            q.get("tag") or None,
            q.getall("changes", []),
            q.get("message") or None,
            q.get("platform") or None,
        )
        stream = JSONStream(request)
        await stream.send({"status": image_id})
        return await stream.finish()

    async def post_images_load(self, request: web.Request) -> web.StreamResponse:
        # Docker answers 200 and reports failures inside the stream; `quiet` only hides progress bars
        stream = JSONStream(request)
        try:
            async for message in self.backend.load(request.content):
                await stream.send(message)
        except ConnectionError:  # the client went away: error_middleware drops it quietly
            raise
        except DaemonError as e:
            await stream.send_error(e.message)
        except Exception as e:  # the status line may be out already: report it in the stream
            log.exception("loading images failed")
            await stream.send_error(str(e) or e.__class__.__name__)
        if stream.response is None:  # an archive with nothing in it
            stream.response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            stream.response.enable_chunked_encoding()
            await stream.response.prepare(request)
        return await stream.finish()

    async def get_images_json(self, request: web.Request) -> web.StreamResponse:
        filters = query_filters(request)
        legacy_filter = request.query.get("filter")
        if legacy_filter and _older_than(request, (1, 41)):
            filters.setdefault("reference", []).append(legacy_filter)
        images = self.backend.list(query_bool(request, "all"), filters, query_bool(request, "digests"))
        use_none = _older_than(request, (1, 43))
        virtual_size = _older_than(request, (1, 44))
        for image in images:
            if use_none and not image["RepoTags"] and not image["RepoDigests"]:
                image["RepoTags"] = ["<none>:<none>"]
                image["RepoDigests"] = ["<none>@<none>"]
            if virtual_size:
                image["VirtualSize"] = image["Size"]
        return json_response(images)

    async def get_images_inspect(self, request: web.Request) -> web.StreamResponse:
        image = self.backend.inspect(request.match_info["name"])
        if _older_than(request, (1, 44)):
            image["VirtualSize"] = image["Size"]
        return json_response(image)

    async def post_images_tag(self, request: web.Request) -> web.StreamResponse:
        self.backend.tag(
            request.match_info["name"], request.query.get("repo", ""), request.query.get("tag") or None
        )
        return web.Response(status=201)

    async def delete_images(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not name.strip():
            raise InvalidParameter("image name cannot be blank")
        records = self.backend.delete(name, query_bool(request, "force"), query_bool(request, "noprune"))
        return json_response(records)


def register(app: web.Application, backend: ImageBackend) -> None:
    handlers = ImageRoutes(backend)
    routes = Routes(app)
    routes.post("/images/create", handlers.post_images_create)
    routes.post("/images/load", handlers.post_images_load)
    routes.get("/images/json", handlers.get_images_json)
    routes.get(f"/images/{NAME}/json", handlers.get_images_inspect)
    routes.post(f"/images/{NAME}/tag", handlers.post_images_tag)
    routes.delete(f"/images/{NAME}", handlers.delete_images)
