"""Futures that wait for a container's exit or removal (`docker wait`, and the service's own waits),
and the error a failed removal gives them."""

import asyncio

from daemon.containers.results import WaitResult
from daemon.containers.store import Container
from daemon.errors import InvalidParameter


class WaitError(Exception):
    """What a waiter gets instead of an exit code when the awaited event failed (a removal)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def exit_future(c: Container) -> "asyncio.Future[int]":
    """Resolved with the exit code when the container next exits: arm it before sending a signal."""
    exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    c.exit_waiters.append(exited)
    return exited


def resolve(waiters: "list[asyncio.Future[int]]", code: int, error: str = "") -> None:
    """Answer the waiters: the exit code, or a WaitError carrying it and why."""
    for fut in waiters:
        if not fut.done():
            if error:
                fut.set_exception(WaitError(code, error))
            else:
                fut.set_result(code)
    waiters.clear()


def wait_for(c: Container, condition: str) -> "asyncio.Future[int]":
    """The exit code once Docker's wait condition is met: "not-running" (at once if it is not),
    "next-exit", or "removed"."""
    if condition not in ("not-running", "next-exit", "removed", ""):
        raise InvalidParameter(f"invalid condition: {condition!r}")
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    for waiters in (c.removed_waiters, c.exit_waiters):  # those of clients that left
        waiters[:] = [w for w in waiters if not w.done()]
    if condition == "removed":
        c.removed_waiters.append(fut)
    elif condition == "next-exit" or c.running:
        c.exit_waiters.append(fut)
    else:
        fut.set_result(c.state.exit_code)
    return fut


async def wait_result(c: Container, exited: "asyncio.Future[int]") -> WaitResult:
    """What `docker wait` reports: the exit code and the container's error, or why the removal failed."""
    try:
        code = await exited
    except WaitError as e:  # the removal failed: the container stays, dead
        return WaitResult(e.code, e.message)
    return WaitResult(code, c.state.error)
