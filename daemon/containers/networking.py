"""What the container service needs of networks (daemon.networks.service.NetworkService implements it):
the create-time checks, the plumbing between the runtime's create and start, and the cleanup at exit."""

from typing import Any, Protocol

from daemon.containers.store import Container


class Networking(Protocol):
    def container_settings(
        self, hc: dict[str, Any], config: dict[str, Any], networking: Any
    ) -> dict[str, Any]:
        """Check a create body's networking (the record's HostConfig, the body's own config fields, its
        NetworkingConfig) with Docker's words and return the new container's NetworkSettings.Networks;
        may normalise hc["NetworkMode"]."""

    async def attach(self, c: Container, pid: int) -> None:
        """Plumb the created container (its first process waits before execve) into its networks:
        addresses, routes, names, published ports, /etc/hosts and /etc/resolv.conf. All or nothing."""

    async def detach(self, c: Container) -> None:
        """Release all that attach took; for a container that exited or failed to start."""

    def write_etc_files(self, c: Container) -> None:
        """/etc/hosts and /etc/resolv.conf of the container, in place."""

    def renamed(self, c: Container) -> None:
        """The container's name changed: its DNS names follow."""


def network_mode(c: Container) -> str:
    """HostConfig.NetworkMode as the record keeps it: "bridge", a network's name, "host", "none" or
    "container:<name or ID>"."""
    return str(c.host_config.get("NetworkMode") or "bridge")


def joined_container(c: Container) -> str | None:
    """The name or ID a `--network container:<x>` container gave for x; None in any other mode."""
    mode = network_mode(c)
    return mode.partition(":")[2] if mode.startswith("container:") else None


# the MAC the user asked for, kept in the record across restarts while MacAddress shows the one in use
# (moby keeps its DesiredMacAddress the same way); the API never shows it
DESIRED_MAC = "DesiredMacAddress"


def public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings as the API shows them."""
    networks = {
        name: {k: v for k, v in ep.items() if k != DESIRED_MAC} for name, ep in settings["Networks"].items()
    }
    return {**settings, "Networks": networks}


def ps_ports(ports: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The `Ports` of a container list entry, from NetworkSettings.Ports."""
    out: list[dict[str, Any]] = []
    for key, bindings in (ports or {}).items():
        port, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in bindings:
            entry = {"IP": b["HostIp"], "PrivatePort": int(port), "PublicPort": int(b["HostPort"])}
            out.append({**entry, "Type": proto or "tcp"})
    return sorted(out, key=lambda e: (e["PrivatePort"], e["Type"], e.get("IP", ""), e.get("PublicPort", 0)))
