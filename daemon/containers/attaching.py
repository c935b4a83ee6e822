"""Attach requests made before the container starts: they wait for its start, then get a stream."""

import asyncio
from dataclasses import dataclass

from daemon.runtime.interface import ContainerRuntime, RuntimeFailure, ShimStream


@dataclass
class AttachRequest:
    stdin: bool
    stdout: bool
    stderr: bool
    future: "asyncio.Future[ShimStream]"


async def connect_pending(pending: list[AttachRequest], cid: str, runtime: ContainerRuntime) -> None:
    """The container's process exists (not yet started): give each waiting attach its stream."""
    for req in pending:
        if req.future.done():
            continue
        try:
            stream = await runtime.attach(cid, req.stdin, req.stdout, req.stderr)
        except RuntimeFailure as e:
            req.future.set_exception(e)
        else:
            req.future.set_result(stream)


def fail_pending(pending: list[AttachRequest]) -> None:
    """The start failed, or the container goes away: no waiting attach may wait forever."""
    for req in pending:
        if not req.future.done():
            req.future.set_exception(RuntimeFailure("the container did not start"))
