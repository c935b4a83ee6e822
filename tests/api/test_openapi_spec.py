"""api-spec/openapi.yaml describes exactly the routes the daemon serves, and is a sound OpenAPI 3 document."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from openapi_spec_validator import validate as validate_spec

from daemon.api.app import Services, build_app

SPEC_PATH = Path(__file__).resolve().parents[2] / "api-spec" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"
# the route modules register every path twice: bare and under "/v{api_version:[0-9]+\.[0-9]+}"
VERSION_PREFIX = "/v{api_version}"
# "{name:.+}" -> "{name}" (our route regexes contain no braces of their own)
_ROUTE_PARAM = re.compile(r"\{(\w+)(?::[^{}]*)?\}")
_TEMPLATE_PARAM = re.compile(r"\{(\w+)\}")

Route = tuple[str, str]  # (METHOD, path)


def normalize(path: str) -> str:
    return _ROUTE_PARAM.sub(r"{\1}", path)


def make_app() -> web.Application:
    # the route modules only look their services up per request, so None stands in for each
    return build_app(
        Services(system=None, containers=None, images=None, execs=None, events=None, networks=None)
    )


def router_routes(app: web.Application) -> dict[Route, str]:
    """Every (METHOD, normalized path) the router serves -> its handler's name."""
    out: dict[Route, str] = {}
    resources: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        raw = info.get("path") or info.get("formatter") or ""
        resources.setdefault(raw, {}).setdefault(route.method, route.handler)
    for raw, by_method in resources.items():
        for method, handler in by_method.items():
            # add_get(allow_head=True) adds a HEAD route with the GET handler: not one we declared
            if method == "HEAD" and by_method.get("GET") is handler:
                continue
            out[(method, normalize(raw))] = handler.__name__
    return out


