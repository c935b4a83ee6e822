"""The daemon's settings: flags named like dockerd's, optionally from a JSON file like daemon.json."""

import argparse
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from daemon.images.layers import DEFAULT_MAX_LAYER_BYTES

DEFAULT_SOCKET = "unix:///var/run/pydockerd.sock"
DEFAULT_MAX_LAYER_SIZE = DEFAULT_MAX_LAYER_BYTES
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: Path = Path("/var/lib/pydockerd")
    exec_root: Path = Path("/var/run/pydockerd")
    pidfile: Path | None = Path("/var/run/pydockerd.pid")
    group: str | None = None
    log_level: str = "info"
    cgroup_parent: str = "pydockerd"
    # dockerd's API server has ReadHeaderTimeout = 5 minutes; it has no idle limit, we use the same
    http_read_header_timeout: float = 300.0
    http_idle_timeout: float = 300.0
    max_connections: int | None = None  # None: half the open-file limit
    # bytes an image layer may expand to (its uncompressed tar): stops gzip bombs in load and import
    max_layer_size: int = DEFAULT_MAX_LAYER_SIZE
    # networking, named as dockerd's: the default bridge ("none": no default bridge network), its
    # gateway address, the pools user-defined networks take subnets from, the firewall, DNS servers
    bridge: str = "pyd0"
    bip: str = ""
    default_address_pools: list[str] = field(default_factory=list)  # "base=10.10.0.0/16,size=24"
    iptables: bool = True
    ip_forward: bool = True
    ip_masq: bool = True
    dns: list[str] = field(default_factory=list)
    mtu: int = 1500


def parse_size(value: str) -> int:
    """A size like dockerd's flags take it ("64g", "512MiB", "1048576"): binary multiples."""
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"invalid size: {value!r}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** ("kmgtp".index(unit.lower()) + 1 if unit else 0))


