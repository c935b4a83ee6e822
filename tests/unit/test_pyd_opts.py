"""Option values parsed the docker CLI way: references, env, volumes, ports, restart policies."""

from __future__ import annotations

import os

import pytest

from client.pyd import opts
from client.pyd.http import encode_query, error_message, parse_host


@pytest.mark.parametrize(
    ("ref", "parts", "familiar", "pull"),
    [
        ("busybox", ("busybox", "", ""), "busybox:latest", ("docker.io/library/busybox", "latest")),
        ("busybox:1.36", ("busybox", "1.36", ""), "busybox:1.36", ("docker.io/library/busybox", "1.36")),
        ("me/app", ("me/app", "", ""), "me/app:latest", ("docker.io/me/app", "latest")),
        ("localhost:5000/x", ("localhost:5000/x", "", ""), "localhost:5000/x:latest",
         ("localhost:5000/x", "latest")),
        ("docker.io/library/alpine:3", ("docker.io/library/alpine", "3", ""), "alpine:3",
         ("docker.io/library/alpine", "3")),
        ("a@sha256:ff", ("a", "", "sha256:ff"), "a@sha256:ff", ("docker.io/library/a", "sha256:ff")),
    ],
)  # fmt: skip
def test_references(ref: str, parts: tuple[str, str, str], familiar: str, pull: tuple[str, str]) -> None:
    assert opts.split_reference(ref) == parts
    assert opts.familiar_reference(ref) == familiar
    assert opts.pull_query(ref) == {"fromImage": pull[0], "tag": pull[1]}


def test_env_takes_unset_values_from_our_environment() -> None:
    environ = {"HOME": "/root"}
    assert opts.parse_env(["A=1", "B=", "HOME", "MISSING"], environ) == ["A=1", "B=", "HOME=/root"]
    with pytest.raises(ValueError):
        opts.parse_env(["=x"], environ)


def test_volumes() -> None:
    binds, volumes = opts.parse_volumes(["/data", "vol:/x:ro", "/host:/ctr", "./rel:/r"])
    assert volumes == {"/data": {}}
    assert binds == ["vol:/x:ro", "/host:/ctr", f"{os.path.abspath('./rel')}:/r"]
    with pytest.raises(ValueError, match="too many colons"):
        opts.parse_volumes(["a:b:c:d"])


def test_ports() -> None:
    exposed, bindings = opts.parse_ports(["8080:80", "127.0.0.1::53/udp", "9000-9001:9000-9001", "443"])
    assert exposed == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}, "443/tcp": {}}
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "9000/tcp": [{"HostIp": "", "HostPort": "9000"}],
        "9001/tcp": [{"HostIp": "", "HostPort": "9001"}],
        "443/tcp": [{"HostIp": "", "HostPort": ""}],
    }
    with pytest.raises(ValueError):
        opts.parse_ports(["http"])


def test_restart_and_capabilities() -> None:
    assert opts.parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert opts.parse_restart("no") == {"Name": "no", "MaximumRetryCount": 0}
    with pytest.raises(ValueError):
        opts.parse_restart("sometimes")
    assert opts.normalize_capability("net_admin") == "CAP_NET_ADMIN"
    assert opts.normalize_capability("CAP_SYS_ADMIN") == "CAP_SYS_ADMIN"
    assert opts.normalize_capability("all") == "ALL"


def test_http_helpers() -> None:
    assert parse_host("unix:///var/run/x.sock") == ("unix", "/var/run/x.sock")
    assert parse_host("tcp://127.0.0.1:2375") == ("tcp", ("127.0.0.1", 2375))
    with pytest.raises(ValueError):
        parse_host("ssh://host")
    assert encode_query({"a": True, "b": False, "c": None, "d": 3, "e": ["x", "y"]}) == "a=1&d=3&e=x&e=y"
    assert error_message(404, b'{"message":"No such container: x"}') == "No such container: x"
    assert error_message(500, b"plain failure\n") == "plain failure"
