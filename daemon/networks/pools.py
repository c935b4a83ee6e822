"""The address pools of every bridge network, in memory: built from the network records, filled with the
addresses of the running containers at start (nothing about addresses is stored apart from them)."""

import ipaddress
from typing import Any

from daemon.errors import InvalidParameter
from daemon.networks.ipam import AddressPool, SubnetConfig, check_ipam_config
from daemon.networks.store import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkPools:
    def __init__(self) -> None:
        self._pools: dict[str, list[AddressPool]] = {}
        self._configs: dict[str, list[SubnetConfig]] = {}

    def add(self, n: Network) -> None:
        configs = check_ipam_config(n.ipam_config)
        self._configs[n.id] = configs
        self._pools[n.id] = [AddressPool(cfg) for cfg in configs]

    def drop(self, network_id: str) -> None:
        self._pools.pop(network_id, None)
        self._configs.pop(network_id, None)

    def configs(self, network_id: str) -> list[SubnetConfig]:
        return self._configs.get(network_id, [])

    def subnet_of(self, network_id: str, version: int) -> SubnetConfig | None:
        for cfg in self._configs.get(network_id, []):
            if cfg.subnet.version == version:
                return cfg
        return None

    def allocate(self, network_id: str, version: int, wanted: str = "") -> Address | None:
        """An address of that family for a container (exactly `wanted` when given); None when the network
        has no subnet of that family and nothing was asked for."""
        for pool, cfg in zip(self._pools.get(network_id, []), self._configs.get(network_id, []), strict=True):
            if cfg.subnet.version != version:
                continue
            return pool.allocate(ipaddress.ip_address(wanted) if wanted else None)
        if wanted:
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {wanted}")
        return None

    def release(self, network_id: str, address: str) -> None:
        if not address:
            return
        addr = ipaddress.ip_address(address)
        for pool, cfg in zip(self._pools.get(network_id, []), self._configs.get(network_id, []), strict=True):
            if addr in cfg.subnet:
                pool.release(addr)

    def check_static(self, network_id: str, ipam: dict[str, Any] | None) -> None:
        """A create's or connect's static addresses must lie in the network's subnets."""
        for key in ("IPv4Address", "IPv6Address"):
            wanted = (ipam or {}).get(key) or ""
            if not wanted:
                continue
            try:
                addr = ipaddress.ip_address(wanted)
            except ValueError:
                raise InvalidParameter(f"invalid IP address: {wanted}") from None
            if not any(addr in cfg.subnet for cfg in self._configs.get(network_id, [])):
                raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {wanted}")
