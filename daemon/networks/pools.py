"""The address pools of every bridge network, in memory: built from the network records, filled with the
addresses of the running containers at start (nothing about addresses is stored apart from them)."""

import ipaddress
from typing import Any

from daemon.networks.ipam import AddressPool, SubnetConfig, check_ipam_config, outside_subnets
from daemon.networks.store import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkPools:
    def __init__(self) -> None:
        self._pools: dict[str, list[AddressPool]] = {}  # network id -> a pool per subnet

    def add(self, n: Network) -> None:
        self._pools[n.id] = [AddressPool(cfg) for cfg in check_ipam_config(n.ipam_config)]

    def drop(self, network_id: str) -> None:
        self._pools.pop(network_id, None)

    def configs(self, network_id: str) -> list[SubnetConfig]:
        return [pool.cfg for pool in self._pools.get(network_id, [])]

    def subnet_of(self, network_id: str, version: int) -> SubnetConfig | None:
        pool = self._pool(network_id, version)
        return pool.cfg if pool else None

    def _pool(self, network_id: str, version: int) -> AddressPool | None:
        return next((p for p in self._pools.get(network_id, []) if p.cfg.subnet.version == version), None)

    def allocate(self, network_id: str, version: int, wanted: str = "") -> Address | None:
        """An address of that family for a container (exactly `wanted` when given); None when the network
        has no subnet of that family and nothing was asked for."""
        pool = self._pool(network_id, version)
        if pool is not None:
            return pool.allocate(ipaddress.ip_address(wanted) if wanted else None)
        if wanted:
            raise outside_subnets(wanted)
        return None

    def release(self, network_id: str, address: str) -> None:
        if not address:
            return
        addr = ipaddress.ip_address(address)
        for pool in self._pools.get(network_id, []):
            if addr in pool.cfg.subnet:
                pool.release(addr)

    def check_static(self, network_id: str, ipam: dict[str, Any] | None) -> None:
        """A create's or connect's static addresses (checked as addresses already) must lie in the
        network's subnets."""
        for key in ("IPv4Address", "IPv6Address"):
            wanted = (ipam or {}).get(key) or ""
            if wanted and not any(
                ipaddress.ip_address(wanted) in cfg.subnet for cfg in self.configs(network_id)
            ):
                raise outside_subnets(wanted)
