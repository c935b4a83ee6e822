"""A container's status and the transitions allowed from it, in one place."""

from enum import StrEnum

from daemon.errors import Conflict, NotModified


class Status(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


def check_start(status: Status, cid: str) -> None:
    if status in (Status.RUNNING, Status.RESTARTING):
        raise NotModified("container already started")
    if status == Status.PAUSED:
        raise Conflict("cannot start a paused container, try unpause instead")
    if status in (Status.REMOVING, Status.DEAD):
        raise Conflict(f"container {cid} is marked for removal and cannot be started")


def check_running(status: Status, cid: str) -> None:
    if status not in (Status.RUNNING, Status.PAUSED):
        raise Conflict(f"Container {cid} is not running")


def check_pause(status: Status, cid: str) -> None:
    if status == Status.PAUSED:
        raise Conflict(f"Container {cid} is already paused")
    if status != Status.RUNNING:
        raise Conflict(f"Container {cid} is not running")


def check_unpause(status: Status, cid: str) -> None:
    if status != Status.PAUSED:
        raise Conflict(f"Container {cid} is not paused")


def check_remove(status: Status, cid: str, force: bool) -> None:
    if status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING) and not force:
        if status == Status.PAUSED:
            raise Conflict(
                f"You cannot remove a paused container {cid}. "
                "Unpause and then stop the container before attempting removal or force remove"
            )
        raise Conflict(
            f"You cannot remove a running container {cid}. "
            "Stop the container before attempting removal or force remove"
        )
    if status == Status.REMOVING:
        raise Conflict(f"removal of container {cid} is already in progress")


def check_exec(status: Status, cid: str) -> None:
    if status == Status.PAUSED:
        raise Conflict(f"Container {cid} is paused, unpause the container before exec")
    if status != Status.RUNNING:
        raise Conflict(f"container {cid} is not running")