def split_versioned(routes: dict[Route, str]) -> tuple[dict[Route, str], dict[Route, str]]:
    bare = {r: h for r, h in routes.items() if not r[1].startswith(VERSION_PREFIX + "/")}
    versioned = {
        (m, p.removeprefix(VERSION_PREFIX)): h
        for (m, p), h in routes.items() if p.startswith(VERSION_PREFIX + "/")
    }  # fmt: skip
    return bare, versioned


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC_PATH.open() as f:
        loaded = yaml.safe_load(f)
    assert isinstance(loaded, dict), "openapi.yaml is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def served() -> dict[Route, str]:
    bare, _ = split_versioned(router_routes(make_app()))
    return bare


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(METHOD, path, operation, path item) for every operation in the spec."""
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method], item


def resolve(spec: dict[str, Any], obj: Any) -> Any:
    """Follow local $refs ("#/components/...") until a plain object."""
    seen: set[str] = set()
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), f"only local $refs are used: {ref}"
        assert ref not in seen, f"$ref cycle at {ref}"
        seen.add(ref)
        target: Any = spec
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, f"unresolvable $ref {ref}"
            target = target[part]
        obj = target
    return obj


def all_refs(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from all_refs(value)


def test_normalize_strips_route_regexes() -> None:
    assert (
        normalize(r"/v{api_version:[0-9]+\.[0-9]+}/images/{name:.+}/json")
        == "/v{api_version}/images/{name}/json"
    )
    assert normalize("/containers/{id}/start") == "/containers/{id}/start"


def test_spec_is_openapi_3(spec: dict[str, Any]) -> None:
    assert str(spec.get("openapi", "")).startswith("3."), spec.get("openapi")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert "/v" in spec["info"]["description"], "info.description must say paths are also served under /vX.YZ"
    server_urls = [s["url"] for s in spec.get("servers", [])]
    assert any(u.startswith("/v{") for u in server_urls), server_urls
    assert spec["paths"], "no paths"
    for path in spec["paths"]:
        assert path.startswith("/") and not path.startswith("/v1."), f"paths are bare: {path}"


def test_every_bare_route_is_also_served_under_the_version_prefix() -> None:
    bare, versioned = split_versioned(router_routes(make_app()))
    assert bare, "the router serves no routes at all"
    missing_versioned = sorted(set(bare) - set(versioned))
    missing_bare = sorted(set(versioned) - set(bare))
    assert not missing_versioned, f"served bare but not under {VERSION_PREFIX}: {missing_versioned}"
    assert not missing_bare, f"served under {VERSION_PREFIX} but not bare: {missing_bare}"
    differing = sorted(r for r in bare if bare[r] != versioned[r])
    assert not differing, f"bare and versioned routes with different handlers: {differing}"


def test_spec_paths_equal_served_routes(spec: dict[str, Any], served: dict[Route, str]) -> None:
    documented = {(method, path) for method, path, _op, _item in operations(spec)}
    not_documented = sorted(set(served) - documented)
    not_served = sorted(documented - set(served))
    assert not not_documented and not not_served, (
        f"served but missing from api-spec/openapi.yaml: {not_documented}; "
        f"in api-spec/openapi.yaml but not served: {not_served}"
    )


def test_operation_ids_are_unique_and_named_after_handlers(
    spec: dict[str, Any], served: dict[Route, str]
) -> None:
    ids = [op.get("operationId") for _m, _p, op, _i in operations(spec)]
    assert all(ids), "an operation has no operationId"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate operationIds: {duplicates}"
    wrong = {
        (method, path): (op["operationId"], served[(method, path)])
        for method, path, op, _item in operations(spec)
        if (method, path) in served and op["operationId"] != served[(method, path)]
    }
    assert not wrong, f"operationId != handler name, as (operationId, handler): {wrong}"


def test_every_operation_has_a_summary_and_responses(spec: dict[str, Any]) -> None:
    for method, path, op, _item in operations(spec):
        assert op.get("summary"), f"{method} {path}: no summary"
        assert op.get("responses"), f"{method} {path}: no responses"
        for code in op["responses"]:
            assert re.fullmatch(r"[1-5][0-9][0-9]", str(code)), f"{method} {path}: odd status {code!r}"


def test_every_operation_documents_an_error_response(spec: dict[str, Any]) -> None:
    for method, path, op, _item in operations(spec):
        errors = {}
        for code, response in op["responses"].items():
            if int(code) < 400:
                continue
            content = resolve(spec, response).get("content", {})
            errors[code] = content.get("application/json", {}).get("schema", {}).get("$ref")
        assert errors, f"{method} {path}: no 4xx/5xx response"
        wrong = {code: ref for code, ref in errors.items() if ref != ERROR_SCHEMA_REF}
        assert not wrong, f"{method} {path}: error responses not application/json ErrorResponse: {wrong}"


def test_path_parameters_match_the_templates(spec: dict[str, Any]) -> None:
    for method, path, op, item in operations(spec):
        params = [resolve(spec, p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
        declared = {p["name"] for p in params if p["in"] == "path"}
        in_template = set(_TEMPLATE_PARAM.findall(path))
        assert declared == in_template, (
            f"{method} {path}: template has {sorted(in_template)}, declared {sorted(declared)}"
        )
        for p in params:
            assert "schema" in p and "type" in p["schema"], (
                f"{method} {path}: parameter {p['name']} has no type"
            )
            if p["in"] == "path":
                assert p.get("required") is True, f"{method} {path}: path parameter {p['name']} not required"


def test_hijacked_endpoints_document_101_with_stream_types(spec: dict[str, Any]) -> None:
    for path in ("/containers/{id}/attach", "/exec/{id}/start"):
        upgraded = spec["paths"][path]["post"]["responses"]["101"]
        assert set(upgraded["content"]) == {
            "application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream",
        }, path  # fmt: skip


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    for ref in set(all_refs(spec)):
        resolve(spec, {"$ref": ref})


def test_spec_validates_with_openapi_spec_validator(spec: dict[str, Any]) -> None:
    validate_spec(spec)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/path"),
        ("GET", "/v1.47/no/such/path"),
    ],
)
async def test_unknown_path_answers_page_not_found(aiohttp_client: Any, method: str, path: str) -> None:
    client = await aiohttp_client(make_app())
    resp = await client.request(method, path)
    assert resp.status == 404
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"message": "page not found"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/containers/json", "DELETE, GET"),  # GET /containers/json, DELETE /containers/{id}
        ("PUT", "/v1.47/_ping", "GET, HEAD"),
        ("DELETE", "/containers/abc/start", "POST"),
        ("HEAD", "/info", "GET"),
    ],
)
async def test_a_method_a_served_path_lacks_answers_405(
    aiohttp_client: Any, method: str, path: str, allowed: str
) -> None:
    client = await aiohttp_client(make_app())
    resp = await client.request(method, path)
    assert resp.status == 405
    assert resp.headers["Allow"] == allowed
    assert resp.headers["Content-Type"] == "application/json"
    if method != "HEAD":
        assert await resp.json() == {"message": f"method {method} is not allowed here; allowed: {allowed}"}


@pytest.mark.parametrize(
    ("method", "path", "feature"),
    [
        ("POST", "/v1.47/build", "building images"),
        ("GET", "/volumes", "volumes"),
        ("GET", "/v1.47/images/busybox/history", "image history"),
        ("GET", "/containers/abc/stats", "container stats"),
    ],
)
async def test_known_docker_routes_we_lack_answer_501(
    aiohttp_client: Any, method: str, path: str, feature: str
) -> None:
    client = await aiohttp_client(build_app(Services(None, None, None, None, None, None)))
    resp = await client.request(method, path)
    assert resp.status == 501
    assert resp.headers["Content-Type"] == "application/json"
    assert (await resp.json())["message"] == f"{feature} is not implemented in pydockerd yet"


async def test_lookup_of_a_kind_we_lack_finds_nothing(aiohttp_client: Any) -> None:
    # `docker inspect NAME` tries containers, images, networks, volumes...: each must say 404 to go on
    client = await aiohttp_client(build_app(Services(None, None, None, None, None, None)))
    resp = await client.get("/v1.47/plugins/web/json")
    assert resp.status == 404 and (await resp.json())["message"] == "plugin web not found"
    resp = await client.get("/volumes/data")
    assert resp.status == 404 and (await resp.json())["message"] == "get data: no such volume"


@pytest.mark.parametrize(
    ("version", "words"),
    [("1.99", "client version 1.99 is too new. Maximum supported API version is 1.47"),
     ("1.12", "client version 1.12 is too old. Minimum supported API version is 1.24"),
     ("9" * 5000 + ".1", f"client version {'9' * 5000}.1 is too new. Maximum supported API version"),
     ("1." + "9" * 5000, f"client version 1.{'9' * 5000} is too new. Maximum supported API version")],
)  # fmt: skip
async def test_api_versions_outside_the_range_are_refused(
    aiohttp_client: Any, version: str, words: str
) -> None:
    client = await aiohttp_client(build_app(Services(None, None, None, None, None, None)))
    resp = await client.get(f"/v{version}/_ping")
    assert resp.status == 400
    assert (await resp.json())["message"].startswith(words)
    assert (await client.get("/v1.24/_ping")).status == 200


@pytest.mark.parametrize("version", ["0" * 5000 + "1.47", "1.0000000000000000000000024", "1.044"])
async def test_api_versions_are_compared_as_numbers(aiohttp_client: Any, version: str) -> None:
    # as Docker's strconv.Atoi reads them: leading zeros do not make a version new or old
    client = await aiohttp_client(build_app(Services(None, None, None, None, None, None)))
    assert (await client.get(f"/v{version}/_ping")).status == 200
