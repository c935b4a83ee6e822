"""Image routes over HTTP against a real ImageService in tmp_path (only the image routes are mounted)."""

import asyncio
import hashlib
import io
import json
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from daemon.api import images
from daemon.api.app import error_middleware
from daemon.events.bus import EventBus
from daemon.images.service import ImageService

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ROOTFS = tar_of({"bin/sh": b"#!", "etc/hostname": b"box\n"})


def save_archive(tags: list[str]) -> tuple[bytes, str]:
    """A classic `docker save` tarball of a one-layer image; returns it and the image ID."""
    diff_id = "sha256:" + hashlib.sha256(ROOTFS).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": tags, "Layers": ["l1/layer.tar"]}]
    archive = tar_of(
        {f"{config_hex}.json": config, "l1/layer.tar": ROOTFS, "manifest.json": json.dumps(manifest).encode()}
    )
    return archive, "sha256:" + config_hex


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path, EventBus())


@pytest.fixture
async def client(aiohttp_client: ClientFactory, service: ImageService) -> TestClient:
    app = web.Application(middlewares=[error_middleware])
    images.register(app, service)
    return await aiohttp_client(app)


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


async def import_rootfs(client: TestClient, query: str) -> str:
    resp = await client.post(f"/v1.47/images/create?fromSrc=-&{query}", data=ROOTFS)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    [message] = lines(await resp.read())
    return str(message["status"])


async def test_import_inspect_tag_list_delete(client: TestClient) -> None:
    image_id = await import_rootfs(
        client, "repo=127.0.0.1:5055/smoke/built&tag=1&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3D1"
    )
    assert image_id.startswith("sha256:") and len(image_id) == 71

    resp = await client.get("/v1.47/images/127.0.0.1:5055/smoke/built:1/json")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    info = await resp.json()
    assert info["Id"] == image_id and info["Config"]["Cmd"] == ["sh"] and info["Config"]["Env"] == ["A=1"]
    assert info["RepoTags"] == ["127.0.0.1:5055/smoke/built:1"]
    assert "VirtualSize" not in info

    resp = await client.post("/images/127.0.0.1:5055/smoke/built:1/tag?repo=busybox&tag=latest")
    assert resp.status == 201
    listing = await (await client.get("/images/json")).json()
    assert [i["RepoTags"] for i in listing] == [["127.0.0.1:5055/smoke/built:1", "busybox:latest"]]

    resp = await client.delete("/v1.47/images/127.0.0.1:5055/smoke/built:1")
    assert resp.status == 200
    assert await resp.json() == [{"Untagged": "127.0.0.1:5055/smoke/built:1"}]
    resp = await client.delete(f"/images/{image_id}?force=1")
    assert await resp.json() == [
        {"Untagged": "busybox:latest"},
        {"Deleted": image_id},
        {"Deleted": "sha256:" + hashlib.sha256(ROOTFS).hexdigest()},
    ]
    assert await (await client.get("/images/json")).json() == []


async def test_errors_are_docker_json(client: TestClient, service: ImageService) -> None:
    resp = await client.get("/v1.47/images/nope/json")
    assert resp.status == 404 and resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"message": "No such image: nope:latest"}
    resp = await client.post("/v1.47/images/create?fromImage=docker.io/library/busybox&tag=latest")
    assert resp.status == 501
    assert await resp.json() == {"message": "pulling images from a registry is not implemented yet"}
    resp = await client.post("/images/create?fromSrc=http://example.com/rootfs.tar")
    assert resp.status == 501
    resp = await client.post("/images/create?fromSrc=-&changes=RUN%20make", data=ROOTFS)
    assert resp.status == 400 and (await resp.json())["message"] == "run is not a valid change command"
    resp = await client.post("/images/create?fromSrc=-", data=b"not a tar" * 100)
    assert resp.status == 400 and (await resp.json())["message"] == "archive/tar: invalid tar header"

    image_id = await import_rootfs(client, "repo=busybox")
    service.set_usage_checker(lambda i: [("f" * 64, True)] if i == image_id else [])
    resp = await client.delete("/images/busybox?force=1")
    assert resp.status == 200  # the tag goes; the image stays for its running container
    resp = await client.delete(f"/images/{image_id[7:]}")
    assert resp.status == 409
    assert (await resp.json())["message"] == (
        f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - "
        "image is being used by running container ffffffffffff"
    )
    resp = await client.post(f"/images/{image_id}/tag?repo=Bad")
    assert resp.status == 400


async def test_load_streams_docker_messages(client: TestClient) -> None:
    archive, image_id = save_archive(["busybox:latest"])
    resp = await client.post(
        "/v1.47/images/load?quiet=1", data=archive, headers={"Content-Type": "application/x-tar"}
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert lines(await resp.read()) == [{"stream": "Loaded image: busybox:latest\n"}]
    assert (await (await client.get("/images/busybox/json")).json())["Id"] == image_id

    resp = await client.post("/images/load", data=b"rubbish" * 200)
    assert resp.status == 200  # like Docker: the failure is reported inside the stream
    [error] = lines(await resp.read())
    assert error["error"] == "archive/tar: invalid tar header"  # Docker's words for it
    assert error["errorDetail"]["message"] == error["error"]


async def test_old_api_versions_get_none_placeholders(client: TestClient) -> None:
    archive, image_id = save_archive([])
    await client.post("/images/load", data=archive)
    [old] = await (await client.get("/v1.41/images/json")).json()
    assert old["RepoTags"] == ["<none>:<none>"] and old["RepoDigests"] == ["<none>@<none>"]
    assert old["VirtualSize"] == old["Size"]
    [new] = await (await client.get("/v1.47/images/json")).json()
    assert new["RepoTags"] == [] and new["RepoDigests"] == [] and "VirtualSize" not in new
    filtered = await (
        await client.get("/images/json", params={"filters": json.dumps({"dangling": ["true"]})})
    ).json()
    assert [i["Id"] for i in filtered] == [image_id]
    resp = await client.get("/images/json", params={"filters": json.dumps({"colour": ["red"]})})
    assert resp.status == 400 and (await resp.json())["message"] == "invalid filter 'colour'"


async def test_docker_sdk_round_trip(client: TestClient) -> None:
    """The docker SDK parses load streams object by object only when they are chunked."""
    sdk = docker.DockerClient(base_url=f"tcp://127.0.0.1:{client.server.port}", version="1.47")
    archive, image_id = save_archive(["127.0.0.1:5055/smoke/built:1"])
    try:
        [loaded] = await asyncio.to_thread(sdk.images.load, archive)
        assert loaded.id == image_id and loaded.tags == ["127.0.0.1:5055/smoke/built:1"]
        assert await asyncio.to_thread(loaded.tag, "busybox", "2")
        tags = [img.tags for img in await asyncio.to_thread(sdk.images.list)]
        assert tags == [["127.0.0.1:5055/smoke/built:1", "busybox:2"]]
        await asyncio.to_thread(sdk.images.remove, "busybox:2")
        assert (await asyncio.to_thread(sdk.images.get, image_id[7:19])).tags == [
            "127.0.0.1:5055/smoke/built:1"
        ]
        with pytest.raises(docker.errors.ImageNotFound, match="No such image: busybox:2"):
            await asyncio.to_thread(sdk.images.get, "busybox:2")
    finally:
        sdk.close()
