"""A running container's place on its networks: the veth and address on each bridge network, its names in
the embedded DNS, its published ports and their firewall rules, its /etc/hosts and /etc/resolv.conf.

Nothing here is stored on its own. What a running container holds is written in its own record
(NetworkSettings), and `restore` re-derives addresses, ports and names from those records at start; a
container's veth goes away with its network namespace even when the daemon was not there to see it."""

import asyncio
import hashlib
import logging
import secrets
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from daemon.containers.networking import DESIRED_MAC, joined_container, network_mode
from daemon.containers.store import Container
from daemon.errors import DaemonError, NotImplementedYet, SystemError_
from daemon.networks import etcfiles
from daemon.networks.endpoint_config import clear_runtime_fields
from daemon.networks.firewall import Firewall, NetworkRules, PortRule
from daemon.networks.ipam import mac_for
from daemon.networks.naming import ContainerNames, dns_names
from daemon.networks.netlink import Endpoint, NetLink
from daemon.networks.pools import NetworkPools
from daemon.networks.ports import (
    PortAllocator,
    PortBinding,
    parse_exposed_ports,
    parse_port_bindings,
    ports_view,
    publish_all,
)
from daemon.networks.settings import Settings
from daemon.networks.store import HOST_BINDING, Network, NetworkStore

log = logging.getLogger(__name__)


def veth_name(container_id: str, network_id: str, endpoint_id: str) -> str:
    """The host side of a container's veth on a network, derived from what its record keeps (so a
    restarted daemon finds it); new with each endpoint, so a veth the kernel is still tearing down after
    an exit never blocks the next start's."""
    return "pv" + hashlib.sha256(f"{container_id}/{network_id}/{endpoint_id}".encode()).hexdigest()[:12]


def on_bridges(c: Container) -> bool:
    return network_mode(c) not in ("host", "none") and joined_container(c) is None


@dataclass
class Attachment:
    """What the daemon holds for a running container on bridge networks."""

    pid: int
    veths: dict[str, str] = field(default_factory=dict)  # network id -> host side of the veth
    ifnames: dict[str, str] = field(default_factory=dict)  # network id -> its name inside ("eth0", ...)
    joining: set[str] = field(default_factory=set)  # networks it has or is getting an endpoint on
    gateway: str = ""  # the network whose gateway is the default route (the first not internal)
    ports: list[PortRule] = field(default_factory=list)
    dns: bool = False


