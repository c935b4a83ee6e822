"""Network records on disk, mirrored in memory.

Layout under <data_root>/network/:
  <id>.json   one file per network: Docker's inspect shape without `Containers` (those are derived from the
              containers' own records, never stored twice)

A record is written (atomically) before its bridge exists and removed after its bridge is gone, so after a
crash every bridge of ours has a record, and the daemon's start makes the kernel match the records.
Addresses handed to containers are not stored here: they are re-derived from the running containers.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import NotFound
from daemon.files.atomic import read_json, write_json_atomic

log = logging.getLogger(__name__)

PREDEFINED = ("bridge", "host", "none")
BRIDGE_NAME = "com.docker.network.bridge.name"
ICC = "com.docker.network.bridge.enable_icc"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
MTU = "com.docker.network.driver.mtu"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"


@dataclass
class Network:
    record: dict[str, Any]  # Docker's inspect fields (Name, Id, Driver, IPAM, Options, Labels, ...)

    @property
    def id(self) -> str:
        return str(self.record["Id"])

    @property
    def name(self) -> str:
        return str(self.record["Name"])

    @property
    def driver(self) -> str:
        return str(self.record["Driver"])

    @property
    def options(self) -> dict[str, str]:
        return self.record.get("Options") or {}

    @property
    def is_bridge(self) -> bool:
        return self.driver == "bridge"

    @property
    def is_default_bridge(self) -> bool:
        return self.options.get(DEFAULT_BRIDGE) == "true"

    @property
    def user_defined(self) -> bool:
        """Docker's user-defined networks: DNS, aliases and static addresses work only on them."""
        return self.name not in PREDEFINED

    @property
    def bridge(self) -> str:
        return self.options.get(BRIDGE_NAME) or f"br-{self.id[:12]}"

    @property
    def internal(self) -> bool:
        return bool(self.record.get("Internal"))

    @property
    def icc(self) -> bool:
        return self.options.get(ICC, "true").lower() not in ("false", "0")

    @property
    def masquerade(self) -> bool:
        return self.options.get(MASQUERADE, "true").lower() not in ("false", "0")

    @property
    def mtu(self) -> int:
        return int(self.options.get(MTU) or 0)

    @property
    def ipam_config(self) -> list[dict[str, Any]]:
        return list((self.record.get("IPAM") or {}).get("Config") or [])

    @property
    def labels(self) -> dict[str, str]:
        return self.record.get("Labels") or {}


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._by_id: dict[str, Network] = {}

    def load(self) -> None:
        for path in sorted(self.root.glob("*.json")):
            try:
                record = read_json(path)
            except (OSError, ValueError):
                log.warning("ignoring unreadable network record %s", path.name)
                continue
            self._by_id[record["Id"]] = Network(record)
        for tmp in self.root.glob(".*"):  # a write a crash interrupted
            with contextlib.suppress(OSError):
                tmp.unlink()

    def __iter__(self) -> Iterator[Network]:
        return iter(sorted(self._by_id.values(), key=lambda n: n.record.get("Created", "")))

    def save(self, n: Network) -> None:
        write_json_atomic(self.root / f"{n.id}.json", n.record)
        self._by_id[n.id] = n

    def delete(self, n: Network) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / f"{n.id}.json")
        self._by_id.pop(n.id, None)

    def by_name(self, name: str) -> Network | None:
        for n in self._by_id.values():
            if n.name == name:
                return n
        return None

    def find(self, ref: str) -> Network | None:
        """By full ID, then exact name, then a unique ID prefix, as Docker resolves a network."""
        if ref in self._by_id:
            return self._by_id[ref]
        named = self.by_name(ref)
        if named is not None:
            return named
        matches = [n for n in self._by_id.values() if ref and n.id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def get(self, ref: str) -> Network:
        n = self.find(ref)
        if n is None:
            raise NotFound(f"network {ref} not found")
        return n
