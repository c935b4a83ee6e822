"""Network routes over HTTP against a fake backend that records what the routes pass it.

The fake stands for daemon.networks.service: it answers fixed objects, and raises the daemon error
a test asks for, so these tests see only what the route layer does (parsing, status codes, bodies).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon.api import networks
from daemon.api.app import error_middleware, version_middleware
from daemon.errors import DaemonError, Forbidden, NotFound

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]

NET_ID = "a" * 64
NETWORK: dict[str, Any] = {
    "Name": "web",
    "Id": NET_ID,
    "Created": "2024-01-01T00:00:00.000000000Z",
    "Scope": "local",
    "Driver": "bridge",
    "EnableIPv6": False,
    "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.210.0.0/16"}]},
    "Internal": False,
    "Attachable": False,
    "Ingress": False,
    "ConfigFrom": {"Network": ""},
    "ConfigOnly": False,
    "Containers": {},
    "Options": {},
    "Labels": {},
}


class FakeNetworks:
    """Records each call as (method, args...); raises `fail` instead when a test sets it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: DaemonError | None = None

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.fail is not None:
            raise self.fail

    async def list_networks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        self._record("list", filters)
        return [NETWORK]

    async def inspect_network(self, ref: str, verbose: bool, scope: str) -> dict[str, Any]:
        self._record("inspect", ref, verbose, scope)
        return NETWORK

    async def create_network(self, body: dict[str, Any]) -> dict[str, Any]:
        self._record("create", body)
        return {"Id": NET_ID, "Warning": ""}

    async def remove_network(self, ref: str) -> None:
        self._record("remove", ref)

    async def connect_network(self, ref: str, container: str, endpoint: dict[str, Any] | None) -> None:
        self._record("connect", ref, container, endpoint)

    async def disconnect_network(self, ref: str, container: str, force: bool) -> None:
        self._record("disconnect", ref, container, force)

    async def prune_networks(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        self._record("prune", filters)
        return {"NetworksDeleted": ["web"]}


@pytest.fixture
def backend() -> FakeNetworks:
    return FakeNetworks()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, backend: FakeNetworks) -> TestClient:
    app = web.Application(middlewares=[error_middleware, version_middleware])
    networks.register(app, backend)
    return await aiohttp_client(app)


async def message(resp: Any) -> str:
    assert resp.headers["Content-Type"] == "application/json"
    return str((await resp.json())["message"])


async def test_list_passes_parsed_filters(client: TestClient, backend: FakeNetworks) -> None:
    resp = await client.get("/v1.47/networks")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == [NETWORK]
    new_form = json.dumps({"driver": ["bridge"], "type": ["custom"]})
    old_form = json.dumps({"name": {"web": True, "db": False}})
    assert (await client.get("/networks", params={"filters": new_form})).status == 200
    assert (await client.get("/networks", params={"filters": old_form})).status == 200
    assert backend.calls == [
        ("list", {}),
        ("list", {"driver": ["bridge"], "type": ["custom"]}),
        ("list", {"name": ["web"]}),
    ]


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        ("{nope", "invalid filter: invalid JSON: Expecting property name enclosed in double quotes"),
        ('["driver"]', "invalid filter: expected a JSON object"),
        ('{"driver": "bridge"}', "invalid filter value for 'driver'"),
    ],
)
async def test_bad_filters_are_400_before_the_backend(
    client: TestClient, backend: FakeNetworks, filters: str, words: str
) -> None:
    for path in ("/networks", "/networks/prune"):
        resp = await client.request(
            "GET" if path == "/networks" else "POST", path, params={"filters": filters}
        )
        assert resp.status == 400
        assert (await message(resp)).startswith(words)
    assert backend.calls == []


async def test_inspect_passes_verbose_and_scope(client: TestClient, backend: FakeNetworks) -> None:
    resp = await client.get("/v1.47/networks/web")
    assert resp.status == 200 and await resp.json() == NETWORK
    await client.get("/networks/web?verbose=true&scope=local")
    await client.get("/networks/web?verbose=0")
    await client.get("/networks/web?verbose=")
    # moby's route is /networks/{id:.+}: a reference with a slash reaches the lookup
    await client.get("/networks/a/b")
    assert backend.calls == [
        ("inspect", "web", False, ""),
        ("inspect", "web", True, "local"),
        ("inspect", "web", False, ""),
        ("inspect", "web", False, ""),
        ("inspect", "a/b", False, ""),
    ]