class Plumbing:
    def __init__(
        self,
        store: NetworkStore,
        pools: NetworkPools,
        netlink: NetLink,
        firewall: Firewall,
        settings: Settings,
        lookup: Callable[[str], Container],
    ) -> None:
        self.store, self.pools, self.netlink, self.firewall = store, pools, netlink, firewall
        self.settings = settings
        self.lookup = lookup  # containers by name or ID (links, `container:` modes)
        self.names = ContainerNames(store, netlink, settings, lookup)
        self.ports = PortAllocator()
        self._attached: dict[str, Attachment] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._firewall_lock = asyncio.Lock()

    # --- start and exit -------------------------------------------------------------------------

    def _lock(self, container_id: str) -> asyncio.Lock:
        """One change at a time to a container's plumbing: a start, an exit, a connect, a disconnect (an
        exit is seen without the container's lock). Dropped with the last holder or waiter."""
        lock = self._locks.get(container_id)
        if lock is None:
            lock = self._locks[container_id] = asyncio.Lock()
        return lock

    async def attach(self, c: Container, pid: int) -> None:
        """Plumb a created container (its first process waits before execve) into its networks."""
        if not on_bridges(c):
            self.write_etc_files(c)
            return
        async with self._lock(c.id):
            att = Attachment(pid)
            self._attached[c.id] = att
            try:
                for name in list(c.data["NetworkSettings"]["Networks"]):
                    await self._join(c, att, name)
                await self._publish(c, att)
                att.dns = await self.names.serve(c, att.pid)
                self.write_etc_files(c)
            except BaseException:
                await self._detach(c, remove_veths=True)  # a failed start leaves nothing once answered
                raise

    async def detach(self, c: Container, remove_veths: bool = False) -> None:
        """Undo attach (also for a container the daemon restored, or only half attached). The veths go
        with the container's network namespace when its last process ends, without a word from us (a
        veth's deletion costs the kernel some 20 ms, a `docker run --rm` need not wait for it);
        `remove_veths` when the namespace lives on: a failed start, a `container:` container in it."""
        async with self._lock(c.id):
            await self._detach(c, remove_veths)

    async def _detach(self, c: Container, remove_veths: bool) -> None:
        att = self._attached.pop(c.id, None)
        settings = c.data["NetworkSettings"]
        _clear_top_level(settings)
        for name, ep in list(settings["Networks"].items()):
            await self._leave(c, name, ep, att, remove_veth=remove_veths)
        self.ports.release(c.id)
        if att is not None and att.dns:
            await self.names.stop(c.id)
        if att is not None and att.ports:
            try:
                await self.apply_firewall()
            except OSError:  # the next change of networks or ports writes them all again
                log.exception("removing the port rules of container %s failed", c.id[:12])

    async def connect(self, c: Container, name: str) -> None:
        """A running container joins one more network (its endpoint is already in the record)."""
        async with self._lock(c.id):
            att = self._attached.get(c.id)
            if att is None:  # it exited meanwhile (`none`, `host`, `container:` are refused earlier)
                return  # the endpoint is in its record: the next start plumbs it
            try:
                await self._join(c, att, name)
                if not att.dns:
                    att.dns = await self.names.serve(c, att.pid)
            except BaseException:
                await self._leave(c, name, c.data["NetworkSettings"]["Networks"][name], att, remove_veth=True)
                raise
            self.write_etc_files(c)

    async def disconnect(self, c: Container, name: str) -> None:
        async with self._lock(c.id):
            att = self._attached.get(c.id)
            ep = c.data["NetworkSettings"]["Networks"].get(name)
            if ep is not None and att is not None:
                await self._leave(c, name, ep, att, remove_veth=True)
                self.write_etc_files(c)

    def holds(self, network_id: str) -> bool:
        """Whether a container being started or running has (or is getting) an endpoint on the network."""
        return any(network_id in att.joining for att in self._attached.values())

    async def _join(self, c: Container, att: Attachment, name: str) -> None:
        ep = c.data["NetworkSettings"]["Networks"][name]
        n = self.store.get(ep.get("NetworkID") or name)
        ep["NetworkID"] = n.id
        att.joining.add(n.id)  # before the first await: the network is not removed under us
        taken = set(att.ifnames.values())
        ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
        wanted = ep.get("IPAMConfig") or {}
        ip4 = self.pools.allocate(n.id, 4, wanted.get("IPv4Address") or "")
        ep["IPAddress"] = str(ip4) if ip4 else ""
        ip6 = None
        if n.record.get("EnableIPv6"):
            ip6 = self.pools.allocate(n.id, 6, wanted.get("IPv6Address") or "")
            ep["GlobalIPv6Address"] = str(ip6) if ip6 else ""
        cfg4, cfg6 = self.pools.subnet_of(n.id, 4), self.pools.subnet_of(n.id, 6)
        gateway_here = not n.internal and not att.gateway
        addresses = []
        if ip4 and cfg4:
            addresses.append(f"{ip4}/{cfg4.subnet.prefixlen}")
            ep["IPPrefixLen"], ep["Gateway"] = cfg4.subnet.prefixlen, str(cfg4.gateway)
        if ip6 and cfg6:
            addresses.append(f"{ip6}/{cfg6.subnet.prefixlen}")
            ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"] = cfg6.subnet.prefixlen, str(cfg6.gateway)
        mac = ep.get(DESIRED_MAC) or (mac_for(ip4) if ip4 and ip4.version == 4 else random_mac())
        ep["MacAddress"] = mac
        ep["EndpointID"] = secrets.token_hex(32)
        link = Endpoint(
            host_ifname=veth_name(c.id, n.id, ep["EndpointID"]),
            ifname=ifname,
            bridge=n.bridge,
            mac=mac,
            addresses=tuple(addresses),
            gateway=str(cfg4.gateway) if gateway_here and cfg4 else None,
            gateway6=str(cfg6.gateway) if gateway_here and cfg6 and ip6 else None,
            mtu=n.mtu or self.settings.default_mtu,
        )
        await asyncio.to_thread(self.netlink.add_endpoint, att.pid, link)
        att.veths[n.id], att.ifnames[n.id] = link.host_ifname, ifname
        if gateway_here:
            att.gateway = n.id
        if n.user_defined:
            ep["DNSNames"] = dns_names(c, ep)
            self.names.add(n, ep)
        if n.is_default_bridge:
            _fill_top_level(c.data["NetworkSettings"], ep)

    async def _leave(
        self, c: Container, name: str, ep: dict[str, Any], att: Attachment | None, remove_veth: bool
    ) -> None:
        """Release an endpoint: its address, names and, when asked, its veth (see detach). The record
        forgets first, so nothing is ever released twice."""
        network_id, endpoint_id = ep.get("NetworkID") or "", ep.get("EndpointID") or ""
        addresses = [ep.get("IPAddress") or "", ep.get("GlobalIPv6Address") or ""]
        clear_runtime_fields(ep)
        if endpoint_id:
            self.names.remove(network_id, endpoint_id)
        for address in addresses:
            self.pools.release(network_id, address)
        veth = None
        if att is not None:
            veth = att.veths.pop(network_id, None)
            att.ifnames.pop(network_id, None)
            att.joining.discard(network_id)
            if att.gateway == network_id:
                att.gateway = ""  # the default route went with the veth (moby would pick another gateway)
        if remove_veth and network_id and endpoint_id:
            veth = veth or veth_name(c.id, network_id, endpoint_id)
            try:
                await asyncio.to_thread(self.netlink.remove_endpoint, veth)
            except OSError as e:
                log.warning("removing veth %s: %s", veth, e)

    # --- published ports ------------------------------------------------------------------------

    async def _publish(self, c: Container, att: Attachment) -> None:
        bindings = wanted_bindings(c)
        settings = c.data["NetworkSettings"]
        exposed = parse_exposed_ports(c.config.get("ExposedPorts"))
        primary = self._primary(c)
        if not bindings or primary is None:
            settings["Ports"] = ports_view(exposed, [])
            return
        if not self.settings.iptables:  # nothing would forward them: refused, never ignored
            raise NotImplementedYet("published ports need the firewall: this daemon runs without iptables")
        n, ep = primary
        default_ip = n.options.get(HOST_BINDING, "")
        in_effect: list[PortBinding] = []
        for b in bindings:
            if not b.host_ip and default_ip:
                b = replace(b, host_ip=default_ip)
            try:
                host_ip, host_port = self.ports.allocate(c.id, b)
            except DaemonError as e:  # moby's words around the allocator's
                where = f"driver failed programming external connectivity on endpoint {c.name}"
                raise SystemError_(f"{where} ({ep['EndpointID']}): {e.message}") from None
            in_effect.append(replace(b, host_ip=host_ip, host_port=host_port, host_port_end=0))
            att.ports.append(
                PortRule(b.proto, host_ip, host_port, ep["IPAddress"], b.container_port, n.bridge)
            )
        settings["Ports"] = ports_view(exposed, in_effect)
        await self.apply_firewall()

    def _primary(self, c: Container) -> tuple[Network, dict[str, Any]] | None:
        for ep in c.data["NetworkSettings"]["Networks"].values():
            if ep.get("IPAddress"):
                return self.store.get(ep["NetworkID"]), ep
        return None

    async def apply_firewall(self, without: str = "") -> None:
        """Make the firewall match the networks (but `without`, being removed) and the published ports."""
        if not self.settings.iptables:
            return
        async with self._firewall_lock:
            networks = [r for n in self.store if n.id != without and (r := self.network_rules(n)) is not None]
            ports = [rule for att in self._attached.values() for rule in att.ports]
            await asyncio.to_thread(self.firewall.apply, networks, ports)

    def network_rules(self, n: Network) -> NetworkRules | None:
        cfg4, cfg6 = self.pools.subnet_of(n.id, 4), self.pools.subnet_of(n.id, 6)
        if not n.is_bridge or cfg4 is None:
            return None
        return NetworkRules(
            bridge=n.bridge,
            subnet=str(cfg4.subnet),
            internal=n.internal,
            icc=n.icc,
            masquerade=n.masquerade and self.settings.ip_masq,
            subnet6=str(cfg6.subnet) if cfg6 and n.record.get("EnableIPv6") else "",
        )

    def write_etc_files(self, c: Container) -> None:
        etcfiles.write_container_files(c, self.settings, self.names.wants_dns(c), self.lookup)

    # --- daemon start ---------------------------------------------------------------------------

    async def restore(self, containers: Iterable[Container]) -> None:
        """Take back what the running containers hold (addresses, ports, names, DNS) after a restart."""
        for c in containers:
            if not on_bridges(c) or not c.running or not c.pid:
                continue
            try:
                await self._restore_one(c)
            except Exception:
                log.exception("restoring the networks of container %s failed", c.id[:12])
        try:
            await self.apply_firewall()
        except OSError:  # the daemon serves on; the next change of networks or ports tries again
            log.exception("the firewall could not be restored")

    async def _restore_one(self, c: Container) -> None:
        att = Attachment(c.pid)
        self._attached[c.id] = att
        for ep in c.data["NetworkSettings"]["Networks"].values():
            n = self.store.find(ep.get("NetworkID") or "")
            if n is None or not ep.get("EndpointID"):
                continue
            for key in ("IPAddress", "GlobalIPv6Address"):
                if ep.get(key):
                    self.pools.allocate(n.id, 4 if key == "IPAddress" else 6, ep[key])
            att.veths[n.id] = veth_name(c.id, n.id, ep["EndpointID"])
            # the names inside are not in the record: in join order, as a start without disconnects has them
            att.ifnames[n.id] = f"eth{len(att.ifnames)}"
            att.joining.add(n.id)
            if not att.gateway and not n.internal:
                att.gateway = n.id
            if ep.get("DNSNames") is not None:
                self.names.add(n, ep)
        primary = self._primary(c)
        for key, entries in (c.data["NetworkSettings"].get("Ports") or {}).items():
            port, _, proto = key.partition("/")
            for entry in entries or []:
                host_ip, host_port = entry["HostIp"], int(entry["HostPort"])
                try:
                    self.ports.reserve(c.id, proto, host_ip, host_port)
                except Exception as e:
                    log.warning(
                        "container %s: cannot hold %s:%s/%s again: %s",
                        c.id[:12],
                        host_ip,
                        host_port,
                        proto,
                        e,
                    )
                if primary is not None:
                    n, ep = primary
                    att.ports.append(
                        PortRule(proto, host_ip, host_port, ep["IPAddress"], int(port), n.bridge)
                    )
        att.dns = await self.names.serve(c, att.pid)

    async def close(self) -> None:
        await self.names.close()


def wanted_bindings(c: Container) -> list[PortBinding]:
    bindings = parse_port_bindings(c.host_config.get("PortBindings"))
    if c.host_config.get("PublishAllPorts"):
        bindings = publish_all(parse_exposed_ports(c.config.get("ExposedPorts")), bindings)
    return bindings


def random_mac() -> str:
    raw = bytearray(secrets.token_bytes(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


TOP_LEVEL = (
    "EndpointID",
    "Gateway",
    "GlobalIPv6Address",
    "GlobalIPv6PrefixLen",
    "IPAddress",
    "IPPrefixLen",
    "IPv6Gateway",
    "MacAddress",
)


def _fill_top_level(settings: dict[str, Any], ep: dict[str, Any]) -> None:
    """Docker repeats the default bridge's endpoint at the top of NetworkSettings (deprecated fields)."""
    for key in TOP_LEVEL:
        settings[key] = ep.get(key, "")


def _clear_top_level(settings: dict[str, Any]) -> None:
    for key in TOP_LEVEL:
        settings[key] = 0 if key.endswith("PrefixLen") else ""
    settings["Ports"] = {}
