"""pyd's networking: `network ...`, `port`, run/create's network flags and ps's PORTS column,
against the fake daemon of test_pyd_commands. Expected requests and output were captured from
the docker CLI 28.2.2 talking to a logging fake daemon with the same canned answers."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.pyd import ports
from client.pyd.cmd_network import go_time_string
from tests.unit.test_pyd_commands import FakeDaemon, pyd, send_empty

NET_ID = "feed" + "0" * 59 + "1"
CID = "c0ffee" + "0" * 58


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(str(tmp_path / "d.sock"))
    yield fake
    fake.stop()


def endpoint(**fields: Any) -> dict[str, Any]:
    """EndpointSettings exactly as docker serializes it: every field, zero values included."""
    base: dict[str, Any] = {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
        "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }  # fmt: skip
    return {**base, **fields}


def created_body(daemon: FakeDaemon, *argv: str) -> dict[str, Any]:
    daemon.reply("POST", "/containers/create", {"Id": CID, "Warnings": []}, 201)
    assert pyd(daemon, "create", *argv, "busybox") == 0
    body: dict[str, Any] = daemon.find("POST", "/containers/create")[-1].json()
    return body


# -- run/create ------------------------------------------------------------------------------------


def test_create_sends_every_network_flag_where_docker_does(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]
) -> None:
    body = created_body(
        daemon,
        "-p", "8080:80", "-p", "127.0.0.1::81/udp", "-p", "90", "-p", "8000-8002:100-102",
        "-p", "[::1]:7000:7000/sctp", "-P", "--expose", "5000-5001", "--expose", "6000/udp",
        "--network", "x", "--network-alias", "a1", "--network-alias", "a2", "--ip", "10.1.0.5",
        "--ip6", "fd00::5", "--mac-address", "02:42:ac:11:00:02", "--dns", "1.1.1.1",
        "--dns-search", "ex.com", "--dns-option", "ndots:2", "--add-host", "h:10.0.0.1",
        "--add-host", "gw:host-gateway", "--link", "web:w", "--domainname", "dom.ain",
    )  # fmt: skip
    hc = body["HostConfig"]
    assert body["Domainname"] == "dom.ain"
    assert body["ExposedPorts"] == {
        p: {} for p in ("80/tcp", "81/udp", "90/tcp", "100/tcp", "101/tcp", "102/tcp", "7000/sctp",
                        "5000/tcp", "5001/tcp", "6000/udp")
    }  # fmt: skip
    assert hc["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "81/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "90/tcp": [{"HostIp": "", "HostPort": ""}],
        "100/tcp": [{"HostIp": "", "HostPort": "8000"}],
        "101/tcp": [{"HostIp": "", "HostPort": "8001"}],
        "102/tcp": [{"HostIp": "", "HostPort": "8002"}],
        "7000/sctp": [{"HostIp": "::1", "HostPort": "7000"}],
    }
    assert hc["PublishAllPorts"] is True and hc["NetworkMode"] == "x"
    assert (hc["Dns"], hc["DnsSearch"], hc["DnsOptions"]) == (["1.1.1.1"], ["ex.com"], ["ndots:2"])
    assert hc["ExtraHosts"] == ["h:10.0.0.1", "gw:host-gateway"] and hc["Links"] == ["web:w"]
    # API 1.44+: the MAC address belongs to the endpoint; on a user-defined network --link is
    # also an endpoint option.
    assert body["NetworkingConfig"] == {
        "EndpointsConfig": {
            "x": endpoint(
                Aliases=["a1", "a2"],
                IPAMConfig={"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5"},
                Links=["web:w"],
                MacAddress="02:42:ac:11:00:02",
            )
        }
    }
    assert "MacAddress" not in body
    assert capfd.readouterr().err == ""


def test_create_endpoints_like_docker(daemon: FakeDaemon) -> None:
    plain = created_body(daemon)
    assert plain["NetworkingConfig"] == {"EndpointsConfig": {"default": endpoint()}}
    assert plain["HostConfig"]["NetworkMode"] == "default" and plain["HostConfig"]["PortBindings"] == {}
    assert plain["HostConfig"]["Dns"] == [] and plain["HostConfig"]["ExtraHosts"] is None
    # one network with nothing to say about its endpoint is left out
    assert created_body(daemon, "--network", "none")["NetworkingConfig"] == {"EndpointsConfig": {}}
    # on the default network --link is a legacy link only, --ip goes to the "default" endpoint
    body = created_body(daemon, "--link", "web", "--ip", "10.1.0.5")
    assert body["HostConfig"]["Links"] == ["web"]
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "default": endpoint(IPAMConfig={"IPv4Address": "10.1.0.5"})
    }
    two = created_body(daemon, "--network", "x", "--net", "y", "--network-alias", "a")
    assert two["HostConfig"]["NetworkMode"] == "x"
    assert two["NetworkingConfig"]["EndpointsConfig"] == {"x": endpoint(Aliases=["a"]), "y": endpoint()}


def test_create_canonical_dns_and_hosts(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    body = created_body(
        daemon, "--dns", "0:0::1", "--dns", "::ffff:1.2.3.4", "--dns", "127.0.0.53",
        "--dns-search", ".", "--dns-search", "a.b.", "--add-host", "h=10.0.0.2",
        "--add-host", "v6:[::1]", "--add-host", "h2:::1",
    )  # fmt: skip
    hc = body["HostConfig"]
    assert hc["Dns"] == ["::1", "1.2.3.4", "127.0.0.53"] and hc["DnsSearch"] == [".", "a.b"]
    assert hc["ExtraHosts"] == ["h:10.0.0.2", "v6:::1", "h2:::1"]
    # docker warns about the first loopback server only
    assert capfd.readouterr().err == "WARNING: Localhost DNS (::1) may fail in containers.\n"


ALIASES = "pyd: network-scoped aliases are only supported for user-defined networks"
BOTH = "pyd: conflicting options: cannot attach both user-defined and non-user-defined network-modes"


def flag(value: str, name: str, reason: str) -> str:
    return f'invalid argument "{value}" for "{name}" flag: {reason}'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--network-alias", "a"], ALIASES),
        (["--network", "bridge", "--network-alias", "a"], ALIASES),
        (["--network", "x", "--network", "host"], BOTH),
        (["--network", "x", "--network", "x"], 'pyd: network "x" is specified multiple times'),
        (["--mac-address", "zz"], "pyd: zz is not a valid mac address"),
        (["-p", "80/foo"], "pyd: invalid proto: foo"),
        (["-p", "1.2.3.4:80"], "pyd: invalid hostPort: 1.2.3.4"),
        (["--expose", "80:80"], "pyd: invalid port format for --expose: 80:80"),
        (["--dns", "nope"], flag("nope", "--dns", "IP address is not correctly formatted: nope")),
        (
            ["--dns", "010.1.1.1"],
            flag("010.1.1.1", "--dns", "IP address is not correctly formatted: 010.1.1.1"),
        ),
        (["--add-host", "nope"], flag("nope", "--add-host", 'bad format for add-host: "nope"')),
        (["--add-host", "h:bad"], flag("h:bad", "--add-host", 'invalid IP address in add-host: "bad"')),
        (["--dns-search", "1.2"], flag("1.2", "--dns-search", "1.2 is not a valid domain")),
        (["--link", "a:b:c"], flag("a:b:c", "--link", "bad format for links: a:b:c")),
    ],
)
def test_create_rejects_like_docker(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert pyd(daemon, "create", *argv, "busybox") == 125
    err = capfd.readouterr().err
    assert err.startswith(message) and "'pyd create --help'" in err
    assert daemon.requests == []


# -- -p and --expose -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "bindings"),
    [
        ("0:80", {"80/tcp": [{"HostIp": "", "HostPort": "0"}]}),
        ("8080:0", {"0/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
        (":80", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
        ("127.0.0.1::80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
        ("[::]:80:80", {"80/tcp": [{"HostIp": "::", "HostPort": "80"}]}),
        ("::1:80:80", {"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}),
        ("80:80/TCP", {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}),
        ("80/", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
        ("1.2.3.4:80:80/udp/x", {"80/udp": [{"HostIp": "1.2.3.4", "HostPort": "80"}]}),
        ("8000-8002:80", {"80/tcp": [{"HostIp": "", "HostPort": "8000-8002"}]}),
        ("80-81", {"80/tcp": [{"HostIp": "", "HostPort": ""}], "81/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ],
)
def test_publish_forms(spec: str, bindings: dict[str, Any]) -> None:
    exposed, got = ports.parse_publish([spec])
    assert got == bindings and exposed == {key: {} for key in bindings}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("70000", "invalid containerPort: 70000"),
        ("80-79", "invalid containerPort: 80-79"),
        ("80-x", "invalid containerPort: 80-x"),
        ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
        ("a:b:c:d", "invalid IP address: a:b"),
        ("1.2.3.4::", "no port specified: 1.2.3.4::<empty>"),
        ("/udp", "no port specified: /udp<empty>"),
        ("1.2.3.4:8080:80:x", "invalid IP address: 1.2.3.4:8080"),
        ("[::1:80:80", "invalid IP address [::1: address [::1:: missing ']' in address"),
    ],
)
def test_publish_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        ports.parse_publish([spec])
    assert str(info.value) == message


def test_expose_and_repeated_bindings() -> None:
    exposed, bindings = ports.parse_publish(["8080:80", "8081:80", "9090:80/udp"])
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}],
        "80/udp": [{"HostIp": "", "HostPort": "9090"}],
    }
    ports.parse_expose(["80-81", "0", "53/foo"], exposed)  # docker keeps the protocol as typed
    assert list(exposed) == ["80/tcp", "80/udp", "81/tcp", "0/tcp", "53/foo"]
    with pytest.raises(ValueError) as info:
        ports.parse_expose(["70000"], {})
    assert str(info.value) == (
        "invalid range format for --expose: 70000, error: "
        'strconv.ParseUint: parsing "70000": value out of range'
    )
    with pytest.raises(
        ValueError, match=r'^invalid range format for --expose: x, error: .*"x": invalid syntax$'
    ):
        ports.parse_expose(["x"], {})


# -- ps and port -----------------------------------------------------------------------------------


def test_ps_ports_column_as_docker_28_renders_it(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]
) -> None:
    def c(name: str, *mapped: tuple[str, int, int, str]) -> dict[str, Any]:
        return {
            "Id": name * 12, "Names": [f"/{name}"], "Image": "busybox", "Command": "sh", "Created": 1,
            "State": "running", "Status": "Up",
            "Ports": [{"IP": ip, "PrivatePort": pr, "PublicPort": pu, "Type": t} if ip else
                      {"PrivatePort": pr, "Type": t} for ip, pr, pu, t in mapped],
        }  # fmt: skip

    daemon.reply(
        "GET",
        "/containers/json",
        [
            c("a", ("0.0.0.0", 80, 32768, "tcp"), ("::", 80, 32768, "tcp")),
            c("b", ("0.0.0.0", 80, 8000, "tcp"), ("0.0.0.0", 81, 8001, "tcp"), ("0.0.0.0", 82, 8002, "tcp")),
            c("c", ("127.0.0.1", 80, 18080, "tcp"), ("", 90, 0, "tcp"), ("", 91, 0, "tcp"),
              ("::", 5000, 5000, "udp"), ("::", 5001, 5001, "udp")),
        ],
    )  # fmt: skip
    assert pyd(daemon, "ps", "--format", "{{.Names}}|{{.Ports}}") == 0
    assert capfd.readouterr().out == (
        "a|0.0.0.0:32768->80/tcp, [::]:32768->80/tcp\n"
        "b|0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp, 0.0.0.0:8002->82/tcp\n"
        "c|90-91/tcp, [::]:5000-5001->5000-5001/udp, 127.0.0.1:18080->80/tcp\n"
    )


WEB_PORTS = {
    "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
    "443/tcp": None,
    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
    "9000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9000"}],
    "8080/sctp": [{"HostIp": "", "HostPort": "1234"}],
    "10000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "10000"}],  # natural order: after 9000
}


@pytest.mark.parametrize(
    ("argv", "status", "out", "err"),
    [
        ([], 0, "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:32768\n80/tcp -> [::]:32768\n"
                "8080/sctp -> :1234\n9000/tcp -> 0.0.0.0:9000\n10000/tcp -> 0.0.0.0:10000\n", ""),
        (["80"], 0, "0.0.0.0:32768\n[::]:32768\n", ""),
        (["53/udp"], 0, "127.0.0.1:5353\n", ""),
        (["8080/sctp"], 0, ":1234\n", ""),
        (["53"], 1, "", "Error: No public port '53' published for web\n"),
        (["443"], 1, "", "Error: No public port '443' published for web\n"),
        (["abc"], 1, "", 'Error: invalid port (abc): strconv.ParseUint: parsing "abc": invalid syntax\n'),
    ],
)  # fmt: skip
def test_port(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], argv: list[str], status: int, out: str, err: str
) -> None:
    daemon.reply("GET", "/containers/web/json", {"Id": CID, "NetworkSettings": {"Ports": WEB_PORTS}})
    assert pyd(daemon, "port", "web", *argv) == status
    assert capfd.readouterr() == (out, err)


def test_port_of_a_missing_container(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("GET", "/containers/nope/json", {"message": "No such container: nope"}, 404)
    assert pyd(daemon, "port", "nope") == 1
    assert capfd.readouterr().err == "Error response from daemon: No such container: nope\n"


# -- network ---------------------------------------------------------------------------------------


def test_network_create_body(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("POST", "/networks/create", {"Id": NET_ID, "Warning": ""}, 201)
    assert pyd(daemon, "network", "create", "x") == 0
    assert capfd.readouterr().out == NET_ID + "\n"
    assert daemon.find("POST", "/networks/create")[0].json() == {
        "Name": "x", "Driver": "bridge", "Scope": "", "Internal": False, "Attachable": False,
        "Ingress": False, "ConfigOnly": False, "ConfigFrom": None, "Options": {}, "Labels": {},
        "IPAM": {"Driver": "default", "Options": {}, "Config": []},
    }  # fmt: skip

    argv = [
        "-d", "bridge", "--subnet", "10.201.0.0/16", "--subnet", "fd00:201::/64", "--gateway", "fd00:201::1",
        "--gateway", "10.201.0.1", "--ip-range", "10.201.5.0/24", "--aux-address", "a=10.201.0.2",
        "--internal", "--ipv6", "--attachable", "--label", "k=v", "--label", "k2",
        "-o", "com.docker.network.bridge.name=br9", "--ipam-opt", "o=1", "y",
    ]  # fmt: skip
    assert pyd(daemon, "network", "create", *argv) == 0
    body = daemon.find("POST", "/networks/create")[1].json()
    assert body["IPAM"] == {
        "Driver": "default",
        "Options": {"o": "1"},
        "Config": [
            {"Subnet": "10.201.0.0/16", "IPRange": "10.201.5.0/24", "Gateway": "10.201.0.1",
             "AuxiliaryAddresses": {"a": "10.201.0.2"}},
            {"Subnet": "fd00:201::/64", "Gateway": "fd00:201::1"},
        ],
    }  # fmt: skip
    assert body["EnableIPv6"] is True and body["Internal"] is True and body["Attachable"] is True
    assert body["Labels"] == {"k": "v", "k2": ""}
    assert body["Options"] == {"com.docker.network.bridge.name": "br9"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gateway", "10.201.0.1"], "every ip-range or gateway must have a corresponding subnet"),
        (["--subnet", "10.201.0.0/16", "--gateway", "10.202.0.1"], "no matching subnet for gateway"),
        (["--subnet", "10.0.0.0/8", "--subnet", "10.201.0.0/16"], "multiple overlapping subnet"),
        (["--subnet", "10.201.0.0/16", "--aux-address", "a=10.9.0.1"], "no matching subnet for aux-address"),
        (["--subnet", "10.201.0.0/16", "--subnet", "10.202.0.0/16", "--gateway", "10.201.0.1",
          "--gateway", "10.201.0.2"], "cannot configure multiple gateways (10.201.0.2, 10.201.0.1)"),
    ],
)  # fmt: skip
def test_network_create_ipam_errors(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert pyd(daemon, "network", "create", *argv, "x") == 1
    assert capfd.readouterr().err.startswith(message)
    assert daemon.requests == []


NETWORKS = [
    {"Name": "net10", "Id": "a1" * 32, "Created": "2024-01-02T03:04:05.5+02:00", "Scope": "local",
     "Driver": "bridge", "Labels": {"k": "v"}},
    {"Name": "net9", "Id": "b2" * 32, "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": "null",
     "EnableIPv4": True, "EnableIPv6": True, "Internal": True},
    {"Name": "Bridge", "Id": "c3" * 32, "Created": "2024-01-02T03:04:05.123456789Z", "Scope": "local",
     "Driver": "host"},
]  # fmt: skip


def test_network_ls(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("GET", "/networks", NETWORKS)
    assert pyd(daemon, "network", "ls") == 0
    assert capfd.readouterr().out == (  # natural order of names, as docker sorts them
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "c3c3c3c3c3c3   Bridge    host      local\n"
        "b2b2b2b2b2b2   net9      null      local\n"
        "a1a1a1a1a1a1   net10     bridge    local\n"
    )
    assert (
        pyd(daemon, "network", "list", "-q", "--no-trunc", "-f", "name=n", "--filter", "driver=bridge") == 0
    )
    assert capfd.readouterr().out == "".join(n["Id"] + "\n" for n in reversed(NETWORKS))
    assert daemon.requests[-1].arg("filters") == '{"driver":{"bridge":true},"name":{"n":true}}'
    form = "table {{.Name}}\\t{{.IPv6}}\\t{{.Labels}}\\t{{.CreatedAt}}"
    assert pyd(daemon, "network", "ls", "--format", form) == 0
    assert capfd.readouterr().out == (
        "NAME      IPV6      LABELS    CREATED AT\n"
        "Bridge    false               2024-01-02 03:04:05.123456789 +0000 UTC\n"
        "net9      true                0001-01-01 00:00:00 +0000 UTC\n"
        "net10     false     k=v       2024-01-02 03:04:05.5 +0200 +0200\n"
    )
    assert pyd(daemon, "network", "ls", "--format", "json") == 0
    assert capfd.readouterr().out.splitlines()[1] == (
        '{"CreatedAt":"0001-01-01 00:00:00 +0000 UTC","Driver":"null","ID":"b2b2b2b2b2b2","IPv4":"true",'
        '"IPv6":"true","Internal":"true","Labels":"","Name":"net9","Scope":"local"}'
    )


def test_go_time_string() -> None:
    assert go_time_string("2024-01-02T03:04:05.120000000Z") == "2024-01-02 03:04:05.12 +0000 UTC"
    assert go_time_string("2024-01-02T03:04:05-05:30") == "2024-01-02 03:04:05 -0530 -0530"


def test_network_inspect(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.reply("GET", "/networks/x", {"Name": "x", "Id": "feed", "Labels": {"a": "b"}})
    daemon.reply("GET", "/networks/nope", {"message": "network nope not found"}, 404)
    assert pyd(daemon, "network", "inspect", "x", "nope") == 1
    out, err = capfd.readouterr()
    assert json.loads(out) == [{"Name": "x", "Id": "feed", "Labels": {"a": "b"}}]
    assert err == "Error response from daemon: network nope not found\n"
    assert pyd(daemon, "network", "inspect", "nope") == 1
    assert capfd.readouterr().out == "[]\n"
    assert pyd(daemon, "network", "inspect", "-v", "-f", "{{.Name}} {{.Labels}}", "x") == 0
    assert capfd.readouterr().out == "x map[a:b]\n"
    assert daemon.requests[-1].arg("verbose") == "true"


def test_network_rm(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.on("DELETE", "/networks/x", lambda h, _r: send_empty(h))
    daemon.reply("DELETE", "/networks/nope", {"message": "network nope not found"}, 404)
    busy = "error while removing network: network busy has active endpoints"
    daemon.reply("DELETE", "/networks/busy", {"message": busy}, 403)
    assert pyd(daemon, "network", "rm", "x", "nope", "busy", "x") == 1
    assert capfd.readouterr() == (
        "x\nx\n",
        f"Error response from daemon: network nope not found\nError response from daemon: {busy}\n"
        "exit status 1\n",
    )
    assert [r.path for r in daemon.requests] == [
        "/networks/x",
        "/networks/nope",
        "/networks/busy",
        "/networks/x",
    ]
    assert pyd(daemon, "network", "remove", "-f", "nope", "x") == 0  # -f: a missing network is no error
    assert capfd.readouterr() == ("x\n", "")


def test_network_connect_and_disconnect(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    daemon.on("POST", "/networks/x/(dis)?connect", lambda h, _r: send_empty(h, 200))
    assert pyd(daemon, "network", "connect", "x", "ctr") == 0
    argv = ["--ip", "10.201.0.5", "--ip6", "fd00::5", "--alias", "a", "--alias", "b", "--link", "l:m"]
    assert pyd(daemon, "network", "connect", *argv, "--driver-opt", "k=v", "x", "ctr") == 0
    assert pyd(daemon, "network", "disconnect", "x", "ctr") == 0
    assert pyd(daemon, "network", "disconnect", "-f", "x", "ctr") == 0
    bodies = [r.json() for r in daemon.requests]
    assert bodies[0] == {
        "Container": "ctr",
        "EndpointConfig": endpoint(IPAMConfig={}, Aliases=[], DriverOpts={}),
    }
    assert bodies[1] == {
        "Container": "ctr",
        "EndpointConfig": endpoint(
            IPAMConfig={"IPv4Address": "10.201.0.5", "IPv6Address": "fd00::5"},
            Aliases=["a", "b"],
            Links=["l:m"],
            DriverOpts={"k": "v"},
        ),
    }
    assert bodies[2:] == [{"Container": "ctr", "Force": False}, {"Container": "ctr", "Force": True}]
    assert [r.path for r in daemon.requests] == ["/networks/x/connect"] * 2 + ["/networks/x/disconnect"] * 2
    assert capfd.readouterr() == ("", "")


PROMPT = (
    "WARNING! This will remove all custom networks not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)


def test_network_prune(
    daemon: FakeDaemon, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.reply("POST", "/networks/prune", {"NetworksDeleted": ["n1", "n2"]})
    for answer in ("n\n", "", "yes\n"):  # only "y" is yes; end of input is no
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        assert pyd(daemon, "network", "prune") == 0
        assert capfd.readouterr().out == PROMPT
    assert daemon.requests == []
    monkeypatch.setattr("sys.stdin", io.StringIO(" Y \n"))
    assert pyd(daemon, "network", "prune") == 0
    assert capfd.readouterr().out == PROMPT + "Deleted Networks:\nn1\nn2\n\n"
    assert pyd(daemon, "network", "prune", "-f", "--filter", "until=24h", "--filter", "label=a=b") == 0
    assert capfd.readouterr().out == "Deleted Networks:\nn1\nn2\n\n"
    assert daemon.requests[-1].arg("filters") == '{"label":{"a=b":true},"until":{"24h":true}}'
    daemon.reply("POST", "/networks/prune", {"NetworksDeleted": None})
    assert pyd(daemon, "network", "prune", "-f") == 0
    assert capfd.readouterr().out == ""


def test_network_alone_prints_its_help(daemon: FakeDaemon, capfd: pytest.CaptureFixture[str]) -> None:
    assert pyd(daemon, "network") == 0
    out = capfd.readouterr().out
    assert out.startswith("usage: pyd network") and "prune" in out and "disconnect" in out