@pytest.mark.parametrize("raw", ["yes", "on", "2", "tRuE"])
async def test_inspect_verbose_is_parsed_as_go_parsebool(
    client: TestClient, backend: FakeNetworks, raw: str
) -> None:
    resp = await client.get("/networks/web", params={"verbose": raw})
    assert resp.status == 400
    assert await message(resp) == (
        f'invalid value for verbose: {raw}: strconv.ParseBool: parsing "{raw}": invalid syntax'
    )
    assert backend.calls == []


async def test_daemon_errors_map_to_their_status(client: TestClient, backend: FakeNetworks) -> None:
    backend.fail = NotFound("network nope not found")
    resp = await client.get("/v1.47/networks/nope")
    assert resp.status == 404 and await resp.json() == {"message": "network nope not found"}
    resp = await client.delete("/networks/nope")
    assert resp.status == 404 and await message(resp) == "network nope not found"
    resp = await client.post("/networks/nope/connect", json={"Container": "c1"})
    assert resp.status == 404 and await message(resp) == "network nope not found"
    backend.fail = Forbidden("bridge is a pre-defined network and cannot be removed")
    resp = await client.delete("/networks/bridge")
    assert resp.status == 403
    assert await message(resp) == "bridge is a pre-defined network and cannot be removed"


async def test_create_answers_201_and_passes_the_raw_body(client: TestClient, backend: FakeNetworks) -> None:
    body = {"Name": "web", "Driver": "bridge", "IPAM": {"Config": [{"Subnet": "10.210.0.0/16"}]}, "x": 1}
    resp = await client.post("/v1.47/networks/create", json=body)
    assert resp.status == 201 and resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"Id": NET_ID, "Warning": ""}
    # an empty body and `null` leave Go's struct empty: the service then says the name is missing
    await client.post("/networks/create", data=b"")
    await client.post("/networks/create", data=b"null")
    assert backend.calls == [("create", body), ("create", {}), ("create", {})]


@pytest.mark.parametrize(
    ("path", "go_type"),
    [
        ("/networks/create", "network.CreateRequest"),
        ("/networks/web/connect", "network.ConnectOptions"),
        ("/networks/web/disconnect", "network.DisconnectOptions"),
    ],
)
async def test_bodies_that_are_not_json_objects_are_400(
    client: TestClient, backend: FakeNetworks, path: str, go_type: str
) -> None:
    resp = await client.post(path, data=b'{"Name": ')
    assert resp.status == 400
    assert (await message(resp)).startswith("invalid JSON: Expecting value")
    resp = await client.post(path, data=b'["web"]')
    assert resp.status == 400
    assert (
        await message(resp) == f"invalid JSON: json: cannot unmarshal array into Go value of type {go_type}"
    )
    resp = await client.post(path, data=b'"web"')
    assert (
        await message(resp) == f"invalid JSON: json: cannot unmarshal string into Go value of type {go_type}"
    )
    assert backend.calls == []


async def test_delete_answers_204_without_a_body(client: TestClient, backend: FakeNetworks) -> None:
    resp = await client.delete("/v1.47/networks/web")
    assert resp.status == 204 and await resp.read() == b""
    assert backend.calls == [("remove", "web")]


async def test_connect_answers_200_empty_and_passes_the_endpoint(
    client: TestClient, backend: FakeNetworks
) -> None:
    endpoint = {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.210.0.9"}}
    resp = await client.post(
        "/v1.47/networks/web/connect", json={"Container": "c1", "EndpointConfig": endpoint}
    )
    assert resp.status == 200 and await resp.read() == b""
    await client.post("/networks/web/connect", json={"Container": "c1", "EndpointConfig": None})
    await client.post("/networks/web/connect", json={"container": "c2", "endpointconfig": {}, "Other": 1})
    await client.post("/networks/web/connect", data=b"")
    assert backend.calls == [
        ("connect", "web", "c1", endpoint),
        ("connect", "web", "c1", None),
        ("connect", "web", "c2", {}),  # Go matches field names case-insensitively
        ("connect", "web", "", None),
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"Container": 7}, "cannot unmarshal number into Go struct field "
         "ConnectOptions.Container of type string"),
        ({"Container": "c1", "EndpointConfig": "x"}, "cannot unmarshal string into Go struct field "
         "ConnectOptions.EndpointConfig of type network.EndpointSettings"),
        ({"Container": "c1", "EndpointConfig": []}, "cannot unmarshal array into Go struct field "
         "ConnectOptions.EndpointConfig of type network.EndpointSettings"),
    ],
)  # fmt: skip
async def test_connect_fields_of_the_wrong_type_are_400(
    client: TestClient, backend: FakeNetworks, body: dict[str, Any], words: str
) -> None:
    resp = await client.post("/networks/web/connect", json=body)
    assert resp.status == 400 and await message(resp) == f"invalid JSON: json: {words}"
    assert backend.calls == []


