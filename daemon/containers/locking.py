"""One piece of work at a time on a container, and work that outlives a client that gave up on it.

A route drops the request of a client that went away (daemon.api.disconnect). A request still waiting
for the container's lock then leaves the queue without a trace: it must not run later, when nobody
wants it any more. Work that has begun runs to its end in a task of its own: half a start or half a
removal is worse than a late one. And the work may let go of the lock early: a stop spends its grace
period without it, so that kill and `rm -f` are not queued behind a stop that may wait forever.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from daemon.errors import DaemonError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Held:
    """A container's lock, taken for a piece of work."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()

    async def reacquire(self) -> None:
        await self.lock.acquire()
        self.held = True


async def when_free(
    lock: asyncio.Lock, work: Callable[[Held], Awaitable[T]], tasks: set["asyncio.Task[Any]"]
) -> T:
    """Wait for `lock` (cancelling this wait leaves the queue: nothing happened), then run `work`
    holding it, to its end, in a task kept in `tasks`, even if our caller is cancelled meanwhile."""
    await lock.acquire()
    # no await between the acquire and the task: a cancellation cannot fall in between
    task = asyncio.ensure_future(_holding(Held(lock), work))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_report_unawaited)  # nobody else will look at how it ended
        raise


async def _holding(held: Held, work: Callable[[Held], Awaitable[T]]) -> T:
    try:
        return await work(held)
    finally:
        held.release()


def _report_unawaited(task: "asyncio.Task[Any]") -> None:
    if task.cancelled():
        return
    error = task.exception()
    if isinstance(error, DaemonError):
        log.info("a request whose client left ended with: %s", error.message)
    elif error is not None:
        log.error("a request whose client left failed", exc_info=error)
