"""The kernel side of bridge networks: bridges, veth pairs into container namespaces, host routes.

All calls block; the daemon runs them in worker threads (asyncio.to_thread). Each call opens its own
pyroute2 socket(s) and closes them, so concurrent calls from several threads share nothing.

A netlink socket works in the network namespace it was created in. To configure a container's side,
the calling thread enters the container's namespace with setns(2) just long enough to create a socket
(or a socket for `socket_in`), then returns to its own; the daemon never forks and never moves its
main thread.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from daemon.networks import rtnl
from daemon.runtime.linux import CLONE_NEWNET, setns

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAIN_TABLE = 254
_NETLINK_ROUTE = 0
_LOOPBACK_INDEX = 1  # lo is ifindex 1 in every network namespace
_NLMSG_ERROR = 2
_NLMSG_HEADER = struct.Struct("IHHII")  # struct nlmsghdr: length, type, flags, sequence, port


@dataclass(frozen=True)
class Endpoint:
    host_ifname: str  # host side of the veth, <= 15 chars (the caller picks a unique name)
    ifname: str  # the name inside the container: "eth0", "eth1", ...
    bridge: str  # host bridge the host side is enslaved to
    mac: str  # "02:42:0a:e7:00:02"
    addresses: tuple[str, ...]  # CIDRs inside: "10.231.0.2/24", and maybe "fd00:1::2/64"
    gateway: str | None  # IPv4 default route via this; None: no IPv4 default route
    gateway6: str | None  # IPv6 default route via this; None: none
    mtu: int = 1500


class NetLink(Protocol):
    def ensure_bridge(self, name: str, addresses: tuple[str, ...], mtu: int) -> None:
        """Create the bridge if missing (adopt it if present), make its addresses exactly these CIDRs,
        set the MTU, bring it up; route_localnet on, IPv6 enabled where IPv6 addresses are given."""

    def delete_bridge(self, name: str) -> None:
        """Remove the bridge; a missing one is fine."""

    def host_routes(self) -> list[IPNetwork]:
        """Destinations of the host's routes (main table, both families)."""

    def add_endpoint(self, netns_pid: int, ep: Endpoint) -> None:
        """A veth pair from `ep.bridge` into the network namespace of `netns_pid`, configured."""

    def remove_endpoint(self, host_ifname: str) -> None:
        """Delete the veth by its host side; a missing one is fine."""

    def socket_in(self, netns_pid: int, family: int, type: int) -> socket.socket:
        """A new non-blocking socket created inside the network namespace of `netns_pid`."""


@contextlib.contextmanager
def in_netns(netns_pid: int) -> Iterator[None]:
    """Run the body with the calling thread in the network namespace of `netns_pid`.

    setns(CLONE_NEWNET) moves only the calling thread. Its own namespace is restored on the way out;
    a thread that cannot go back would do host work in a container, so that is a RuntimeError."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(f"/proc/{netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise OSError(e.errno, f"network namespace of process {netns_pid}: {e.strerror}") from None
        try:
            setns(target, CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            try:
                setns(own, CLONE_NEWNET)
            except OSError as e:
                raise RuntimeError(f"cannot return to the thread's network namespace: {e}") from e
    finally:
        os.close(own)


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    """pyroute2's NetlinkError as an OSError naming what failed ("adding address ...: File exists")."""
    try:
        yield
    except NetlinkError as e:
        raise OSError(e.code, f"{what}: {os.strerror(e.code)}") from None


class _ignoring(contextlib.AbstractContextManager[None]):  # lower case: used like contextlib.suppress
    """Swallow a NetlinkError of one errno (put it inside `_errors`, which turns the rest into OSError)."""

    def __init__(self, code: int) -> None:
        self.code = code

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        return isinstance(exc, NetlinkError) and exc.code == self.code


def _index(ipr: IPRoute, ifname: str) -> int | None:
    """The ifindex of a link by name in the socket's namespace, None when there is none."""
    with _ignoring(errno.ENODEV):
        return int(ipr.link("get", ifname=ifname)[0]["index"])
    return None


def _kind(ipr: IPRoute, index: int) -> str | None:
    msg = ipr.link("get", index=index)[0]
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    return str(kind) if kind else None


