"""The docker Python SDK (7.1) against a real pydockerd."""

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from daemon import __version__
from daemon.system import API_VERSION, MIN_API_VERSION  # the constants the daemon reports
from tests.conftest import RunningDaemon

pytestmark = [pytest.mark.root, pytest.mark.integration]


@pytest.fixture
def client(daemon: RunningDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, version="auto", timeout=60)
    yield c
    c.close()


@pytest.fixture
def made(client: docker.DockerClient) -> Iterator[list[Container]]:
    """Containers the test creates; force-removed afterwards."""
    created: list[Container] = []
    yield created
    for c in created:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)


def uniq() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


def start(
    client: docker.DockerClient, made: list[Container], cmd: str | list[str] = "sleep 300", **kw: object
) -> Container:
    c = client.containers.run("busybox", cmd, detach=True, name=kw.pop("name", uniq()), **kw)
    made.append(c)
    return c


def test_run_returns_output(client: docker.DockerClient) -> None:
    name = uniq()
    assert client.containers.run("busybox", "echo hi", remove=True, name=name) == b"hi\n"
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_run_nonzero_exit_raises_container_error(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.ContainerError) as info:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"], remove=True)
    assert info.value.exit_status == 3
    assert b"oops" in info.value.stderr


def test_detached_logs_exec_wait_remove(client: docker.DockerClient, made: list[Container]) -> None:
    c = start(client, made, ["sh", "-c", "echo started; exec sleep 300"])
    c.reload()
    assert c.status == "running"
    assert c.attrs["State"]["Pid"] > 0
    deadline = time.time() + 5
    while c.logs() != b"started\n" and time.time() < deadline:
        time.sleep(0.05)
    assert c.logs() == b"started\n"

    res = c.exec_run("sh -c 'echo $X'", environment={"X": "y"})
    assert (res.exit_code, res.output) == (0, b"y\n")
    res = c.exec_run(["sh", "-c", "exit 6"])
    assert res.exit_code == 6
    res = c.exec_run("/no/such/binary")
    assert res.exit_code == 127
    res = c.exec_run("id -u", user="65534", workdir="/tmp")
    assert (res.exit_code, res.output) == (0, b"65534\n")

    c.kill()
    assert c.wait(timeout=20)["StatusCode"] == 137
    c.reload()
    assert c.status == "exited"
    c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_wait_exit_code(client: docker.DockerClient, made: list[Container]) -> None:
    c = start(client, made, ["sh", "-c", "sleep 0.3; exit 9"])
    assert c.wait(timeout=20)["StatusCode"] == 9


def test_list_with_filters(client: docker.DockerClient, made: list[Container]) -> None:
    tag = uuid.uuid4().hex[:8]
    running = start(client, made, labels={"sdk.tag": tag})
    exited = start(client, made, "true", labels={"sdk.tag": tag})
    exited.wait(timeout=20)

    def ids(**filters: object) -> set[str]:
        return {
            c.id for c in client.containers.list(all=True, filters={"label": f"sdk.tag={tag}", **filters})
        }

    assert ids() == {running.id, exited.id}
    assert ids(status="exited") == {exited.id}
    assert ids(status="running") == {running.id}
    assert ids(name=running.name) == {running.id}
    assert {c.id for c in client.containers.list(filters={"label": f"sdk.tag={tag}"})} == {running.id}


def test_images_list_and_get(client: docker.DockerClient) -> None:
    images = client.images.list()
    bb = [i for i in images if "busybox:latest" in i.tags]
    assert len(bb) == 1
    assert bb[0].id.startswith("sha256:") and len(bb[0].id) == 71
    assert client.images.get("busybox").id == bb[0].id


def test_version_and_info(client: docker.DockerClient, made: list[Container]) -> None:
    v = client.version()
    assert (v["Version"], v["ApiVersion"], v["MinAPIVersion"]) == (__version__, API_VERSION, MIN_API_VERSION)
    assert client.api.api_version == API_VERSION  # what "auto" negotiated
    before = client.info()
    c = start(client, made)
    after = client.info()
    assert after["Containers"] == before["Containers"] + 1
    assert after["ContainersRunning"] == before["ContainersRunning"] + 1
    assert after["Containers"] == len(client.containers.list(all=True))
    c.remove(force=True)
    assert client.info()["Containers"] == before["Containers"]


def test_attach_socket(client: docker.DockerClient, made: list[Container]) -> None:
    c = client.containers.create(
        "busybox", ["sh", "-c", "read line; echo got:$line"], stdin_open=True, name=uniq()
    )
    made.append(c)
    sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw: socket.socket = sock._sock
    raw.settimeout(10)
    c.start()
    raw.sendall(b"hello\n")
    data = b""
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
        if b"got:hello\n" in data:
            break
    raw.close()
    # no TTY: one stdout frame [1,0,0,0,size] then the payload
    assert data[:8] == bytes([1, 0, 0, 0]) + len(b"got:hello\n").to_bytes(4, "big")
    assert data[8:] == b"got:hello\n"
    assert c.wait(timeout=20)["StatusCode"] == 0


def test_error_classes(client: docker.DockerClient, made: list[Container]) -> None:
    with pytest.raises(docker.errors.NotFound) as nf:
        client.containers.get(uniq())
    assert nf.value.status_code == 404
    assert "No such container" in str(nf.value.explanation)
    with pytest.raises(docker.errors.ImageNotFound) as inf:
        client.containers.create("no-such-image-" + uuid.uuid4().hex[:8] + ":v1", "true")
    assert inf.value.status_code == 404
    c = start(client, made)
    with pytest.raises(docker.errors.APIError) as conflict:
        client.containers.create("busybox", "true", name=c.name)
    assert conflict.value.status_code == 409
    assert "already in use" in str(conflict.value.explanation)


def test_run_missing_image_tries_a_pull_that_says_it_is_not_implemented(client: docker.DockerClient) -> None:
    # run() creates, gets 404 "No such image", then pulls. Pulling comes in a later issue: until then the
    # pull answers 501 with a clear message (offline Docker answers 500 here), and nothing is left behind.
    name = "no-such-image-" + uuid.uuid4().hex[:8]
    before = {c.id for c in client.containers.list(all=True)}
    with pytest.raises(docker.errors.APIError) as err:
        client.containers.run(name + ":v1", "true", remove=True)
    assert err.value.status_code == 501
    assert "pulling images from a registry is not implemented" in str(err.value)
    assert {c.id for c in client.containers.list(all=True)} == before


def test_output_ready_before_the_head_is_read_reaches_a_buffered_client(
    daemon: RunningDaemon, client: docker.DockerClient, made: list[Container]
) -> None:
    """docker-py reads the 101's head through a buffered reader, then the raw socket: whatever arrives
    with the head is lost to it. An exec's output is often ready before the client reads the head (a
    loaded machine, a slow client); exec_run then returned b"" with exit code 0. This client reads as
    docker-py does, but late, so that everything the daemon sends at once is there before the head."""
    import http.client
    import json

    c = start(client, made)
    exec_id = client.api.exec_create(c.id, ["echo", "ready before the head"])["Id"]
    body = json.dumps({"Detach": False, "Tty": False}).encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(daemon.sock)
        s.sendall(
            f"POST /v1.47/exec/{exec_id}/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
            f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.5)  # the exec has run and printed by now
        head = http.client.HTTPResponse(s)  # reads through s.makefile("rb"), like docker-py
        head.begin()
        assert head.status == 101
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    assert raw[8:] == b"ready before the head\n", raw
    assert raw[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x16"
