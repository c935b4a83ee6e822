"""A `NetLink` (daemon/networks/netlink.py) in memory, for service tests without root.

It keeps what the kernel would hold: `bridges` (name -> its addresses and MTU) and `endpoints` (host side
name -> the Endpoint and the pid of its namespace), and fails like the kernel does where the service
must cope (a missing bridge, a host name taken). `fail_add_endpoint` makes the next add_endpoint calls
fail after validation, as a half-way failure would, leaving nothing behind.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from daemon.networks.netlink import Endpoint, IPNetwork, NetLink


@dataclass
class FakeBridge:
    addresses: tuple[str, ...]
    mtu: int


@dataclass
class FakeNetLink:
    bridges: dict[str, FakeBridge] = field(default_factory=dict)
    endpoints: dict[str, tuple[int, Endpoint]] = field(default_factory=dict)
    other_links: set[str] = field(default_factory=lambda: {"lo", "eth0"})
    routes: list[IPNetwork] = field(default_factory=list)
    fail_add_endpoint: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ensure_bridge(self, name: str, addresses: tuple[str, ...], mtu: int) -> None:
        with self._lock:
            if name in self.other_links or name in self.endpoints:
                raise OSError(errno.EEXIST, f"{name} exists and is not a bridge")
            self.bridges[name] = FakeBridge(tuple(addresses), mtu)

    def delete_bridge(self, name: str) -> None:
        with self._lock:
            self.bridges.pop(name, None)

    def _names(self) -> set[str]:
        return set(self.other_links) | set(self.bridges) | set(self.endpoints)

    def host_routes(self) -> list[IPNetwork]:
        with self._lock:
            connected = [
                ipaddress.ip_interface(a).network for b in self.bridges.values() for a in b.addresses
            ]
            return [*self.routes, *connected]

    def add_endpoint(self, netns_pid: int, ep: Endpoint) -> None:
        with self._lock:
            if ep.bridge not in self.bridges:
                raise OSError(errno.ENODEV, f"bridge {ep.bridge} not found")
            what = f"creating veth {ep.host_ifname} into process {netns_pid}"
            if len(ep.host_ifname) > 15:
                raise OSError(errno.EINVAL, f"{what}: Invalid argument")
            taken_inside = any(p == netns_pid and e.ifname == ep.ifname for p, e in self.endpoints.values())
            if ep.host_ifname in self._names() or taken_inside:
                raise OSError(errno.EEXIST, f"{what}: File exists")
            if self.fail_add_endpoint:
                why = "Network is unreachable"
                raise OSError(errno.ENETUNREACH, f"adding default route via {ep.gateway}: {why}")
            self.endpoints[ep.host_ifname] = (netns_pid, ep)

    def namespace_gone(self, netns_pid: int) -> None:
        """What the kernel does when a namespace's last process ends: its veths go, host sides too."""
        with self._lock:
            for name in [n for n, (pid, _ep) in self.endpoints.items() if pid == netns_pid]:
                del self.endpoints[name]

    def remove_endpoint(self, host_ifname: str) -> None:
        with self._lock:
            self.endpoints.pop(host_ifname, None)

    def socket_in(self, netns_pid: int, family: int, type: int) -> socket.socket:
        sock = socket.socket(family, type)
        sock.setblocking(False)
        return sock


if TYPE_CHECKING:  # mypy checks that the fake keeps up with the Protocol
    _: NetLink = FakeNetLink()
