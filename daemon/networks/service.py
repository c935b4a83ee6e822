"""The network service: Docker's /networks API, and what containers ask of networks at create, start,
connect, disconnect and exit (the container service calls it through its `Networking` Protocol).

Crash ordering: a network's record is written before its bridge exists and removed after it is gone; at
start the kernel is made to match the records (bridges, then the firewall once containers are restored)."""

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol

from daemon.containers.networking import joined_container
from daemon.containers.store import Container
from daemon.errors import (
    DaemonError,
    Forbidden,
    InvalidParameter,
    NotFound,
    NotImplementedYet,
    SystemError_,
    error_words,
)
from daemon.events.bus import EventBus
from daemon.networks import views
from daemon.networks.creation import default_networks, network_record
from daemon.networks.endpoint_config import (
    check_container_mode,
    check_dns,
    endpoint_from_request,
    parse_extra_hosts,
)
from daemon.networks.endpoints import Plumbing, on_bridges
from daemon.networks.firewall import NO_IPTABLES, Firewall
from daemon.networks.ipam import SubnetChooser
from daemon.networks.netlink import NetLink
from daemon.networks.pools import NetworkPools
from daemon.networks.ports import parse_exposed_ports, parse_port_bindings
from daemon.networks.settings import Settings
from daemon.networks.store import Network, NetworkStore

log = logging.getLogger(__name__)


class ContainerDirectory(Protocol):
    """What the network service needs of the containers: find them, list them, save a changed one."""

    def get(self, ref: str) -> Container: ...

    def all(self) -> list[Container]: ...

    def save(self, c: Container) -> None: ...


