"""The Daemon: builds the services from a config, restores state, serves the API until stopped."""

import asyncio
import contextlib
import grp
import logging
import os
import socket
from pathlib import Path

from daemon.api.app import Services, build_app
from daemon.api.connection import ConnectionLimits
from daemon.api.server import ApiServer, default_max_connections, raise_open_file_limit
from daemon.config import DaemonConfig
from daemon.containers.execs import ExecService
from daemon.containers.service import ContainerService
from daemon.errors import InvalidParameter
from daemon.events.bus import EventBus
from daemon.images.service import ImageService
from daemon.networks.firewall import IptablesFirewall
from daemon.networks.ipam import DEFAULT_POOLS, SubnetChooser, parse_address_pools
from daemon.networks.netlink import KernelNetLink
from daemon.networks.service import NetworkService
from daemon.networks.settings import Settings
from daemon.runtime.cgroups import detect
from daemon.runtime.client import Runtime
from daemon.system import SystemService

log = logging.getLogger("pydockerd")

SD_LISTEN_FDS_START = 3


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        # Only root may pass: layers and container upper dirs hold setuid files and device nodes
        # that other host users must not reach (moby's CVE-2021-41091). chmod: mkdir never tightens.
        for d in (config.data_root, config.exec_root):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
        self.events = EventBus()
        self.cgroups = detect()
        self.runtime = Runtime(config.exec_root, self.cgroups, config.cgroup_parent)
        self.images = ImageService(config.data_root, self.events, config.max_layer_size)
        self.networks = self._network_service()
        self.containers = ContainerService(
            config.data_root, self.runtime, self.images, self.events, self.networks
        )
        self.networks.set_containers(self.containers)
        self.images.set_usage_checker(self.containers.usage)
        self.execs = ExecService(self.containers, self.runtime, self.events)
        self.system = SystemService(
            self.containers,
            self.images,
            self.cgroups,
            self.events,
            config.data_root,
            config.exec_root,
            self.networks.warnings,
        )
        self.services = Services(
            system=self.system,
            containers=self.containers,
            images=self.images,
            execs=self.execs,
            events=self.events,
            networks=self.networks,
        )

    def _network_service(self) -> NetworkService:
        cfg = self.config
        try:
            pools = (
                parse_address_pools(cfg.default_address_pools) if cfg.default_address_pools else DEFAULT_POOLS
            )
        except InvalidParameter as e:
            raise SystemExit(f"pydockerd: invalid --default-address-pool: {e}") from None
        settings = Settings(dns=cfg.dns, iptables=cfg.iptables, ip_masq=cfg.ip_masq, default_mtu=cfg.mtu)
        self.firewall = IptablesFirewall(chain_prefix(cfg.bridge))
        return NetworkService(
            cfg.data_root,
            self.events,
            KernelNetLink(),
            self.firewall,
            SubnetChooser(pools),
            settings,
            bridge=cfg.bridge,
            bip=cfg.bip,
        )

    async def serve(self, stop: asyncio.Event) -> None:
        await self.networks.load()  # bridges first: containers restored below may be on them
        if self.config.ip_forward and self.networks.settings.iptables:  # forwarding on, behind policy DROP
            await asyncio.to_thread(self.firewall.ensure_forwarding)
        await self.containers.restore()
        await self.networks.restore()
        await self.runtime.ensure_ready()
        server = ApiServer(build_app(self.services), self._listeners(), self._limits())
        await server.start()
        log.info("pydockerd serving on %s", ", ".join(self.config.hosts))
        try:
            await stop.wait()
        finally:
            await server.stop()
            await self.networks.close()
            await self.runtime.close()

    def _limits(self) -> ConnectionLimits:
        cfg = self.config
        open_files = raise_open_file_limit()
        return ConnectionLimits(
            header_timeout=cfg.http_read_header_timeout,
            idle_timeout=cfg.http_idle_timeout,
            max_connections=cfg.max_connections or default_max_connections(open_files),
        )

    def _listeners(self) -> list[socket.socket]:
        socks = []
        for host in self.config.hosts:
            if host.startswith("fd://"):
                socks.extend(systemd_sockets())
            elif host.startswith("unix://"):
                socks.append(self._unix_socket(host[len("unix://") :]))
            else:
                raise SystemExit(f"pydockerd: unsupported host {host!r} (use unix:///path or fd://)")
        if not socks:
            raise SystemExit("pydockerd: no sockets to listen on")
        return socks

    def _unix_socket(self, path: str) -> socket.socket:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        if self.config.group:
            gid = (
                int(self.config.group)
                if self.config.group.isdigit()
                else grp.getgrnam(self.config.group).gr_gid
            )
            os.chown(path, 0, gid)
            os.chmod(path, 0o660)
        else:
            os.chmod(path, 0o660)
        sock.listen(1024)
        sock.setblocking(False)
        return sock


def chain_prefix(bridge: str) -> str:
    """Our iptables chains are named after the default bridge, so that two daemons on one host (tests,
    side-by-side installs) never rewrite each other's rules. A chain name has at most 28 characters."""
    return "PYD-" if bridge in ("pyd0", "none") else f"PYD-{bridge[:12]}-"


def systemd_sockets() -> list[socket.socket]:
    """Sockets passed by systemd socket activation (LISTEN_PID/LISTEN_FDS)."""
    if os.environ.get("LISTEN_PID") not in (None, str(os.getpid())):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        socks.append(sock)
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    return socks
