"""Network routes: list, inspect, create, remove, connect, disconnect, prune. Thin: parse, call the
service, answer. Bodies are checked only for their shape here, in the words of Go's encoding/json as
dockerd's httputils.ReadJSON wraps them; what the fields mean is the service's business."""

from typing import Any, Protocol

from aiohttp import web

from daemon.api.common import Routes, json_response, query_filters, read_json_body
from daemon.errors import InvalidParameter
from daemon.gojson import check_bool, check_str, type_error, value_error

# moby matches "/networks/{id:.+}": a reference with a slash reaches the service (and is not found
# there) rather than answering "page not found"
ID = "{id:.+}"

# Go's strconv.ParseBool, which dockerd uses for `verbose` (not the lenient httputils.BoolValue)
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class NetworkBackend(Protocol):
    async def list_networks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """GET /networks: Docker's Network objects (inspect shape, Containers {} as Docker lists them)."""
        ...

    async def inspect_network(self, ref: str, verbose: bool, scope: str) -> dict[str, Any]:
        """By full ID, name, or ID prefix as Docker resolves it; NotFound "network <ref> not found"."""
        ...

    async def create_network(self, body: dict[str, Any]) -> dict[str, Any]:
        """{"Id": ..., "Warning": ""}. The body is the raw JSON object; the service validates it."""
        ...

    async def remove_network(self, ref: str) -> None: ...

    async def connect_network(self, ref: str, container: str, endpoint: dict[str, Any] | None) -> None: ...

    async def disconnect_network(self, ref: str, container: str, force: bool) -> None: ...

    async def prune_networks(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """{"NetworksDeleted": [...]}"""
        ...


def go_fields(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The struct's fields as Go's decoder fills them: a key matches a field name case-insensitively,
    and a later key overwrites an earlier one. Unknown keys are ignored, as Go does."""
    by_fold = {name.casefold(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = by_fold.get(key.casefold())
        if name is not None:
            out[name] = value
    return out


async def read_struct(request: web.Request, go_type: str) -> dict[str, Any]:
    """A JSON object body. An empty body or `null` leaves Go's struct empty: {} (no error)."""
    body = await read_json_body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise value_error(body, go_type)
    return body


def query_go_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "")
    if raw == "" or raw in _GO_FALSE:
        return False
    if raw in _GO_TRUE:
        return True
    raise InvalidParameter(
        f'invalid value for {name}: {raw}: strconv.ParseBool: parsing "{raw}": invalid syntax'
    )


class NetworkRoutes:
    def __init__(self, backend: NetworkBackend) -> None:
        self.backend = backend

    async def get_networks(self, request: web.Request) -> web.Response:
        return json_response(await self.backend.list_networks(query_filters(request)))

    async def get_networks_inspect(self, request: web.Request) -> web.Response:
        verbose = query_go_bool(request, "verbose")
        network = await self.backend.inspect_network(
            request.match_info["id"], verbose, request.query.get("scope", "")
        )
        return json_response(network)

    async def post_networks_create(self, request: web.Request) -> web.Response:
        body = await read_struct(request, "network.CreateRequest")
        return json_response(await self.backend.create_network(body), 201)

    async def delete_networks(self, request: web.Request) -> web.Response:
        await self.backend.remove_network(request.match_info["id"])
        return web.Response(status=204)

    async def post_networks_connect(self, request: web.Request) -> web.Response:
        at = ("ConnectOptions", "")
        fields = go_fields(
            await read_struct(request, "network.ConnectOptions"), ("Container", "EndpointConfig")
        )
        container = check_str(fields, "Container", at=at)
        endpoint = fields.get("EndpointConfig")
        if endpoint is not None and not isinstance(endpoint, dict):
            raise type_error(endpoint, "ConnectOptions", "EndpointConfig", "network.EndpointSettings")
        await self.backend.connect_network(request.match_info["id"], container, endpoint)
        return web.Response(status=200)  # dockerd writes no body here

    async def post_networks_disconnect(self, request: web.Request) -> web.Response:
        at = ("DisconnectOptions", "")
        fields = go_fields(await read_struct(request, "network.DisconnectOptions"), ("Container", "Force"))
        container = check_str(fields, "Container", at=at)
        force = check_bool(fields, "Force", at=at)
        await self.backend.disconnect_network(request.match_info["id"], container, force)
        return web.Response(status=200)

    async def post_networks_prune(self, request: web.Request) -> web.Response:
        return json_response(await self.backend.prune_networks(query_filters(request)))


def register(app: web.Application, backend: NetworkBackend) -> None:
    handlers = NetworkRoutes(backend)
    r = Routes(app)
    r.get("/networks", handlers.get_networks)
    r.post("/networks/create", handlers.post_networks_create)
    r.post("/networks/prune", handlers.post_networks_prune)
    r.get(f"/networks/{ID}", handlers.get_networks_inspect)
    r.delete(f"/networks/{ID}", handlers.delete_networks)
    r.post(f"/networks/{ID}/connect", handlers.post_networks_connect)
    r.post(f"/networks/{ID}/disconnect", handlers.post_networks_disconnect)
