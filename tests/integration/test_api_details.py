"""Smaller API behaviours clients rely on: wait errors, filter checks, time arguments, measured info."""

import glob
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningDaemon, docker_cli, unix_request

pytestmark = [pytest.mark.root, pytest.mark.integration]


def _create(daemon: RunningDaemon, cmd: list[str]) -> str:
    status, body = daemon.api(
        "POST", f"/containers/create?name=d-{uuid.uuid4().hex[:8]}", {"Image": "busybox", "Cmd": cmd}
    )
    assert status == 201, body
    assert isinstance(body, dict)
    return str(body["Id"])


def test_wait_reports_the_start_error(daemon: RunningDaemon) -> None:
    cid = _create(daemon, ["/no/such/binary"])
    try:
        status, _ = daemon.api("POST", f"/containers/{cid}/start")
        assert status == 400
        status, _h, raw = unix_request(daemon.sock, "POST", f"/v1.47/containers/{cid}/wait")
        body = json.loads(raw)
        assert status == 200 and body["StatusCode"] == 127
        assert "no such file or directory" in body["Error"]["Message"]
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_wait_of_a_clean_exit_has_no_error(daemon: RunningDaemon) -> None:
    cid = _create(daemon, ["sh", "-c", "exit 2"])
    try:
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        status, _h, raw = unix_request(daemon.sock, "POST", f"/v1.47/containers/{cid}/wait")
        assert status == 200 and json.loads(raw) == {"StatusCode": 2, "Error": None}
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_bad_filters_and_times_are_400_or_404(daemon: RunningDaemon) -> None:
    cid = _create(daemon, ["true"])
    try:
        status, body = daemon.api("POST", '/containers/prune?filters={"bogus":["x"]}')
        assert status == 400 and "invalid filter 'bogus'" in str(body)
        status, body = daemon.api("GET", '/containers/json?filters={"before":["nosuch-ctr"]}')
        assert status == 404 and body == {"message": "No such container: nosuch-ctr"}
        status, body = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&since=yesterday")
        assert status == 400, body
        # the container we made is still there: a refused prune removed nothing
        assert daemon.api("GET", f"/containers/{cid}/json")[0] == 200
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def _info(d: RunningDaemon) -> dict[str, Any]:
    out = d.docker("info", "--format", "{{json .}}")
    assert out.returncode == 0, out.stderr.decode()
    return dict(json.loads(out.stdout))


def _host_swap_accounting() -> bool:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return bool(glob.glob("/sys/fs/cgroup/*/memory.swap.max"))
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def test_info_measures_the_host_and_counts_event_listeners(fresh_daemon: RunningDaemon) -> None:
    d = fresh_daemon
    info = _info(d)
    assert info["IPv4Forwarding"] is (Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1")
    assert info["SwapLimit"] is _host_swap_accounting()
    assert ["Supports d_type", "true"] in info["DriverStatus"]  # the temp dir's file system has it
    assert info["NEventsListener"] == 0

    env = {**os.environ, "DOCKER_HOST": d.host}
    listeners = [
        subprocess.Popen([docker_cli(), "events"], env=env, stdout=subprocess.DEVNULL) for _ in range(2)
    ]
    try:
        assert _eventually(lambda: _info(d)["NEventsListener"] == 2), _info(d)["NEventsListener"]
    finally:
        for p in listeners:
            p.kill()
            p.wait()
    assert _eventually(lambda: _info(d)["NEventsListener"] == 0), "a gone listener is still counted"


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
