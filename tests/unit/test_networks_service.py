"""The network service with the container service on fakes (runtime, netlink, firewall): what a container
takes from its networks at start and gives back at exit, networks' create/remove rules, restore."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daemon.containers.service import ContainerService
from daemon.errors import Conflict, Forbidden, InvalidParameter, NotFound, NotImplementedYet, SystemError_
from daemon.events.bus import EventBus
from daemon.networks.firewall import NetworkRules, PortRule
from daemon.networks.ipam import SubnetChooser
from daemon.networks.service import NetworkService
from daemon.networks.settings import Settings
from tests.fakes.netlink import FakeNetLink
from tests.fakes.runtime import FakeRuntime
from tests.unit.test_container_lifecycle import FakeImages


@dataclass
class RecordingFirewall:
    """The firewall's last complete state, as the service handed it over."""

    networks: list[NetworkRules] = field(default_factory=list)
    ports: list[PortRule] = field(default_factory=list)
    applied: int = 0
    present: bool = True  # False: a host without iptables

    def available(self) -> bool:
        return self.present

    def warnings(self) -> list[str]:
        return []

    def apply(self, networks: list[NetworkRules], ports: list[PortRule]) -> None:
        self.networks, self.ports, self.applied = list(networks), list(ports), self.applied + 1

    def remove_all(self) -> None:
        self.networks, self.ports = [], []


@dataclass
class Host:
    """One daemon's services on fakes; `restarted()` is the next daemon over the same data and kernel."""

    root: Path
    runtime: FakeRuntime = field(default_factory=FakeRuntime)
    netlink: FakeNetLink = field(default_factory=FakeNetLink)
    firewall: RecordingFirewall = field(default_factory=RecordingFirewall)
    events: EventBus = field(default_factory=EventBus)

    def __post_init__(self) -> None:
        resolv = self.root / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.9\n")
        settings = Settings(host_resolv=str(resolv), dns_address=("127.0.0.1", 0))
        chooser = SubnetChooser([("10.50.0.0/16", 24)])
        self.networks = NetworkService(
            self.root, self.events, self.netlink, self.firewall, chooser, settings, bridge="pyt0"
        )
        self.containers = ContainerService(self.root, self.runtime, FakeImages(), self.events, self.networks)
        self.networks.set_containers(self.containers)

    async def up(self) -> "Host":
        await self.networks.load()
        await self.containers.restore()
        await self.networks.restore()
        return self

    async def restarted(self) -> "Host":
        return await Host(self.root, self.runtime, self.netlink, self.firewall).up()

    async def run(
        self, name: str, network: str = "bridge", hc: dict[str, Any] | None = None, **body: Any
    ) -> dict[str, Any]:
        host_config = {"NetworkMode": network, **(hc or {})}
        await self.containers.create(name, {"Image": "busybox", "HostConfig": host_config, **body})
        await self.containers.start(name)
        return await self.containers.inspect(name)

    async def exit(self, name: str) -> None:
        """The container's process ends; the kernel drops its namespace's veths by itself."""
        c = self.containers.get(name)
        pid = c.pid
        _, fut = self.containers.wait_future(c.id, "not-running")
        self.runtime.finish(c.id, 0)
        await asyncio.wait_for(fut, 5)
        self.netlink.namespace_gone(pid)

    def veths(self) -> dict[str, Any]:
        return {ep.host_ifname: ep for _pid, ep in self.netlink.endpoints.values()}


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    h = await Host(tmp_path).up()
    yield h
    await h.networks.close()
    for c in h.containers.all():
        if c.monitor is not None and not c.monitor.done():
            c.monitor.cancel()


async def test_predefined_networks_and_the_default_bridge(host: Host) -> None:
    names = [n["Name"] for n in await host.networks.list_networks({})]
    assert sorted(names) == ["bridge", "host", "none"]
    assert host.netlink.bridges["pyt0"].addresses == ("10.50.0.1/24",)
    assert [r.bridge for r in host.firewall.networks] == ["pyt0"]
    with pytest.raises(Forbidden, match="pre-defined network"):
        await host.networks.remove_network("bridge")


