"""Futures that wait for a container's exit or removal, and the error a failed removal gives them."""

import asyncio

from daemon.containers.store import Container


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
