"""A container's /etc/hosts and /etc/resolv.conf, as Docker writes them.

Both are bind-mounted into the running container, so a change is written in place (truncate and write):
a rename would leave the container looking at the old file."""

import contextlib
from collections.abc import Callable
from pathlib import Path

from daemon.containers.networking import joined_container, network_mode
from daemon.containers.store import Container
from daemon.errors import DaemonError
from daemon.networks.dnsconf import resolv_conf_for_container
from daemon.networks.endpoint_config import HOST_GATEWAY, parse_extra_hosts, parse_links
from daemon.networks.settings import Settings

Lookup = Callable[[str], Container]

LOCALHOST = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)


def read_host_file(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text()
    return ""


def hosts_content(
    hostname: str,
    domainname: str,
    addresses: list[str],
    extra: list[tuple[str, str]],
    links: list[tuple[str, str, str]],
    base: str = LOCALHOST,
) -> str:
    """`base` (the localhost lines, or the host's own file with the host's network), then the
    --add-host entries, the legacy links (ip, alias, name) and the container's own addresses."""
    lines = [base if base.endswith("\n") or not base else base + "\n"]
    lines += [f"{ip}\t{name}\n" for name, ip in extra]
    for ip, alias, name in links:
        lines.append(f"{ip}\t{alias} {name}\n" if alias != name else f"{ip}\t{name}\n")
    own = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    lines += [f"{ip}\t{own}\n" for ip in addresses if hostname]
    return "".join(lines)


def write_in_place(path: Path, content: str) -> None:
    """Truncate and write the same inode: the running container has it bind-mounted."""
    with open(path, "r+" if path.exists() else "w") as f:
        f.seek(0)
        f.write(content)
        f.truncate()


def write_container_files(c: Container, settings: Settings, embedded_dns: bool, lookup: Lookup) -> None:
    """The container's /etc/hosts and /etc/resolv.conf as its network mode and options want them."""
    mode = network_mode(c)
    if joined_container(c) is not None:
        return  # it sees the other container's files (the container service binds them)
    hc, cfg = c.host_config, c.config
    extra = [
        (name, settings.host_gateway() if ip == HOST_GATEWAY else ip)
        for name, ip in parse_extra_hosts(hc.get("ExtraHosts"))
    ]
    host_net = mode == "host"
    networks = c.data["NetworkSettings"]["Networks"].values()
    addresses = (
        []
        if host_net
        else [ep[k] for ep in networks for k in ("IPAddress", "GlobalIPv6Address") if ep.get(k)]
    )
    hosts = hosts_content(
        cfg.get("Hostname") or "",
        cfg.get("Domainname") or "",
        addresses,
        extra,
        _link_entries(c, lookup),
        read_host_file("/etc/hosts") if host_net else LOCALHOST,
    )
    write_in_place(c.dir / "hosts", hosts)
    resolv = resolv_conf_for_container(
        read_host_file(settings.host_resolv),
        [str(s) for s in (hc.get("Dns") or settings.dns)],
        [str(s) for s in hc.get("DnsSearch") or []],
        [str(s) for s in hc.get("DnsOptions") or []],
        embedded_dns and not host_net,
    )
    write_in_place(c.dir / "resolv.conf", resolv)


def _link_entries(c: Container, lookup: Lookup) -> list[tuple[str, str, str]]:
    """Legacy links: (address, alias, name) of each linked container that has an address."""
    entries = []
    for target, alias in parse_links(c.host_config.get("Links")):
        try:
            other = lookup(target)
        except DaemonError:  # gone since: Docker writes what it finds
            continue
        for ep in other.data["NetworkSettings"]["Networks"].values():
            if ep.get("IPAddress"):
                entries.append((ep["IPAddress"], alias, other.name))
                break
    return entries