async def test_create_makes_bridge_rules_and_event_and_remove_undoes_them(host: Host) -> None:
    created = await host.networks.create_network({"Name": "app", "Labels": {"a": "b"}})
    info = await host.networks.inspect_network("app", False, "")
    assert info["Id"] == created["Id"] and info["IPAM"]["Config"] == [
        {"Subnet": "10.50.1.0/24", "Gateway": "10.50.1.1"}
    ]
    bridge = f"br-{created['Id'][:12]}"
    assert host.netlink.bridges[bridge].addresses == ("10.50.1.1/24",)
    assert bridge in [r.bridge for r in host.firewall.networks]
    assert (host.root / "network" / f"{created['Id']}.json").exists()
    await host.networks.remove_network("app")
    assert bridge not in host.netlink.bridges and bridge not in [r.bridge for r in host.firewall.networks]
    assert not (host.root / "network" / f"{created['Id']}.json").exists()
    actions = [e["Action"] for e in host.events._history if e["Type"] == "network"]
    assert actions == ["create", "destroy"]


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ({"Name": "bridge"}, Conflict, "network with name bridge already exists"),
        ({"Name": "o", "Driver": "overlay"}, NotImplementedYet, "only bridge"),
        ({"Name": "p", "Driver": "weird"}, NotFound, 'plugin "weird" not found'),
        ({"Name": "h", "Driver": "host"}, Forbidden, 'only one instance of "host"'),
        ({"Name": "x", "Options": {"com.example.thing": "1"}}, NotImplementedYet, "com.example.thing"),
        ({"Name": "y", "IPAM": {"Config": [{"Subnet": "10.50.0.0/16"}]}}, Forbidden, "overlaps"),
        ({"Name": "z", "IPAM": {"Config": [{"Subnet": "nonsense"}]}}, InvalidParameter, "invalid"),
        ({"Name": "l", "Labels": {"a": 1}}, InvalidParameter, "cannot unmarshal number"),
        ({}, InvalidParameter, "name is required"),
    ],
)
async def test_bad_creates_are_refused_and_leave_nothing(
    host: Host, body: dict[str, Any], error: type[Exception], words: str
) -> None:
    bridges, files = set(host.netlink.bridges), sorted((host.root / "network").iterdir())
    with pytest.raises(error, match=words):
        await host.networks.create_network(body)
    assert set(host.netlink.bridges) == bridges and sorted((host.root / "network").iterdir()) == files


async def test_a_container_gets_an_address_on_start_and_gives_it_back_at_exit(host: Host) -> None:
    await host.networks.create_network({"Name": "app", "IPAM": {"Config": [{"Subnet": "10.50.9.0/24"}]}})
    info = await host.run("web", "app", Hostname="box")
    ep = info["NetworkSettings"]["Networks"]["app"]
    assert (ep["IPAddress"], ep["Gateway"], ep["IPPrefixLen"], ep["MacAddress"]) == (
        "10.50.9.2", "10.50.9.1", 24, "02:42:0a:32:09:02",
    )  # fmt: skip
    assert ep["DNSNames"] == ["web", info["Id"][:12], "box"] and "DesiredMacAddress" not in ep
    [veth] = host.veths().values()
    assert (veth.ifname, veth.addresses, veth.gateway) == ("eth0", ("10.50.9.2/24",), "10.50.9.1")
    net_id = ep["NetworkID"]
    assert host.networks.plumbing.names.table.lookup([net_id], "web", 1) == ["10.50.9.2"]
    assert (host.root / "containers" / info["Id"] / "hosts").read_text().endswith("10.50.9.2\tbox\n")
    await host.exit("web")
    assert host.veths() == {} and host.networks.plumbing.names.table.lookup([net_id], "web", 1) is None
    stopped = (await host.containers.inspect("web"))["NetworkSettings"]["Networks"]["app"]
    assert stopped["IPAddress"] == "" and stopped["NetworkID"] == net_id
    again = await host.run("other", "app")
    assert again["NetworkSettings"]["Networks"]["app"]["IPAddress"] == "10.50.9.2"


