"""A client that goes away: noticing it, and dropping the work done only for it.

aiohttp does not cancel a handler whose client left (we keep its handler_cancellation off: cancelling
create, start or remove half-way would be worse than finishing them). Instead a route that waits for
something on behalf of its client races that wait against the client's departure, and only where
dropping it is safe: a wait for an exit, a place in a container's queue, a log or event stream. The
services make sure that work which has begun runs to its end anyway (daemon.containers.service).
"""

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")

# How often a waiting route looks at its connection: aiohttp tells no one when a connection closes,
# but its transport is gone (None or closing) from then on.
POLL_INTERVAL = 0.2


class ClientGone(ConnectionResetError):
    """The client closed its connection before its answer was ready: there is nobody to answer."""


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def wait_client_gone(request: web.Request) -> None:
    while not client_gone(request):
        await asyncio.sleep(POLL_INTERVAL)


async def unless_client_leaves(request: web.Request, work: Awaitable[T]) -> T:
    """The result of `work`; if the client leaves first, `work` is cancelled and ClientGone raised.

    Only for work that may be cancelled at any of its awaits (or that shields what may not be)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_client_gone(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # let it unwind (leave a queue, drop a waiter) before we go
    if task.cancelled():
        raise ClientGone("the client went away")
    return task.result()
