"""Containers' names on user-defined networks: what each endpoint answers to in the embedded DNS, and the
server that answers inside each container's network namespace (moby's libnetwork resolver)."""

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from daemon.containers.store import Container
from daemon.networks.dns import DnsServer, NameTable, Upstream, host_upstreams
from daemon.networks.netlink import NetLink
from daemon.networks.settings import Settings
from daemon.networks.store import Network, NetworkStore


def dns_names(c: Container, ep: dict[str, Any]) -> list[str]:
    """Docker's DNSNames: the name, the aliases, the short ID, the hostname; no duplicates."""
    names = [c.name, *(ep.get("Aliases") or []), c.id[:12]]
    hostname = c.config.get("Hostname") or ""
    if hostname:
        names.append(hostname)
    return list(dict.fromkeys(names))


class ContainerNames:
    def __init__(
        self, store: NetworkStore, netlink: NetLink, settings: Settings, lookup: Callable[[str], Container]
    ) -> None:
        self.store, self.netlink, self.settings, self.lookup = store, netlink, settings, lookup
        self.table = NameTable()
        self.server = DnsServer(self.table)

    def add(self, n: Network, ep: dict[str, Any]) -> None:
        """The endpoint answers to its DNSNames (again: a second add replaces the first)."""
        ipv4, ipv6 = ep.get("IPAddress") or None, ep.get("GlobalIPv6Address") or None
        self.table.add(n.id, ep["EndpointID"], ep["DNSNames"], ipv4, ipv6, network_name=n.name)

    def remove(self, network_id: str, endpoint_id: str) -> None:
        self.table.remove(network_id, endpoint_id)

    def renamed(self, c: Container) -> None:
        """The container's name is one of its DNS names: answer to the new one at once."""
        for ep in c.data["NetworkSettings"]["Networks"].values():
            n = self.store.find(ep.get("NetworkID") or "")
            if n is not None and ep.get("EndpointID") and ep.get("DNSNames") is not None:
                ep["DNSNames"] = dns_names(c, ep)
                self.add(n, ep)

    def wants_dns(self, c: Container) -> bool:
        """Docker's embedded DNS serves containers on at least one user-defined network."""
        networks = [
            self.store.find(ep.get("NetworkID") or "")
            for ep in c.data["NetworkSettings"]["Networks"].values()
        ]
        return any(n is not None and n.user_defined for n in networks)

    async def serve(self, c: Container, pid: int) -> bool:
        """Answer the container's queries in its namespace (whose first process is pid); whether it does."""
        if not self.wants_dns(c):
            return False
        made: list[socket.socket] = []
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                made.append(await asyncio.to_thread(self.netlink.socket_in, pid, socket.AF_INET, kind))
            udp, tcp = made
            udp.bind(self.settings.dns_address)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(self.settings.dns_address)
            cid = c.id
            await self.server.serve(cid, lambda: self._joined(cid), self._upstreams(c), udp, tcp)
        except BaseException:
            for sock in made:  # the server closes them once it serves; until then they are ours
                sock.close()
            raise
        return True

    async def stop(self, container_id: str) -> None:
        await self.server.stop(container_id)

    async def close(self) -> None:
        await self.server.close()

    def _joined(self, container_id: str) -> list[str]:
        """The networks whose names the container sees, asked at each query (connect changes them)."""
        try:
            c = self.lookup(container_id)
        except Exception:  # removed meanwhile: it sees nothing
            return []
        return [
            ep["NetworkID"] for ep in c.data["NetworkSettings"]["Networks"].values() if ep.get("EndpointID")
        ]

    def _upstreams(self, c: Container) -> list[Upstream]:
        networks = [
            self.store.find(ep.get("NetworkID") or "")
            for ep in c.data["NetworkSettings"]["Networks"].values()
        ]
        if all(n is None or n.internal for n in networks):
            return []  # as Docker: a container only on internal networks has no way out, names included
        servers = c.host_config.get("Dns") or self.settings.dns
        if servers:
            return [Upstream(str(s)) for s in servers]
        return host_upstreams(self.settings.host_resolv)