async def test_a_failed_plumbing_fails_the_start_and_leaves_nothing(host: Host) -> None:
    host.netlink.fail_add_endpoint = True
    published = {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}
    with pytest.raises(
        SystemError_, match=r"^adding default route via 10\.50\.0\.1: Network is unreachable$"
    ):
        await host.run("web", hc=published)
    state = (await host.containers.inspect("web"))["State"]
    # as Docker: a container whose start failed stays "created", with the reason and exit code 128
    assert (state["Status"], state["ExitCode"]) == ("created", 128) and "unreachable" in state["Error"]
    assert host.veths() == {} and host.firewall.ports == []
    host.netlink.fail_add_endpoint = False
    info = await host.run("next")
    assert info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == "10.50.0.2"


async def test_published_ports_are_rules_while_the_container_runs(host: Host) -> None:
    published = {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}
    info = await host.run("web", ExposedPorts={"80/tcp": {}, "81/tcp": {}}, hc=published)
    ports = info["NetworkSettings"]["Ports"]
    [binding] = ports["80/tcp"]
    assert ports["81/tcp"] is None and binding["HostIp"] == "127.0.0.1"
    [rule] = host.firewall.ports
    assert (rule.host_ip, rule.host_port, rule.container_ip, rule.container_port, rule.bridge) == (
        "127.0.0.1", int(binding["HostPort"]), "10.50.0.2", 80, "pyt0",
    )  # fmt: skip
    [listed] = [
        s for s in await host.containers.list_summaries(True, None, {}, False) if s["Id"] == info["Id"]
    ]
    assert {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": rule.host_port, "Type": "tcp"} in listed[
        "Ports"
    ]
    await host.exit("web")
    assert host.firewall.ports == []


async def test_a_restarted_daemon_keeps_what_running_containers_hold(host: Host) -> None:
    await host.networks.create_network({"Name": "app", "IPAM": {"Config": [{"Subnet": "10.50.9.0/24"}]}})
    published = {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}
    info = await host.run("web", "app", hc=published)
    net_id = info["NetworkSettings"]["Networks"]["app"]["NetworkID"]
    rules = list(host.firewall.ports)
    await host.networks.close()
    after = await host.restarted()
    assert after.firewall.ports == rules, "published ports are rules again"
    assert after.networks.plumbing.names.table.lookup([net_id], "web", 1) == ["10.50.9.2"]
    second = await after.run("second", "app")
    assert second["NetworkSettings"]["Networks"]["app"]["IPAddress"] == "10.50.9.3", "web keeps .2"
    assert after.containers.get("web").running


async def test_connect_and_disconnect_a_running_container(host: Host) -> None:
    await host.networks.create_network({"Name": "a", "IPAM": {"Config": [{"Subnet": "10.50.7.0/24"}]}})
    await host.networks.create_network({"Name": "b", "IPAM": {"Config": [{"Subnet": "10.50.8.0/24"}]}})
    await host.run("web", "a")
    await host.networks.connect_network("b", "web", {"Aliases": ["api"]})
    ifnames = sorted(ep.ifname for ep in host.veths().values())
    assert ifnames == ["eth0", "eth1"]
    b = await host.networks.inspect_network("b", False, "")
    [entry] = b["Containers"].values()
    assert entry["Name"] == "web" and entry["IPv4Address"] == "10.50.8.2/24"
    with pytest.raises(Forbidden, match="has active endpoints"):
        await host.networks.remove_network("b")
    await host.networks.disconnect_network("b", "web", False)
    assert [ep.ifname for ep in host.veths().values()] == ["eth0"]
    assert "b" not in (await host.containers.inspect("web"))["NetworkSettings"]["Networks"]
    await host.networks.remove_network("b")