def _add_address(ipr: IPRoute, index: int, cidr: str, ifname: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    kw: dict[str, Any] = {"index": index, "address": str(iface.ip), "prefixlen": iface.network.prefixlen}
    if iface.version == 4:
        kw["broadcast"] = str(iface.network.broadcast_address)
    else:
        kw["flags"] = IFA_F_NODAD  # like Docker: usable at once, no second of duplicate detection
    with _errors(f"adding address {cidr} to {ifname}"), _ignoring(errno.EEXIST):
        ipr.addr("add", **kw)


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


def _netlink_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


def _send(sock: socket.socket, requests: list[bytes]) -> list[int]:
    """Send the requests at once; the errno of each (0: done), from its acknowledgement. The kernel
    handles each request on its own: one refused does not stop the next."""
    sock.send(b"".join(requests))
    codes: list[int] = []
    while len(codes) < len(requests):
        data = sock.recv(65536)
        offset = 0
        while offset + _NLMSG_HEADER.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSG_HEADER.unpack_from(data, offset)
            if kind == _NLMSG_ERROR:  # an acknowledgement: error 0, or minus an errno
                codes.append(-struct.unpack_from("i", data, offset + _NLMSG_HEADER.size)[0])
            offset += max(length, _NLMSG_HEADER.size)
    return codes


def _refused(codes: list[int], what: list[str]) -> None:
    """The first refusal as an OSError naming its request (`what`: one entry per request)."""
    for code, request in zip(codes, what, strict=True):
        if code:
            raise OSError(code, f"{request}: {os.strerror(code)}")


class KernelNetLink:
    """`NetLink` on the running kernel through pyroute2's rtnetlink sockets."""

    def ensure_bridge(self, name: str, addresses: tuple[str, ...], mtu: int) -> None:
        wanted = {ipaddress.ip_interface(a) for a in addresses}
        with IPRoute() as ipr:
            index = _index(ipr, name)
            if index is None:
                # a concurrent creator wins the race harmlessly: adopt what it made
                with _errors(f"creating bridge {name}"), _ignoring(errno.EEXIST):
                    ipr.link("add", ifname=name, kind="bridge")
                index = _index(ipr, name)
                if index is None:
                    raise OSError(errno.ENODEV, f"bridge {name} vanished while being created")
            if _kind(ipr, index) != "bridge":
                raise OSError(errno.EEXIST, f"{name} exists and is not a bridge")
            if any(i.version == 6 for i in wanted):
                # the kernel drops IPv6 addresses of a device with IPv6 disabled
                _write_sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0")
            with _errors(f"setting MTU {mtu} and up on {name}"):
                ipr.link("set", index=index, mtu=mtu, state="up")
            present = set()
            for msg in ipr.addr("dump", index=index):
                iface = ipaddress.ip_interface(f"{msg.get('address')}/{msg['prefixlen']}")
                if iface in wanted or iface.ip.is_link_local:  # fe80:: is the kernel's own
                    present.add(iface)
                    continue
                with _errors(f"removing address {iface} from {name}"), _ignoring(errno.EADDRNOTAVAIL):
                    ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            for iface in wanted - present:
                _add_address(ipr, index, str(iface), name)
        # published ports on 127.0.0.1 are DNATed to containers: let loopback sources route onto the bridge
        _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")

    def delete_bridge(self, name: str) -> None:
        with IPRoute() as ipr, _errors(f"deleting bridge {name}"), _ignoring(errno.ENODEV):
            ipr.link("del", ifname=name)

    def host_routes(self) -> list[IPNetwork]:
        routes: list[IPNetwork] = []
        with IPRoute() as ipr:
            for family in (socket.AF_INET, socket.AF_INET6):
                for msg in ipr.route("dump", family=family, table=_MAIN_TABLE):
                    if msg["dst_len"] == 0:  # a default route overlaps everything: Docker ignores it too
                        continue
                    net = ipaddress.ip_network(f"{msg.get('dst')}/{msg['dst_len']}", strict=False)
                    if net.is_link_local or net.is_multicast:
                        continue
                    routes.append(net)
        return routes

    def add_endpoint(self, netns_pid: int, ep: Endpoint) -> None:
        # two round trips, one per namespace, each a batch of requests (a container's start waits here)
        try:
            bridge = socket.if_nametoindex(ep.bridge)
        except OSError:
            raise OSError(errno.ENODEV, f"bridge {ep.bridge} not found") from None
        netns = os.open(f"/proc/{netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            requests = [
                rtnl.veth_into(ep.host_ifname, bridge, ep.mtu, ep.ifname, ep.mac, netns),
                rtnl.hairpin(ep.host_ifname),
            ]
            with _netlink_socket() as sock:
                codes = _send(sock, requests)
        finally:
            os.close(netns)
        try:
            _refused(codes, [f"creating veth {ep.host_ifname} into process {netns_pid}",
                             f"setting hairpin mode on {ep.host_ifname}"])  # fmt: skip
            self._configure_inside(netns_pid, ep)
        except BaseException:
            if codes[0] == 0:  # ours: undo it (a name that existed before is left alone)
                with contextlib.suppress(OSError):
                    self.remove_endpoint(ep.host_ifname)
            raise

    @staticmethod
    def _configure_inside(netns_pid: int, ep: Endpoint) -> None:
        """Addresses, links up, default routes: one batch on a socket made in the container's namespace."""
        with in_netns(netns_pid):
            sock = _netlink_socket()
            try:
                index = socket.if_nametoindex(ep.ifname)
            except OSError:
                sock.close()
                raise OSError(errno.ENODEV, f"{ep.ifname} is missing in process {netns_pid}") from None
        requests, what = [], []
        for cidr in ep.addresses:
            requests.append(rtnl.address(index, cidr))
            what.append(f"adding address {cidr} to {ep.ifname}")
        requests += [rtnl.link_up(index), rtnl.link_up(_LOOPBACK_INDEX)]  # lo: up already in a container
        what += [f"bringing up {ep.ifname} in process {netns_pid}", f"bringing up lo in process {netns_pid}"]
        for gateway in (ep.gateway, ep.gateway6):
            if gateway:
                requests.append(rtnl.default_route(gateway, index))
                what.append(f"adding default route via {gateway}")
        with sock:
            _refused(_send(sock, requests), what)

    def remove_endpoint(self, host_ifname: str) -> None:
        with IPRoute() as ipr, _errors(f"deleting {host_ifname}"), _ignoring(errno.ENODEV):
            ipr.link("del", ifname=host_ifname)

    def socket_in(self, netns_pid: int, family: int, type: int) -> socket.socket:
        with in_netns(netns_pid):
            sock = socket.socket(family, type | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        return sock


if TYPE_CHECKING:  # mypy checks the class against its Protocol
    _: NetLink = KernelNetLink()