def _size_arg(value: str) -> int:
    try:
        size = parse_size(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if size < 1 << 20:
        raise argparse.ArgumentTypeError(f"{value!r} is below the minimum of 1 MiB")
    return size


FILE_KEYS = {  # daemon.json key -> attribute
    "hosts": "hosts",
    "data-root": "data_root",
    "exec-root": "exec_root",
    "pidfile": "pidfile",
    "group": "group",
    "log-level": "log_level",
    "cgroup-parent": "cgroup_parent",
    "http-read-header-timeout": "http_read_header_timeout",
    "http-idle-timeout": "http_idle_timeout",
    "max-connections": "max_connections",
    "max-layer-size": "max_layer_size",
    "bridge": "bridge",
    "bip": "bip",
    "default-address-pools": "default_address_pools",
    "iptables": "iptables",
    "ip-forward": "ip_forward",
    "ip-masq": "ip_masq",
    "dns": "dns",
    "mtu": "mtu",
}
BOOLS = ("iptables", "ip_forward", "ip_masq")
SECONDS = ("http_read_header_timeout", "http_idle_timeout")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pydockerd", description="A Docker-compatible container engine.")
    p.add_argument(
        "-H", "--host", action="append", dest="hosts", help="socket to listen on (unix:///path, fd://)"
    )
    p.add_argument("--data-root", help="root of persistent state (default /var/lib/pydockerd)")
    p.add_argument("--exec-root", help="root of running-container state (default /var/run/pydockerd)")
    p.add_argument("-p", "--pidfile", help="path of the daemon's PID file (default /var/run/pydockerd.pid)")
    p.add_argument("-G", "--group", help="group owning the unix socket (mode 0660)")
    p.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("--cgroup-parent", help="parent cgroup of containers (default pydockerd)")
    p.add_argument(
        "--http-read-header-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection whose request headers take longer than this (default 300)",
    )
    p.add_argument(
        "--http-idle-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection that waits longer than this for its next request (default 300)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="API connections open at once; more wait to be accepted (default: half the open-file limit)",
    )
    p.add_argument(
        "--max-layer-size",
        type=_size_arg,
        help="largest uncompressed size of one image layer in load and import, e.g. 20g (default 64g)",
    )
    net = p.add_argument_group("networking")
    net.add_argument(
        "-b", "--bridge", help='bridge of the default network (default pyd0; "none": no default bridge)'
    )
    net.add_argument("--bip", help="address and prefix of the default bridge, e.g. 172.17.0.1/16")
    net.add_argument(
        "--default-address-pool",
        action="append",
        dest="default_address_pools",
        metavar="base=CIDR,size=N",
        help="where networks without a subnet take theirs (repeatable; default: Docker's pools)",
    )
    for name, what in (
        ("iptables", "add firewall rules: masquerading, isolation, published ports"),
        ("ip-forward", "enable IPv4 forwarding"),
        ("ip-masq", "masquerade the outbound traffic of bridge networks"),
    ):
        net.add_argument(
            f"--{name}", type=_go_bool, nargs="?", const=True, metavar="BOOL", help=f"{what} (default true)"
        )
    net.add_argument("--dns", action="append", metavar="IP", help="DNS server of containers (repeatable)")
    net.add_argument("--mtu", type=int, help="MTU of the default bridge and its containers (default 1500)")
    p.add_argument("--config-file", help="JSON settings, like /etc/docker/daemon.json")
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    return p


def _go_bool(value: str) -> bool:
    """A boolean flag value the way Go's flag package reads it (`--iptables=false`)."""
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def load(argv: list[str] | None = None) -> tuple[DaemonConfig, argparse.Namespace]:
    args = parser().parse_args(argv)
    cfg = DaemonConfig()
    if args.config_file:
        with open(args.config_file) as f:
            data = json.load(f)
        unknown = set(data) - set(FILE_KEYS)
        if unknown:
            raise SystemExit(
                f"pydockerd: unknown settings in {args.config_file}: {', '.join(sorted(unknown))}"
            )
        for key, value in data.items():
            _set(cfg, FILE_KEYS[key], value)
        flags = {attr for attr in FILE_KEYS.values() if getattr(args, attr, None) is not None}
        clash = flags & {FILE_KEYS[k] for k in data}
        if clash:  # dockerd refuses a setting given both ways
            raise SystemExit(
                f"pydockerd: settings given both as flags and in the config file: {sorted(clash)}"
            )
    for attr in FILE_KEYS.values():
        value = getattr(args, attr, None)
        if value is not None:
            _set(cfg, attr, value)
    _check_network(cfg)
    return cfg, args


def _check_network(cfg: DaemonConfig) -> None:
    """The networking settings' shapes, refused at start in words a user can act on."""
    if cfg.bip:
        try:
            ipaddress.ip_interface(cfg.bip)
        except ValueError:
            raise SystemExit(
                f"pydockerd: invalid --bip {cfg.bip!r}: an address with its prefix, e.g. 172.17.0.1/16"
            ) from None
    for server in cfg.dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise SystemExit(f"pydockerd: invalid --dns {server!r}: an IP address") from None
    if not re.fullmatch(r"[a-zA-Z0-9_.\-]{1,15}", cfg.bridge):
        raise SystemExit(
            f"pydockerd: invalid --bridge {cfg.bridge!r}: a network interface name of at most 15 characters"
        )
    if isinstance(cfg.mtu, bool) or not isinstance(cfg.mtu, int) or not 68 <= cfg.mtu <= 65535:
        raise SystemExit(f"pydockerd: invalid --mtu {cfg.mtu!r}: from 68 to 65535")


def _set(cfg: DaemonConfig, attr: str, value: object) -> None:
    if attr in SECONDS or attr == "max_connections":
        value = _positive(attr, value)
    if attr in ("data_root", "exec_root", "pidfile"):
        value = Path(str(value)) if value else None
    if attr == "hosts" and isinstance(value, str):
        value = [value]
    if attr in BOOLS and not isinstance(value, bool):
        raise SystemExit(f"pydockerd: {attr.replace('_', '-')} must be true or false, not {value!r}")
    if attr == "default_address_pools" and value and isinstance(value, list):
        # daemon.json's form is [{"base": "10.10.0.0/16", "size": 24}]; the flag's is "base=...,size=..."
        value = [v if isinstance(v, str) else f"base={v.get('base')},size={v.get('size')}" for v in value]
    if attr == "max_layer_size":  # a parsed flag again, daemon.json's value for the first time
        try:
            value = _size_arg(str(value))
        except argparse.ArgumentTypeError as e:
            raise SystemExit(f"pydockerd: max-layer-size: {e}") from None
    setattr(cfg, attr, value)


def _positive(attr: str, value: object) -> float | int:
    name = attr.replace("_", "-")
    wanted = int if attr == "max_connections" else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted) or not 0 < value < float("inf"):
        kind = "a whole number" if attr == "max_connections" else "a number of seconds"
        raise SystemExit(f"pydockerd: {name} must be {kind} above 0, not {value!r}")
    return value
