"""The rtnetlink requests of a container's veth, built with pyroute2's message classes.

pyroute2's request API normalises every argument through several layers (about 1.7 ms a request here);
these few messages, encoded directly from its classes, cost a tenth of that, and a container's start
waits for them. Each request asks for an acknowledgement (netlink._send reads them)."""

import ipaddress
import socket

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_CHANGE = NLM_F_REQUEST | NLM_F_ACK
IFF_UP = 1
BRIDGE_MODE_HAIRPIN = 1  # IFLA_BRPORT_MODE
MAIN_TABLE, PROTO_STATIC, RTN_UNICAST = 254, 4, 1


def _encoded(msg: ifinfmsg | ifaddrmsg | rtmsg, kind: int, flags: int) -> bytes:
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)


def veth_into(host_ifname: str, bridge_index: int, mtu: int, ifname: str, mac: str, netns_fd: int) -> bytes:
    """A veth pair whose host side is up on the bridge and whose peer is born in the namespace of
    `netns_fd` under its final name and MAC: no rename, no move."""
    peer = {
        "attrs": [
            ("IFLA_IFNAME", ifname),
            ("IFLA_ADDRESS", mac),
            ("IFLA_MTU", mtu),
            ("IFLA_NET_NS_FD", netns_fd),
        ]
    }
    info = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}
    msg = ifinfmsg()
    msg["flags"] = msg["change"] = IFF_UP
    msg["attrs"] = [
        ("IFLA_IFNAME", host_ifname),
        ("IFLA_MTU", mtu),
        ("IFLA_MASTER", bridge_index),
        ("IFLA_LINKINFO", info),
    ]
    return _encoded(msg, RTM_NEWLINK, _CREATE)


def hairpin(host_ifname: str) -> bytes:
    """Hairpin mode on a bridge port: a container reaching its own published port goes out and back."""
    data = {"attrs": [("IFLA_BRPORT_MODE", BRIDGE_MODE_HAIRPIN)]}
    info = {"attrs": [("IFLA_INFO_SLAVE_KIND", "bridge"), ("IFLA_INFO_SLAVE_DATA", data)]}
    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_IFNAME", host_ifname), ("IFLA_LINKINFO", info)]
    return _encoded(msg, RTM_NEWLINK, _CHANGE)


def link_up(index: int) -> bytes:
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = msg["change"] = IFF_UP
    return _encoded(msg, RTM_NEWLINK, _CHANGE)


def address(index: int, cidr: str) -> bytes:
    iface = ipaddress.ip_interface(cidr)
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    attrs = [("IFA_LOCAL", str(iface.ip)), ("IFA_ADDRESS", str(iface.ip))]
    if iface.version == 4:
        attrs.append(("IFA_BROADCAST", str(iface.network.broadcast_address)))
    else:
        msg["flags"] = IFA_F_NODAD  # like Docker: usable at once, no second of duplicate detection
    msg["attrs"] = attrs
    return _encoded(msg, RTM_NEWADDR, _CREATE)


def default_route(gateway: str, oif: int) -> bytes:
    version = ipaddress.ip_address(gateway).version
    msg = rtmsg()
    msg["family"] = socket.AF_INET if version == 4 else socket.AF_INET6
    msg["table"], msg["proto"], msg["type"] = MAIN_TABLE, PROTO_STATIC, RTN_UNICAST
    msg["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", oif)]
    return _encoded(msg, RTM_NEWROUTE, _CREATE)
