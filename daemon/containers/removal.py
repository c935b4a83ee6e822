"""Removing containers: one rename into the trash (the point of no return), the files emptied after;
`docker container prune`. The caller holds the container's lock and has stopped it."""

import asyncio
import logging
from typing import Any, Protocol

from daemon.containers import listing
from daemon.containers.sizes import SizeMeter
from daemon.containers.store import Container, ContainerStore
from daemon.containers.waiters import resolve
from daemon.events.bus import EventBus

log = logging.getLogger(__name__)


class RemovalFailed(Exception):
    """The container's directory could not be taken away: the container stays, dead."""


class LayerCollector(Protocol):
    def collect_garbage(self) -> None: ...


class Remover:
    def __init__(
        self, store: ContainerStore, images: LayerCollector, events: EventBus, meter: SizeMeter
    ) -> None:
        self.store = store
        self.images = images
        self.events = events
        self.meter = meter

    async def remove(self, c: Container) -> None:
        """Take the container's directory away in one rename (its record with it), then remove it in
        a thread. When the rename fails the container stays, dead, and its waiters learn why."""
        if self.store.find(c.id) is None:
            return
        c.state.removing()
        c.fail_pending_attaches()
        try:
            trashed = self.store.discard_dir(c)  # the point of no return
        except OSError as e:
            message = f"unable to remove filesystem: {e.strerror or e}"
            c.state.dead()  # as Docker: it is not used again, `rm` may retry
            self.store.save_state(c)
            resolve(c.removed_waiters, c.state.exit_code, message)
            raise RemovalFailed(message) from e
        self.store.discard(c)
        if trashed is not None:
            # awaited, as Docker's rm returns once the files are gone; what is left goes at the next start
            await asyncio.to_thread(self.store.trash.purge_entry, trashed)
        self.images.collect_garbage()  # layers of images force-deleted while this container used them
        self.events.publish("container", "destroy", c.id, c.event_attrs())
        resolve(c.removed_waiters, c.state.exit_code)
        resolve(c.exit_waiters, c.state.exit_code)

    async def prune(self, containers: list[Container], filters: dict[str, list[str]]) -> dict[str, Any]:
        """Remove the containers that are not running and match the filters; Docker's answer."""
        deleted, reclaimed = [], 0
        for c in containers:
            if c.running or not listing.matches_prune_filters(c, filters):
                continue
            size = await self.meter.size_rw(c)
            try:
                async with c.lock:
                    if c.running or self.store.find(c.id) is None:
                        continue  # started or removed while this prune waited for it
                    await self.remove(c)
            except RemovalFailed as e:  # as Docker: the others are pruned all the same
                log.warning("pruning container %s failed: %s", c.id[:12], e)
                continue
            deleted.append(c.id)
            reclaimed += size
        self.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
