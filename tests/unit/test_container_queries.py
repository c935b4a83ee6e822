"""The container service's answers to the routes, on a temp root with a fake image service (no
runtime at work: these containers are created, never started): ps with sizes, inspect's sizes, logs, wait."""

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.containers.logs import LogRequest
from daemon.containers.results import ContainerSizes, WaitResult
from daemon.containers.service import ContainerService
from daemon.containers.waiters import resolve
from daemon.errors import InvalidParameter, NotFound
from daemon.events.bus import EventBus
from daemon.images.service import ImageRecord
from tests.fakes.networking import FakeNetworking
from tests.fakes.runtime import FakeRuntime

IMAGE_ID = "sha256:" + "a" * 64
IMAGE_BYTES = 5_000


class FakeImages:
    def __init__(self, lower: Path) -> None:
        self.lower = lower
        self.sizes = {IMAGE_ID: IMAGE_BYTES}

    async def resolve(self, ref: str) -> ImageRecord:
        if ref not in ("busybox", "busybox:latest", IMAGE_ID):
            raise NotFound(f"No such image: {ref}")
        return ImageRecord(IMAGE_ID, {"config": {"Cmd": ["sh"]}}, ["busybox:latest"])

    def layer_dirs(self, image_id: str) -> list[str]:
        return [str(self.lower)]

    def size(self, image_id: str) -> int:
        if image_id not in self.sizes:
            raise NotFound(f"No such image: {image_id}")
        return self.sizes[image_id]

    def collect_garbage(self) -> None:
        pass


@pytest.fixture
def images(tmp_path: Path) -> FakeImages:
    (tmp_path / "lower").mkdir()
    return FakeImages(tmp_path / "lower")


@pytest.fixture
def service(tmp_path: Path, images: FakeImages) -> ContainerService:
    return ContainerService(tmp_path / "data", FakeRuntime(), images, EventBus(), FakeNetworking())


async def create(service: ContainerService, image: str = "busybox", **body: Any) -> str:
    answer = await service.create(None, {"Image": image, **body})
    return str(answer["Id"])


async def test_sizes_count_the_image_layers_and_the_writable_layer(
    service: ContainerService, images: FakeImages
) -> None:
    cid = await create(service)
    upper = service.get(cid).dir / "rw" / "upper"
    (upper / "written").write_bytes(b"x" * 1234)
    rw = (await service.sizes(service.get(cid))).rw
    assert rw >= 1234
    assert await service.sizes(service.get(cid)) == ContainerSizes(rw, IMAGE_BYTES + rw)
    info = await service.inspect(cid, size=True)
    assert (info["SizeRw"], info["SizeRootFs"]) == (rw, IMAGE_BYTES + rw)
    assert "SizeRootFs" not in await service.inspect(cid)
    [summary] = await service.list_summaries(True, None, {}, size=True)
    assert (summary["SizeRw"], summary["SizeRootFs"]) == (rw, IMAGE_BYTES + rw)
    [summary] = await service.list_summaries(True, None, {}, size=False)
    assert "SizeRw" not in summary and "SizeRootFs" not in summary
    images.sizes.clear()  # an image whose files are gone: only the writable layer is left
    assert await service.sizes(service.get(cid)) == ContainerSizes(rw, rw)


async def test_list_resolves_ancestors_filters_and_limits(service: ContainerService) -> None:
    first = await create(service, "busybox:latest")
    second = await create(service, IMAGE_ID)
    ids = [c["Id"] for c in await service.list_summaries(True, None, {}, size=False)]
    assert sorted(ids) == sorted([first, second])
    # the ancestor filter matches by the image a reference names, not only by the name used at create
    found = await service.list_summaries(True, None, {"ancestor": ["busybox"]}, size=False)
    assert sorted(c["Id"] for c in found) == sorted([first, second])
    assert await service.list_summaries(True, None, {"ancestor": ["nosuch"]}, size=False) == []
    assert len(await service.list_summaries(True, 1, {}, size=False)) == 1
    assert await service.list_summaries(False, None, {}, size=False) == []  # none runs
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        await service.list_summaries(True, None, {"colour": ["red"]}, size=False)


async def test_logs_read_the_containers_log_with_its_tty(service: ContainerService) -> None:
    cid = await create(service, Tty=True)
    lines = [{"log": "one\n", "stream": "stdout", "time": "2024-01-01T00:00:00Z"}]
    lines.append({"log": "two\n", "stream": "stderr", "time": "2024-01-01T00:00:01Z"})
    Path(service.get(cid).data["LogPath"]).write_text("".join(json.dumps(x) + "\n" for x in lines))
    stream = service.logs(cid, LogRequest(stdout=True, stderr=True, tail="1"))
    assert stream.tty is True
    assert [e.data async for e in stream.entries] == [b"two\n"]
    stream = service.logs(cid[:12], LogRequest(stdout=True, stderr=False, follow=True))
    assert [e.data async for e in stream.entries] == [b"one\n"]  # not running: following ends
    with pytest.raises(InvalidParameter, match=r"^Bad parameters: you must choose at least one stream$"):
        service.logs(cid, LogRequest(stdout=False, stderr=False))
    with pytest.raises(InvalidParameter, match="invalid value for tail"):
        service.logs(cid, LogRequest(stdout=True, stderr=True, tail="last"))
    with pytest.raises(NotFound, match=r"^No such container: nope$"):
        service.logs("nope", LogRequest(stdout=False, stderr=False))  # the container is looked up first


async def test_wait_reports_the_exit_code_and_the_error(service: ContainerService) -> None:
    cid = await create(service)
    c = service.get(cid)
    c.state.start_failed(127, "exec: no such file")
    assert await service.wait(cid, "not-running") == WaitResult(127, "exec: no such file")
    removed = service.wait(cid, "removed")
    resolve(c.removed_waiters, 3, "unable to remove filesystem: busy")
    assert await removed == WaitResult(3, "unable to remove filesystem: busy")
    with pytest.raises(InvalidParameter, match="invalid condition"):
        service.wait(cid, "soon")