async def test_disconnect_passes_force(client: TestClient, backend: FakeNetworks) -> None:
    resp = await client.post("/v1.47/networks/web/disconnect", json={"Container": "c1", "Force": True})
    assert resp.status == 200 and await resp.read() == b""
    await client.post("/networks/web/disconnect", json={"Container": "c1"})
    await client.post("/networks/web/disconnect", json={"CONTAINER": "c2", "force": None})
    resp = await client.post("/networks/web/disconnect", json={"Container": "c1", "Force": "yes"})
    assert resp.status == 400
    assert await message(resp) == (
        "invalid JSON: json: cannot unmarshal string into Go struct field "
        "DisconnectOptions.Force of type bool"
    )
    assert backend.calls == [
        ("disconnect", "web", "c1", True),
        ("disconnect", "web", "c1", False),
        ("disconnect", "web", "c2", False),
    ]


async def test_prune_passes_filters(client: TestClient, backend: FakeNetworks) -> None:
    resp = await client.post("/v1.47/networks/prune", params={"filters": json.dumps({"until": ["24h"]})})
    assert resp.status == 200 and await resp.json() == {"NetworksDeleted": ["web"]}
    await client.post("/networks/prune")
    assert backend.calls == [("prune", {"until": ["24h"]}), ("prune", {})]


async def test_methods_a_network_path_lacks_answer_405(client: TestClient) -> None:
    resp = await client.put("/networks/web")
    assert resp.status == 405 and resp.headers["Allow"] == "DELETE, GET"
    resp = await client.get("/networks/web/connect")  # moby too: GET /networks/{id:.+} takes it
    assert resp.status == 200


async def test_docker_sdk_round_trip(client: TestClient, backend: FakeNetworks) -> None:
    """docker-py's own requests and its parsing of our answers, end to end over TCP on loopback."""
    sdk = docker.DockerClient(base_url=f"tcp://127.0.0.1:{client.server.port}", version="1.47")
    try:
        net = await asyncio.to_thread(sdk.networks.create, "web", driver="bridge", labels={"a": "b"})
        assert net.id == NET_ID and net.name == "web"
        await asyncio.to_thread(net.connect, "c1", aliases=["db"], ipv4_address="10.210.0.9")
        await asyncio.to_thread(net.disconnect, "c1", force=True)
        assert [n.id for n in await asyncio.to_thread(sdk.networks.list, names=["web"])] == [NET_ID]
        assert await asyncio.to_thread(sdk.networks.prune) == {"NetworksDeleted": ["web"]}
        await asyncio.to_thread(net.remove)
        backend.fail = NotFound("network nope not found")
        with pytest.raises(docker.errors.NotFound, match="network nope not found"):
            await asyncio.to_thread(sdk.networks.get, "nope")
    finally:
        sdk.close()
    create, inspect, connect, disconnect, listed, prune, remove, missing = backend.calls
    assert create[0] == "create" and create[1]["Name"] == "web" and create[1]["Driver"] == "bridge"
    assert create[1]["Labels"] == {"a": "b"}
    assert inspect == ("inspect", NET_ID, False, "")
    assert connect[:3] == ("connect", NET_ID, "c1")
    assert connect[3]["Aliases"] == ["db"] and connect[3]["IPAMConfig"] == {"IPv4Address": "10.210.0.9"}
    assert disconnect == ("disconnect", NET_ID, "c1", True)
    assert listed == ("list", {"name": ["web"]})
    assert prune == ("prune", {})
    assert remove == ("remove", NET_ID)
    assert missing == ("inspect", "nope", False, "")
