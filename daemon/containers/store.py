"""Container records on disk: <data root>/containers/<id>/config.v2.json, written atomically.

A container's directory goes away with one rename into the trash (<data root>/trash), record and all;
the trash is emptied in a thread, and again at each start for what a crash left there.
"""

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.containers.state import UP, ContainerState, Status
from daemon.errors import no_such_container
from daemon.files.atomic import read_json, write_json_atomic
from daemon.files.trash import Trash
from daemon.runtime.interface import RuntimeFailure, ShimStream

log = logging.getLogger(__name__)

RECORD = "config.v2.json"


@dataclass
class AttachRequest:
    """An attach made before the container started: it gets its stream when the start comes."""

    stdin: bool
    stdout: bool
    stderr: bool
    future: "asyncio.Future[ShimStream]"


class Container:
    """One container's record plus what lives only while the daemon runs (locks, waiters).

    The run state lives in `state`, typed; the record's "State" and "RestartCount" are written from it
    by `record()` (ValueError or KeyError from the constructor for a record without a usable State)."""

    def __init__(self, data: dict[str, Any], cdir: Path) -> None:
        self.data = data
        self.state = ContainerState.from_json(data["State"], int(data.get("RestartCount") or 0))
        self.dir = cdir
        self.lock = asyncio.Lock()
        self.exit_waiters: list[asyncio.Future[int]] = []
        self.removed_waiters: list[asyncio.Future[int]] = []
        self.pending_attaches: list[AttachRequest] = []
        self.monitor: asyncio.Task[None] | None = None
        self.restart_requested = False  # `docker restart` under way (not a restart policy's)
        self.removed = False  # its directory is in the trash: nothing may write a record again

    @property
    def id(self) -> str:
        return str(self.data["Id"])

    @property
    def name(self) -> str:
        return str(self.data["Name"]).lstrip("/")

    @property
    def status(self) -> Status:
        return self.state.status

    @property
    def config(self) -> dict[str, Any]:
        return self.data["Config"]

    @property
    def host_config(self) -> dict[str, Any]:
        return self.data["HostConfig"]

    @property
    def pid(self) -> int:
        return self.state.pid

    @property
    def running(self) -> bool:
        """Docker's State.Running: up, paused or restarting."""
        return self.status in UP

    def record(self) -> dict[str, Any]:
        """The record as `docker inspect` shows it and as it is saved, State written from `state`
        (a new dict: its keys keep their places)."""
        return {**self.data, "State": self.state.to_json(), "RestartCount": self.state.restart_count}

    def fail_pending_attaches(self) -> None:
        """The start failed, or the container goes away: no waiting attach may wait forever."""
        pending, self.pending_attaches = self.pending_attaches, []
        for req in pending:
            if not req.future.done():
                req.future.set_exception(RuntimeFailure("the container did not start"))

    def event_attrs(self, **extra: str) -> dict[str, str]:
        """The attributes of this container's events: image, name, labels, then `extra`."""
        attrs = {"image": self.config.get("Image", ""), "name": self.name}
        attrs.update({k: str(v) for k, v in (self.config.get("Labels") or {}).items()})
        attrs.update(extra)
        return attrs


class ContainerStore:
    def __init__(self, root: Path, trash: Trash) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.trash = trash
        self._by_id: dict[str, Container] = {}
        self._by_name: dict[str, str] = {}

    def load(self) -> list[Container]:
        """The containers on disk. What is not one is logged, never fatal: a directory without a record
        (a crash during create left it) goes to the trash, one with a record we cannot use stays."""
        for cdir in sorted(self.root.iterdir()):
            try:
                data = read_json(cdir / RECORD)
            except (OSError, ValueError):
                log.warning("removing incomplete container directory %s", cdir)
                try:
                    self.trash.discard(cdir)
                except OSError as e:
                    log.warning("cannot remove %s: %s", cdir, e)
                continue
            try:
                self.add(_container_of(data, cdir))
            except (TypeError, KeyError, ValueError) as e:
                log.error("ignoring container directory %s: unusable record (%s)", cdir, e)
        return list(self._by_id.values())

    def container_dir(self, cid: str) -> Path:
        return self.root / cid

    def add(self, c: Container) -> None:
        self._by_id[c.id] = c
        self._by_name[c.name] = c.id

    def save(self, c: Container) -> None:
        if not c.removed:  # a late write must not bring a removed container back
            write_json_atomic(c.dir / RECORD, c.record())

    def save_state(self, c: Container) -> None:
        """A change of run state only: restore() re-derives it from the kernel and the shims anyway,
        so the write need not reach the disk before we go on (it stays all-or-nothing)."""
        if c.removed:
            return
        try:
            write_json_atomic(c.dir / RECORD, c.record(), durable=False)
        except OSError as e:  # a full disk, say: the change holds in memory, the kernel keeps the truth
            log.warning("cannot save the state of container %s: %s", c.id[:12], e)

    def discard_dir(self, c: Container) -> str | None:
        """The point of no return of a removal: the directory, record included, into the trash.
        Returns its name there (for Trash.purge_entry); OSError when it could not be moved."""
        name = self.trash.discard(c.dir)
        c.removed = True
        return name

    def discard(self, c: Container) -> None:
        self._by_id.pop(c.id, None)
        if self._by_name.get(c.name) == c.id:
            del self._by_name[c.name]

    def rename(self, c: Container, new: str) -> None:
        self._by_name.pop(c.name, None)
        c.data["Name"] = "/" + new
        self._by_name[new] = c.id

    def name_owner(self, name: str) -> str | None:
        return self._by_name.get(name.lstrip("/"))

    def names(self) -> set[str]:
        return set(self._by_name)

    def __iter__(self) -> Iterator[Container]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def find(self, ref: str) -> Container | None:
        """Docker's lookup order: full ID, exact name, then a unique ID prefix."""
        if ref in self._by_id:
            return self._by_id[ref]
        cid = self._by_name.get(ref.lstrip("/"))
        if cid:
            return self._by_id[cid]
        if ref:
            matches = [c for i, c in self._by_id.items() if i.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None

    def get(self, ref: str) -> Container:
        c = self.find(ref)
        if c is None:
            raise no_such_container(ref)
        return c


def _container_of(data: Any, cdir: Path) -> Container:
    """The container a record describes; KeyError, TypeError or ValueError when it cannot be one."""
    if not isinstance(data, dict) or not isinstance(data.get("State"), dict):
        raise TypeError("the record and its State must be objects")
    c = Container(data, cdir)
    if c.id != cdir.name:
        raise ValueError(f"it is the record of container {c.id!r}")
    if not isinstance(c.config, dict) or not isinstance(c.host_config, dict):
        raise TypeError("Config and HostConfig must be objects")
    return c
