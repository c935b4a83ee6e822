"""A container's /etc/resolv.conf and the servers the embedded DNS forwards to (moby libnetwork/resolvconf).

With the embedded server (user-defined networks) the file names only 127.0.0.11 and the real servers
become the server's upstreams; without it (the default bridge) the file lists the real servers, minus
the host's loopback ones, which mean nothing in the container's namespace.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from daemon.errors import InvalidParameter

log = logging.getLogger(__name__)

EMBEDDED_NAMESERVER = "127.0.0.11"
# Docker's fallbacks when no usable nameserver is left (file content only: nothing here sends to them).
DEFAULT_IPV4_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
DEFAULT_IPV6_NAMESERVERS = ("2001:4860:4860::8888", "2001:4860:4860::8844")


@dataclass(frozen=True)
class Upstream:
    """A server the embedded DNS forwards to (an IP literal)."""

    host: str
    port: int = 53


@dataclass
class _ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # directives Docker copies untouched (sortlist...)


def _parse(content: str) -> _ResolvConf:
    rc = _ResolvConf()
    for line in content.splitlines():
        fields = line.split()
        if not fields or fields[0][0] in "#;":
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver":
            if values:
                try:
                    rc.nameservers.append(str(ipaddress.ip_address(values[0])))
                except ValueError:
                    log.debug("resolv.conf: invalid nameserver %r skipped", values[0])
        elif key in ("search", "domain"):  # 'domain' is the old name of 'search'; the last one wins
            if values:
                rc.search = values
        elif key == "options":
            rc.options.extend(values)
        else:
            rc.other.append(line)
    return rc


def host_upstreams(resolv_conf: str = "/etc/resolv.conf") -> list[Upstream]:
    """The host's nameservers, in order; none if the file is missing or lists none (then the
    embedded server answers SERVFAIL to what it cannot answer itself)."""
    try:
        with open(resolv_conf) as f:
            content = f.read()
    except OSError:
        return []
    return [Upstream(ns) for ns in _parse(content).nameservers]


def _is_loopback(addr: str) -> bool:
    return ipaddress.ip_address(addr).is_loopback


def _valid_ndots(option: str) -> bool:
    name, _, value = option.partition(":")
    return name != "ndots" or (value.isdigit() and int(value) >= 0)


def resolv_conf_for_container(
    host_resolv: str,
    dns: list[str],
    search: list[str],
    options: list[str],
    embedded: bool,
    *,
    ipv6: bool = False,
) -> str:
    """Docker's /etc/resolv.conf for a container, from the host's file content and --dns,
    --dns-search, --dns-option (each replaces the host's values when given).

    embedded (user-defined network): 'nameserver 127.0.0.11' and the search/options, plus 'ndots:0'
    unless a valid ndots is set. Otherwise (default bridge): the nameservers, the host's loopback
    ones dropped (and IPv6 ones unless ipv6), Google's if none remain; --dns is taken as given.
    """
    rc = _parse(host_resolv)
    if dns:
        for ns in dns:
            try:
                ipaddress.ip_address(ns)
            except ValueError:
                raise InvalidParameter(f"bad nameserver address {ns}") from None
        rc.nameservers = list(dns)
    if search:
        rc.search = [s for s in search if s != "."]  # '--dns-search .' means no search domains
    if options:
        rc.options = list(options)

    if embedded:
        rc.nameservers = [EMBEDDED_NAMESERVER]
        rc.options = [o for o in rc.options if _valid_ndots(o)]
        if not any(o.partition(":")[0] == "ndots" for o in rc.options):
            rc.options.append("ndots:0")
    elif not dns:
        kept = [
            ns
            for ns in rc.nameservers
            if not _is_loopback(ns) and (ipv6 or ipaddress.ip_address(ns).version == 4)
        ]
        if not kept:
            kept = list(DEFAULT_IPV4_NAMESERVERS) + (list(DEFAULT_IPV6_NAMESERVERS) if ipv6 else [])
        rc.nameservers = kept

    lines = [f"nameserver {ns}" for ns in rc.nameservers]
    if rc.search:
        lines.append("search " + " ".join(rc.search))
    if rc.options:
        lines.append("options " + " ".join(rc.options))
    lines.extend(rc.other)
    return "\n".join(lines) + "\n"
