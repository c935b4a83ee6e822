"""Who answers to which name on which network: the records behind the embedded DNS server.

Docker (libnetwork Sandbox.ResolveName / Network.ResolveIP) answers, on each network a container is on,
the "DNSNames" of the endpoints there: container name, network aliases, 12-char short ID, hostname.
Names are case-insensitive; `name.network` also works; the first of the container's networks that
knows a name answers. A PTR answer is `<first DNS name>.<network name>`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.rdatatype

from daemon.errors import InvalidParameter


@dataclass(frozen=True)
class _Endpoint:
    names: tuple[str, ...]  # lower case, no trailing dot
    ptr_name: str  # the first name as given: the container name, the PTR target
    ipv4: str | None
    ipv6: str | None


def _canonical(name: str) -> str:
    return name.rstrip(".").lower()


def _address(value: str | None, version: int) -> str | None:
    if value is None or value == "":
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidParameter(f"invalid IP address: {value}") from None
    if addr.version != version:
        raise InvalidParameter(f"invalid IPv{version} address: {value}")
    return addr.compressed


class NameTable:
    """Who answers to which name on which network: in memory, rebuilt by the daemon from its records."""

    def __init__(self) -> None:
        # network id -> endpoint id -> endpoint; dicts keep insertion order, the order answers come in
        self._endpoints: dict[str, dict[str, _Endpoint]] = {}
        # network id -> name -> endpoint ids that answer to it (an alias may be shared)
        self._names: dict[str, dict[str, list[str]]] = {}
        self._network_names: dict[str, str] = {}

    def add(
        self,
        network_id: str,
        endpoint_id: str,
        names: list[str],
        ipv4: str | None,
        ipv6: str | None,
        *,
        network_name: str | None = None,
    ) -> None:
        """Record an endpoint (again: its old record is replaced). names[0] is the container name,
        the PTR target; network_name, when given, makes `name.<network>` work and ends PTR targets."""
        entry = _Endpoint(
            names=tuple(dict.fromkeys(_canonical(n) for n in names if _canonical(n))),
            ptr_name=names[0].rstrip(".") if names else "",
            ipv4=_address(ipv4, 4),
            ipv6=_address(ipv6, 6),
        )
        self.remove(network_id, endpoint_id)
        if network_name:
            self._network_names[network_id] = network_name
        self._endpoints.setdefault(network_id, {})[endpoint_id] = entry
        index = self._names.setdefault(network_id, {})
        for name in entry.names:
            index.setdefault(name, []).append(endpoint_id)

    def remove(self, network_id: str, endpoint_id: str) -> None:
        entry = self._endpoints.get(network_id, {}).pop(endpoint_id, None)
        if entry is None:
            return
        index = self._names[network_id]
        for name in entry.names:
            holders = index[name]
            holders.remove(endpoint_id)
            if not holders:
                del index[name]
        if not self._endpoints[network_id]:
            # The last endpoint gone: forget the network (its name included).
            del self._endpoints[network_id], self._names[network_id]
            self._network_names.pop(network_id, None)

    def lookup(self, network_ids: list[str], name: str, rdtype: int) -> list[str] | None:
        """Addresses for the name on the first of these networks that knows it; None if none knows it.

        A known name without an address of the asked family gives [] (Docker's NOERROR, no answer)."""
        wanted = _canonical(name)
        if not wanted:
            return None
        # Docker tries "a.b.c" on every network, then "a.b" on network "c", then "a" on network "b.c".
        candidates: list[tuple[str, str | None]] = [(wanted, None)]
        head = wanted
        while "." in head:
            head, _, _ = head.rpartition(".")
            candidates.append((head, wanted[len(head) + 1 :]))
        for short, network in candidates:
            for network_id in network_ids:
                if network is not None and self._network_names.get(network_id, "").lower() != network:
                    continue
                holders = self._names.get(network_id, {}).get(short)
                if holders:
                    return self._addresses(network_id, holders, rdtype)
        return None

    def _addresses(self, network_id: str, endpoint_ids: list[str], rdtype: int) -> list[str]:
        found: list[str] = []
        for endpoint_id in endpoint_ids:
            entry = self._endpoints[network_id][endpoint_id]
            addr = entry.ipv6 if rdtype == dns.rdatatype.AAAA else entry.ipv4
            if addr is not None and addr not in found:
                found.append(addr)
        return found

    def reverse(self, network_ids: list[str], address: str) -> str | None:
        """PTR target name (without the trailing dot) for an address on the first network that has it."""
        try:
            wanted = ipaddress.ip_address(address).compressed
        except ValueError:
            return None
        for network_id in network_ids:
            for entry in self._endpoints.get(network_id, {}).values():
                if wanted in (entry.ipv4, entry.ipv6) and entry.ptr_name:
                    network = self._network_names.get(network_id)
                    return f"{entry.ptr_name}.{network}" if network else entry.ptr_name
        return None
