"""The daemon's networking settings that shape containers' files, names and rules."""

from collections.abc import Callable
from dataclasses import dataclass, field

EMBEDDED_DNS = "127.0.0.11"  # where Docker's containers on user-defined networks find their resolver


@dataclass
class Settings:
    host_resolv: str = "/etc/resolv.conf"
    dns: list[str] = field(default_factory=list)  # daemon --dns: containers' servers unless they say
    iptables: bool = True
    ip_masq: bool = True
    default_mtu: int = 1500
    host_gateway: Callable[[], str] = lambda: ""  # the default bridge's gateway, for --add-host host-gateway
    dns_address: tuple[str, int] = (EMBEDDED_DNS, 53)  # where containers find the embedded DNS server