async def test_create_time_refusals_in_dockers_words(host: Host) -> None:
    with pytest.raises(InvalidParameter, match="user defined networks only"):
        await host.containers.create("xx", {"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {
            "bridge": {"IPAMConfig": {"IPv4Address": "10.50.0.9"}}}}})  # fmt: skip
    with pytest.raises(NotFound, match="network nope not found"):
        await host.containers.create("xx", {"Image": "busybox", "HostConfig": {"NetworkMode": "nope"}})
    assert host.containers.all() == []


async def test_rename_moves_the_dns_name(host: Host) -> None:
    await host.networks.create_network({"Name": "app"})
    info = await host.run("web", "app")
    net_id = info["NetworkSettings"]["Networks"]["app"]["NetworkID"]
    await host.containers.rename("web", "api")
    names = host.networks.plumbing.names.table
    assert names.lookup([net_id], "api", 1) == ["10.50.1.2"] and names.lookup([net_id], "web", 1) is None
    record = json.loads((host.root / "containers" / info["Id"] / "config.v2.json").read_text())
    assert "api" in record["NetworkSettings"]["Networks"]["app"]["DNSNames"]


async def test_a_host_without_iptables_runs_without_a_firewall_and_says_so(tmp_path: Path) -> None:
    h = await Host(tmp_path, firewall=RecordingFirewall(present=False)).up()
    try:
        assert any("No iptables" in w for w in h.networks.warnings())
        await h.networks.create_network({"Name": "app"})
        info = await h.run("web", "app")
        assert info["NetworkSettings"]["Networks"]["app"]["IPAddress"] == "10.50.1.2"
        with pytest.raises(NotImplementedYet, match="published ports need the firewall"):
            await h.run("pub", hc={"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}})
        assert h.firewall.applied == 0
    finally:
        await h.networks.close()
        for c in h.containers.all():
            if c.monitor is not None and not c.monitor.done():
                c.monitor.cancel()


async def test_a_namespace_kept_by_a_container_mode_sharer_loses_the_owners_veth(host: Host) -> None:
    owner = await host.run("owner")
    joiner = await host.run("joiner", f"container:{owner['Id']}")
    assert joiner["NetworkSettings"]["Networks"] == {}
    assert host.runtime.containers[joiner["Id"]].spec.netns_path == f"/proc/{owner['State']['Pid']}/ns/net"
    c = host.containers.get("owner")
    _, fut = host.containers.wait_future(c.id, "not-running")
    host.runtime.finish(c.id, 0)
    await asyncio.wait_for(fut, 5)  # no namespace_gone: the joiner keeps the namespace alive
    assert host.veths() == {}, "the daemon removed the veth itself"


async def test_a_freed_interface_name_is_taken_again_and_refusals_are_400s(host: Host) -> None:
    for name, k in (("a", 7), ("b", 8), ("c", 9)):
        await host.networks.create_network(
            {"Name": name, "IPAM": {"Config": [{"Subnet": f"10.50.{k}.0/24"}]}}
        )
    await host.run("web", "a")
    await host.networks.connect_network("b", "web", None)
    await host.networks.disconnect_network("a", "web", False)
    await host.networks.connect_network("c", "web", None)
    assert sorted(ep.ifname for ep in host.veths().values()) == ["eth0", "eth1"]
    await host.run("lonely", "none")
    with pytest.raises(InvalidParameter, match=r"private \(none\) mode"):
        await host.networks.connect_network("a", "lonely", None)
    aliased = {"EndpointsConfig": {"host": {"Aliases": ["x"]}}}
    with pytest.raises(InvalidParameter, match="alias is supported only for containers in user defined"):
        await host.containers.create(
            "hh", {"Image": "busybox", "HostConfig": {"NetworkMode": "host"}, "NetworkingConfig": aliased}
        )
