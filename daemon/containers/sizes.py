"""How big a container is, as Docker counts it: what it wrote (SizeRw) and its whole root file system
(SizeRootFs: the image's layers plus the writable layer)."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from daemon.containers.results import ContainerSizes
from daemon.containers.store import Container
from daemon.errors import NotFound
from daemon.files.trees import tree_size

log = logging.getLogger(__name__)

SIZE_WALKERS = 2  # threads measuring containers' sizes; never more, whatever the number of `ps -s`


class ImageSizes(Protocol):
    def size(self, image_id: str) -> int: ...


class SizeMeter:
    def __init__(self, images: ImageSizes) -> None:
        self.images = images
        self._walkers = ThreadPoolExecutor(SIZE_WALKERS, thread_name_prefix="size-walk")

    async def size_rw(self, c: Container) -> int:
        """The size of what the container wrote, measured in a thread of its own (a container may
        hold millions of files, or a tree deeper than any path; see daemon.files.trees for bounds)."""
        upper = c.dir / "rw" / "upper"
        loop = asyncio.get_running_loop()
        log.debug("measuring the size of container %s", c.id[:12])
        size = await loop.run_in_executor(self._walkers, tree_size, upper)
        if not size.complete:
            log.info("size of container %s: counted %d entries, not all", c.id[:12], size.entries)
        return size.bytes

    async def sizes(self, c: Container) -> ContainerSizes:
        rw = await self.size_rw(c)
        try:
            image = self.images.size(c.data["Image"])
        except NotFound:  # the image's files are gone altogether: only the writable layer counts
            image = 0
        return ContainerSizes(rw, image + rw)
