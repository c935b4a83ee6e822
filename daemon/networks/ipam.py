"""Address management of networks: the subnets they get, and the addresses their endpoints get.

Follows the default IPAM driver of Docker's libnetwork (ipams/defaultipam, ipamutils) and the checks
of moby's daemon/network.go, with their words. State lives in memory only: at start the daemon
re-derives it from the network and container records (AddressPool.allocate(wanted=...)).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)
from typing import Any

from daemon.errors import Forbidden, InvalidParameter, SystemError_, Unavailable

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
IPInterface = IPv4Interface | IPv6Interface

# moby's ipamutils.localScopeDefaultNetworks: (base, size of the subnets cut from it). The 172.x
# entries together give the 15 /16s 172.17 to 172.31; 192.168.0.0/16 gives 16 /20s.
DEFAULT_POOLS: list[tuple[str, int]] = [
    ("172.17.0.0/16", 16),
    ("172.18.0.0/16", 16),
    ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16),
    ("172.24.0.0/14", 16),
    ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
]

NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
ADDRESS_IN_USE = "Address already in use"
NO_AVAILABLE_IPS = "no available addresses on this pool"

_BITS = re.compile(r"0|[1-9][0-9]{0,2}")


def parse_prefix(text: str) -> IPInterface:
    """Go's netip.ParsePrefix: "addr/bits", host bits kept (the caller decides what they mean).

    ValueError with Go's reason. Python's parsers are laxer (no "/" means a host, "/024" and zones
    pass), hence the checks before them.
    """
    addr_text, slash, bits_text = text.partition("/")
    if not slash:
        raise ValueError(f"netip.ParsePrefix(\"{text}\"): no '/'")
    if "%" in addr_text:
        raise ValueError(f'netip.ParsePrefix("{text}"): IPv6 zones cannot be present in a prefix')
    try:
        addr = ip_address(addr_text)
    except ValueError:
        why = f'ParseAddr("{addr_text}"): unable to parse IP'
        raise ValueError(f'netip.ParsePrefix("{text}"): {why}') from None
    if not _BITS.fullmatch(bits_text) or int(bits_text) > addr.max_prefixlen:
        raise ValueError(f'netip.ParsePrefix("{text}"): bad bits after slash: "{bits_text}"')
    if isinstance(addr, IPv4Address):
        return IPv4Interface((addr, int(bits_text)))
    return IPv6Interface((addr, int(bits_text)))


def _go_prefix(text: str) -> str:
    """How Go prints a netip.Prefix parsed from text (for the messages), "invalid Prefix" if none."""
    try:
        return str(parse_prefix(text))
    except ValueError:
        return "invalid Prefix"


def parse_address_pools(specs: list[str]) -> list[tuple[str, int]]:
    """`--default-address-pool base=10.10.0.0/16,size=24` (repeatable) -> [("10.10.0.0/16", 24)].

    moby's opts.PoolsOpt.Set for each spec, then the checks of defaultipam.NewAllocator.
    """
    pools: list[tuple[str, int]] = []
    for index, spec in enumerate(specs):
        fields = next(csv.reader([spec]), [])
        base, size = "", 0
        for item in fields:
            key, eq, value = item.lower().partition("=")  # moby lowercases the whole field
            if not eq:
                raise InvalidParameter(f"invalid field '{item}' must be a key=value pair")
            if key == "base":
                try:
                    parse_prefix(value)
                except ValueError as e:
                    raise InvalidParameter(f'invalid base prefix "{value}": {e}') from None
                base = value
            elif key == "size":
                if not re.fullmatch(r"[+-]?[0-9]+", value):
                    raise InvalidParameter(
                        f'invalid size value: "{spec}" (must be integer): '
                        f'strconv.Atoi: parsing "{value}": invalid syntax'
                    )
                size = int(value)
            else:
                raise InvalidParameter(f"unexpected key '{key}' in '{item}'")
        shown = f"&{{{_go_prefix(base)} {size}}}"
        if not base or size <= 0 or size > parse_prefix(base).max_prefixlen:
            raise InvalidParameter(f"network at index {index} ({shown}) is not in canonical form")
        net = parse_prefix(base).network
        if net.prefixlen > size:
            raise InvalidParameter(
                f"network at index {index} ({shown}) has a smaller prefix (/{net.prefixlen}) "
                f"than the target size of that pool (/{size})"
            )
        pools.append((str(net), size))
    return pools


class SubnetChooser:
    """Picks the subnet of a network created without one (defaultipam's allocatePredefinedPool)."""

    def __init__(self, pools: list[tuple[str, int]]) -> None:
        # As moby: sorted by address, and a pool inside an earlier one dropped (it would be offered
        # again after its parent was found full).
        nets = sorted(
            ((parse_prefix(base).network, size) for base, size in pools),
            key=lambda p: (p[0].version, p[0].network_address, p[0].prefixlen),
        )
        self.pools: list[tuple[IPNetwork, int]] = []
        for net, size in nets:
            if not any(kept.overlaps(net) for kept, _ in self.pools if kept.version == net.version):
                self.pools.append((net, size))

    def choose(
        self, in_use: Iterable[IPNetwork], host_routes: Iterable[IPNetwork], version: int = 4
    ) -> IPNetwork:
        """The first subnet of the pools overlapping neither a network's subnet nor a host route.

        host_routes: what moby's InferReservedNetworks gives, the host's on-link routes and the
        nameservers of its resolv.conf; a default route (prefix length 0) is ignored.
        """
        blockers = [n for n in in_use if n.version == version]
        blockers += [r for r in host_routes if r.version == version and r.prefixlen > 0]
        spans = sorted((int(b.network_address), int(b.broadcast_address)) for b in blockers)
        for base, size in self.pools:
            if base.version == version:
                found = _first_free(base, size, spans)
                if found is not None:
                    return found
        raise InvalidParameter(NO_MORE_SUBNETS)


def _first_free(base: IPNetwork, size: int, spans: list[tuple[int, int]]) -> IPNetwork | None:
    step = 1 << (base.max_prefixlen - size)
    first, last = int(base.network_address), int(base.broadcast_address)
    cand = first
    while cand + step - 1 <= last:
        cand_last = cand + step - 1
        hit = max((end for start, end in spans if start <= cand_last and end >= cand), default=None)
        if hit is None:
            if base.version == 4:
                return IPv4Network((cand, size))
            return IPv6Network((cand, size))
        cand = (hit + step) // step * step  # the next aligned candidate past the blocker
    return None


@dataclass
class SubnetConfig:
    """One entry of a network's IPAM.Config, checked and completed (the gateway filled in)."""

    subnet: IPNetwork
    gateway: IPAddress
    ip_range: IPNetwork | None = None
    aux: dict[str, IPAddress] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Docker's IPAMConfig shape, as `docker network inspect` shows it."""
        out: dict[str, Any] = {"Subnet": str(self.subnet)}
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        out["Gateway"] = str(self.gateway)
        if self.aux:
            out["AuxiliaryAddresses"] = {k: str(v) for k, v in self.aux.items()}
        return out


def _reserved(subnet: IPNetwork) -> set[int]:
    """defaultipam's newPoolData: the first address (IPv4 network, IPv6 subnet-router anycast) and
    the IPv4 broadcast, except in an IPv4 /31 or /32."""
    host_bits = subnet.max_prefixlen - subnet.prefixlen
    if subnet.version == 4 and host_bits <= 1:
        return set()
    out = {int(subnet.network_address)}
    if subnet.version == 4:
        out.add(int(subnet.broadcast_address))
    return out


def _family(version: int) -> str:
    return f"IPv{version}"


def _check_address(text: str, subnet: IPInterface) -> str | None:
    """moby's validateAddress: None when fine, else why not (the subnet shown as written)."""
    try:
        addr = ip_address(text)
    except ValueError:
        return "invalid address"
    if addr.version != subnet.version:
        return f"parent subnet is an {_family(subnet.version)} block"
    if addr not in subnet.network:
        return f"parent subnet {subnet} doesn't contain this address"
    return None


def _check_ip_range(text: str, subnet: IPInterface) -> list[str]:
    """moby's validateIPRange."""
    try:
        rng = parse_prefix(text)
    except ValueError:
        return [f"invalid ip-range {text}: invalid CIDR block notation"]
    if rng.version != subnet.version:
        return [f"invalid ip-range {text}: parent subnet is an {_family(subnet.version)} block"]
    errs = []
    if rng.network.prefixlen < subnet.network.prefixlen:
        errs.append(f"invalid ip-range {text}: CIDR block is bigger than its parent subnet {subnet}")
    if rng.ip != rng.network.network_address:
        errs.append(f"invalid ip-range {text}: it should be {rng.network}")
    if not subnet.network.overlaps(rng.network):
        errs.append(f"invalid ip-range {text}: parent subnet {subnet} doesn't contain ip-range")
    return errs


def _str_field(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameter(f"invalid JSON: IPAMConfig.{key} must be a string")
    return value


def _validate(raw: list[dict[str, Any]]) -> None:
    """moby's validateIpamConfig (ValidateIPAM in 27.x): every problem, in one message."""
    errs: list[str] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidParameter("invalid JSON: each IPAM.Config entry must be an object")
        subnet_text = _str_field(entry, "Subnet")
        try:
            subnet = parse_prefix(subnet_text)
        except ValueError:
            errs.append(f"invalid subnet {subnet_text}: invalid CIDR block notation")
            continue
        if subnet.ip != subnet.network.network_address:
            errs.append(f"invalid subnet {subnet}: it should be {subnet.network}")
        if ip_range := _str_field(entry, "IPRange"):
            errs += _check_ip_range(ip_range, subnet)
        if (gateway := _str_field(entry, "Gateway")) and (why := _check_address(gateway, subnet)):
            errs.append(f"invalid gateway {gateway}: {why}")
        aux = entry.get("AuxiliaryAddresses") or {}
        if not isinstance(aux, dict) or not all(isinstance(v, str) for v in aux.values()):
            raise InvalidParameter("invalid JSON: IPAMConfig.AuxiliaryAddresses must map names to strings")
        for name, text in aux.items():
            if why := _check_address(text, subnet):
                errs.append(f"invalid auxiliary address {name}: {why}")
    if len(errs) == 1:
        raise InvalidParameter(f"invalid network config:\n{errs[0]}")
    if errs:
        raise InvalidParameter("invalid network config:\n* " + "\n* ".join(errs))


def check_ipam_config(raw: list[dict[str, Any]]) -> list[SubnetConfig]:
    """Docker's IPAM.Config list (Subnet, IPRange, Gateway, AuxiliaryAddresses), checked with
    Docker's words and completed: the default gateway is what libnetwork would take, the first free
    address of the ip-range, else of the subnet (so not always the first host address)."""
    _validate(raw)
    out: list[SubnetConfig] = []
    for entry in raw:
        subnet = parse_prefix(entry["Subnet"]).network
        if any(c.subnet.version == subnet.version and c.subnet.overlaps(subnet) for c in out):
            raise Forbidden(POOL_OVERLAP)
        ip_range = parse_prefix(entry["IPRange"]).network if entry.get("IPRange") else None
        taken = _reserved(subnet)
        gateway_text = entry.get("Gateway") or ""
        if gateway_text:
            gateway = ip_address(gateway_text)
            if int(gateway) in taken:
                raise SystemError_(f"failed to allocate gateway ({gateway_text}): {ADDRESS_IN_USE}")
        else:
            free = _lowest_free(ip_range or subnet, taken)
            if free is None:
                raise SystemError_(f"failed to allocate gateway (): {NO_AVAILABLE_IPS}")
            gateway = free
        taken.add(int(gateway))
        aux: dict[str, IPAddress] = {}
        for name, text in (entry.get("AuxiliaryAddresses") or {}).items():
            addr = ip_address(text)
            if int(addr) in taken:
                why = f"({name}:{text}): {ADDRESS_IN_USE}"
                raise SystemError_(f"failed to allocate secondary ip address {why}")
            taken.add(int(addr))
            aux[name] = addr
        out.append(SubnetConfig(subnet=subnet, gateway=gateway, ip_range=ip_range, aux=aux))
    return out


def check_no_overlap(configs: list[SubnetConfig], in_use: Iterable[IPNetwork]) -> None:
    """A new network's subnets against those of the existing networks (Docker's 403).

    Stricter than moby, which skips the check for an entry with an ip-range (moby issue 46756).
    """
    existing = list(in_use)
    for cfg in configs:
        if any(n.version == cfg.subnet.version and n.overlaps(cfg.subnet) for n in existing):
            raise Forbidden(POOL_OVERLAP)


def _lowest_free(span: IPNetwork, taken: set[int]) -> IPAddress | None:
    """The lowest address of span not in taken; at most len(taken)+1 steps, whatever span's size."""
    addr, last = int(span.network_address), int(span.broadcast_address)
    while addr <= last and addr in taken:
        addr += 1
    if addr > last:
        return None
    return IPv4Address(addr) if span.version == 4 else IPv6Address(addr)


class AddressPool:
    """The addresses of one subnet of a network.

    The network/anycast address, the IPv4 broadcast, the gateway and the auxiliary addresses are
    never handed out. Dynamic allocation takes the lowest free address of the ip-range (else of the
    subnet): what libnetwork does for local networks (its serial mode, next after the last one
    handed out, is only used for swarm networks). A wanted address (--ip) may be anywhere in the
    subnet, inside the ip-range or not, as in Docker.
    """

    def __init__(self, cfg: SubnetConfig) -> None:
        self.cfg = cfg
        self._span = cfg.ip_range or cfg.subnet
        self._fixed = _reserved(cfg.subnet) | {int(cfg.gateway)} | {int(a) for a in cfg.aux.values()}
        self._given: set[int] = set()

    def allocate(self, wanted: IPAddress | None = None) -> IPAddress:
        """A free address, or exactly `wanted`; errors in Docker's words."""
        if wanted is not None:
            if wanted.version != self.cfg.subnet.version or wanted not in self.cfg.subnet:
                raise outside_subnets(wanted)
            if int(wanted) in self._fixed or int(wanted) in self._given:
                raise Forbidden(ADDRESS_IN_USE)
            self._given.add(int(wanted))
            return wanted
        free = _lowest_free(self._span, self._fixed | self._given)
        if free is None:
            raise Unavailable(NO_AVAILABLE_IPS)
        self._given.add(int(free))
        return free

    def release(self, addr: IPAddress) -> None:
        """Give an address back; releasing a free (or never handed out) address is harmless."""
        if addr.version == self.cfg.subnet.version:
            self._given.discard(int(addr))

    def in_use(self) -> set[IPAddress]:
        """The addresses handed out by allocate (not the gateway, aux, network or broadcast)."""
        make = IPv4Address if self.cfg.subnet.version == 4 else IPv6Address
        return {make(a) for a in self._given}


def outside_subnets(address: object) -> InvalidParameter:
    """A static address (--ip) no subnet of the network holds, in Docker's words."""
    return InvalidParameter(f"no configured subnet or ip-range contain the IP address {address}")


def mac_for(ip: IPv4Address) -> str:
    """Docker's MAC for a bridge endpoint (netutils.GenerateMACFromIP): 02:42 then the IPv4 bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)