class NetworkService:
    def __init__(
        self,
        data_root: Path,
        events: EventBus,
        netlink: NetLink,
        firewall: Firewall,
        chooser: SubnetChooser,
        settings: Settings,
        bridge: str = "pyd0",
        bip: str = "",
    ) -> None:
        self.store = NetworkStore(data_root / "network")
        self.events = events
        self.netlink, self.firewall, self.chooser = netlink, firewall, chooser
        self.pools = NetworkPools()
        self.bridge_name, self.bip = bridge, bip
        settings.host_gateway = self._host_gateway
        self.settings = settings
        self._containers: ContainerDirectory | None = None
        self.plumbing = Plumbing(self.store, self.pools, netlink, firewall, settings, self._lookup)
        self._lock = asyncio.Lock()  # one network create or remove at a time: subnets are chosen in it
        self._no_firewall = False  # asked for, but the host has no iptables

    def set_containers(self, containers: ContainerDirectory) -> None:
        self._containers = containers

    @property
    def containers(self) -> ContainerDirectory:
        assert self._containers is not None, "set_containers first"
        return self._containers

    def _lookup(self, ref: str) -> Container:
        return self.containers.get(ref)

    def _host_gateway(self) -> str:
        n = self.store.find("bridge")
        cfg = self.pools.subnet_of(n.id, 4) if n is not None else None
        return str(cfg.gateway) if cfg else ""

    # --- daemon start and stop ------------------------------------------------------------------

    async def load(self) -> None:
        """Records, predefined networks and bridges; before the containers are restored."""
        if self.settings.iptables and not self.firewall.available():
            log.warning("no iptables on this host: no masquerading, isolation or published ports")
            self.settings.iptables = False
            self._no_firewall = True
        self.store.load()
        routes = await asyncio.to_thread(self.netlink.host_routes)
        for record in default_networks(
            self.store, self.chooser, routes, self.bridge_name, self.bip, self.settings.default_mtu
        ):
            self.store.save(Network(record))
        for n in self.store:
            if n.is_bridge and n.is_default_bridge and self.bridge_name == "none":
                self.store.delete(n)  # as dockerd with --bridge none: no default bridge network at all
                continue
            try:
                self.pools.add(n)
                if n.is_bridge:
                    await self._ensure_bridge(n)
            except Exception:
                log.exception("network %s could not be set up", n.name)

    async def restore(self) -> None:
        """After the containers: take back what the running ones hold, then the firewall."""
        await self.plumbing.restore(self.containers.all())

    async def close(self) -> None:
        await self.plumbing.close()

    async def _ensure_bridge(self, n: Network) -> None:
        addresses = tuple(f"{cfg.gateway}/{cfg.subnet.prefixlen}" for cfg in self.pools.configs(n.id))
        await asyncio.to_thread(
            self.netlink.ensure_bridge, n.bridge, addresses, n.mtu or self.settings.default_mtu
        )

    def warnings(self) -> list[str]:
        """What `docker info` warns about."""
        if self._no_firewall:
            return [NO_IPTABLES]
        return self.firewall.warnings() if self.settings.iptables else []

    # --- the /networks API ----------------------------------------------------------------------

    async def list_networks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        views.check_filters(filters)
        endpoints = self._endpoints()
        return [
            views.network_view(n, {})  # Docker lists no containers (since API 1.28): inspect does
            for n in self.store
            if views.matches(n, filters, bool(endpoints.get(n.id)))
        ]

    async def inspect_network(self, ref: str, verbose: bool, scope: str) -> dict[str, Any]:
        if verbose:
            raise NotImplementedYet("verbose network inspect (swarm services) is not implemented")
        n = self.store.get(ref)
        if scope and scope != "local":
            raise NotFound(f"network {ref} not found")
        return views.network_view(n, self._endpoints().get(n.id, {}))

    def _endpoints(self) -> dict[str, dict[str, dict[str, Any]]]:
        """network id -> container id -> Docker's entry in the network's `Containers`."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for c in self.containers.all():
            if not c.running:
                continue
            for ep in c.data["NetworkSettings"]["Networks"].values():
                if ep.get("EndpointID"):
                    out.setdefault(ep["NetworkID"], {})[c.id] = views.container_entry(c, ep)
        return out

    async def create_network(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            routes = await asyncio.to_thread(self.netlink.host_routes)
            record = network_record(body, self.store, self.chooser, routes)
            n = Network(record)
            self.store.save(n)  # first: a crash from here on leaves a record the next start completes
            try:
                self.pools.add(n)
                await self._ensure_bridge(n)
                await self.plumbing.apply_firewall()
            except Exception as e:
                try:
                    await self._forget(n)
                except Exception:  # the record stays: `docker network rm` or the next start finish it
                    log.exception("undoing the network %s failed", n.name)
                raise SystemError_(f"failed to create network {n.name}: {error_words(e)}") from e
        self.events.publish("network", "create", n.id, {"name": n.name, "type": n.driver})
        return {"Id": n.id, "Warning": ""}

    async def remove_network(self, ref: str) -> None:
        async with self._lock:
            n = self.store.get(ref)
            if not n.user_defined:
                raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
            users = self._endpoints().get(n.id, {})
            if users or self.plumbing.holds(n.id):  # running, or being started or connected
                words = f"error while removing network: network {n.name} has active endpoints"
                if users:
                    cid, entry = next(iter(users.items()))
                    words += f' (name:"{entry["Name"]}" id:"{cid[:12]}")'
                raise Forbidden(words)
            await self._forget(n)
        self.events.publish("network", "destroy", n.id, {"name": n.name, "type": n.driver})

    async def _forget(self, n: Network) -> None:
        """The bridge and its rules go first, the record last (see the module's crash ordering)."""
        await self.plumbing.apply_firewall(without=n.id)
        if n.is_bridge:
            await asyncio.to_thread(self.netlink.delete_bridge, n.bridge)
        self.store.delete(n)
        self.pools.drop(n.id)

    async def prune_networks(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        views.check_prune_filters(filters)
        endpoints = self._endpoints()
        deleted = []
        for n in list(self.store):
            if not n.user_defined or endpoints.get(n.id) or not views.prune_matches(n, filters):
                continue
            try:
                await self.remove_network(n.id)
            except (Forbidden, NotFound):
                continue
            deleted.append(n.name)
        return {"NetworksDeleted": deleted or None}

    async def connect_network(self, ref: str, container: str, endpoint: dict[str, Any] | None) -> None:
        n = self.store.get(ref)
        c = self.containers.get(container)
        async with c.lock:
            mode = str(c.host_config.get("NetworkMode") or "")
            if mode == "none":  # moby's runconfig errors, 400s
                raise InvalidParameter(
                    "container cannot be connected to multiple networks with one of the networks in "
                    "private (none) mode"
                )
            if not on_bridges(c):
                raise InvalidParameter(
                    "container sharing network namespace with another container or host cannot be "
                    "connected to any other network"
                )
            if not n.is_bridge:
                raise InvalidParameter(
                    "container cannot be disconnected from host network or connected to host network"
                )
            networks = c.data["NetworkSettings"]["Networks"]
            if n.name in networks:
                raise Forbidden(f"endpoint with name {c.name} already exists in network {n.name}")
            ep = endpoint_from_request(endpoint, n.id, n.user_defined, n.name)
            self.pools.check_static(n.id, ep.get("IPAMConfig"))
            networks[n.name] = ep
            if c.running:
                try:
                    await self.plumbing.connect(c, n.name)
                except BaseException:
                    networks.pop(n.name, None)
                    raise
            self.containers.save(c)
        self.events.publish("network", "connect", n.id, {"container": c.id, "name": n.name, "type": n.driver})

    async def disconnect_network(self, ref: str, container: str, force: bool) -> None:
        n = self.store.get(ref)
        c = self.containers.get(container)
        async with c.lock:
            networks = c.data["NetworkSettings"]["Networks"]
            if n.name not in networks:
                raise Forbidden(f"container {c.id} is not connected to network {n.name}")
            if c.running:
                await self.plumbing.disconnect(c, n.name)
            networks.pop(n.name)
            self.containers.save(c)
        self.events.publish(
            "network", "disconnect", n.id, {"container": c.id, "name": n.name, "type": n.driver}
        )

    # --- what containers ask (daemon.containers.networking.Networking) --------------------------

    def container_settings(
        self, hc: dict[str, Any], config: dict[str, Any], networking: Any
    ) -> dict[str, Any]:
        """Check a create's networking and return the container's NetworkSettings.Networks; may set
        hc["NetworkMode"] to the network's name as Docker keeps it."""
        asked = mode = str(hc.get("NetworkMode") or "default")
        if mode == "default":
            mode = (
                "bridge" if self.store.find("bridge") is not None and self.bridge_name != "none" else "none"
            )
            hc["NetworkMode"] = mode
        check_dns(hc)
        parse_extra_hosts(hc.get("ExtraHosts"))
        parse_port_bindings(hc.get("PortBindings"))
        parse_exposed_ports(config.get("ExposedPorts"))
        requested = ((networking or {}).get("EndpointsConfig") or {}) if isinstance(networking, dict) else {}
        if not isinstance(requested, dict):
            raise InvalidParameter("invalid NetworkingConfig.EndpointsConfig: expected an object")
        if mode.startswith("container:"):
            check_container_mode(hc, config)
            self.containers.get(mode.partition(":")[2])  # Docker: "No such container: x" at create
            return {}
        if mode in ("host", "none"):
            if requested and set(requested) - {mode, "default"}:
                raise InvalidParameter(
                    "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                )
            n = self.store.get(mode)
            raw = requested.get(mode) or requested.get("default")
            return {mode: endpoint_from_request(raw, n.id, False, n.name)}  # aliases, --ip: refused
        primary = self.store.get(mode)
        hc["NetworkMode"] = mode
        # the docker CLI names the network of NetworkMode "default" in EndpointsConfig when it gave none
        others = [k for k in requested if k not in (asked, "default") and self.store.get(k).id != primary.id]
        order = [primary.name, *others]
        settings: dict[str, Any] = {}
        for name in order:
            n = self.store.get(name)
            if not n.is_bridge:
                raise InvalidParameter(
                    "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                )
            raw = (
                requested.get(name)
                or requested.get(n.id)
                or ((requested.get(asked) or requested.get("default")) if n is primary else None)
            )
            if n is primary and not raw and config.get("MacAddress"):
                raw = {"MacAddress": config["MacAddress"]}  # before API 1.44 the MAC came in Config
            ep = endpoint_from_request(raw, n.id, n.user_defined, n.name)
            self.pools.check_static(n.id, ep.get("IPAMConfig"))
            settings[n.name] = ep
        return settings

    async def attach(self, c: Container, pid: int) -> None:
        await self.plumbing.attach(c, pid)
        for name, ep in c.data["NetworkSettings"]["Networks"].items():
            if ep.get("EndpointID"):
                self.events.publish(
                    "network", "connect", ep["NetworkID"], {"container": c.id, "name": name, "type": "bridge"}
                )

    async def detach(self, c: Container) -> None:
        joined = [
            (name, ep["NetworkID"])
            for name, ep in c.data["NetworkSettings"]["Networks"].items()
            if ep.get("EndpointID")
        ]
        await self.plumbing.detach(c, remove_veths=self._shares_namespace(c))
        for name, network_id in joined:
            self.events.publish(
                "network", "disconnect", network_id, {"container": c.id, "name": name, "type": "bridge"}
            )

    def _shares_namespace(self, c: Container) -> bool:
        """Whether a running `--network container:<c>` container keeps c's namespace (and veths) alive."""
        for other in self.containers.all():
            joined = joined_container(other)
            if other.running and joined is not None:
                try:  # the name it gave may be any unique prefix of the ID
                    if self.containers.get(joined).id == c.id:
                        return True
                except DaemonError:  # the one it named is gone
                    continue
        return False

    def write_etc_files(self, c: Container) -> None:
        self.plumbing.write_etc_files(c)

    def renamed(self, c: Container) -> None:
        self.plumbing.names.renamed(c)
