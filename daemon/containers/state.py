"""A container's run state, in one place: the status, the transitions allowed from each, and the checks
that answer a client with Docker's words.

`ContainerState` keeps only what is not redundant; Docker's flags (Running, Paused, Restarting, Dead) and
the Pid of a container that is not up are derived from the status when the state is written out, so
they can never disagree with it (runc's and youki's state types work the same way).
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from daemon.errors import Conflict, NotModified
from daemon.timefmt import ZERO_TIME


class Status(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


UP = frozenset((Status.RUNNING, Status.PAUSED, Status.RESTARTING))  # Docker's State.Running

# status -> the statuses a transition may lead to from it
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset((Status.RUNNING, Status.REMOVING)),
    Status.RUNNING: frozenset((Status.PAUSED, Status.EXITED, Status.RESTARTING)),
    Status.PAUSED: frozenset((Status.RUNNING, Status.EXITED, Status.RESTARTING)),
    Status.RESTARTING: frozenset((Status.RUNNING, Status.EXITED, Status.REMOVING)),
    Status.EXITED: frozenset((Status.RUNNING, Status.REMOVING)),
    Status.REMOVING: frozenset((Status.DEAD,)),
    Status.DEAD: frozenset((Status.REMOVING,)),
}


class TransitionRefused(Exception):
    """A change of status the state machine does not allow: a bug of ours, never a client's error
    (the check_* functions below answer clients first, with Docker's words)."""

    def __init__(self, current: Status, wanted: Status, what: str = "") -> None:
        super().__init__(what or f"a container cannot go from {current.value} to {wanted.value}")
        self.current = current
        self.wanted = wanted


@dataclass
class Health:
    """State.Health of a container with a healthcheck. Healthchecks do not run yet: it stays "starting"."""

    status: str = "starting"
    failing_streak: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": list(self.log)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Health":
        status = str(data.get("Status") or "starting")
        return cls(status, int(data.get("FailingStreak") or 0), list(data.get("Log") or []))


@dataclass
class ContainerState:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    health: Health | None = None

    # --- what is derived --------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Docker's State.Running: true while running, paused or restarting."""
        return self.status in UP

    def to_json(self) -> dict[str, Any]:
        """Docker's State object, the redundant flags derived from the status."""
        out: dict[str, Any] = {
            "Status": self.status.value,
            "Running": self.up,
            "Paused": self.status == Status.PAUSED,
            "Restarting": self.status == Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status == Status.DEAD,
            "Pid": self.pid if self.status in (Status.RUNNING, Status.PAUSED) else 0,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            out["Health"] = self.health.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], restart_count: int = 0) -> "ContainerState":
        """From a record's State; the derived flags are ignored. ValueError for an unknown status."""
        health = data.get("Health")
        return cls(
            status=Status(data["Status"]),
            pid=int(data.get("Pid") or 0),
            exit_code=int(data.get("ExitCode") or 0),
            error=str(data.get("Error") or ""),
            oom_killed=bool(data.get("OOMKilled")),
            started_at=str(data.get("StartedAt") or ZERO_TIME),
            finished_at=str(data.get("FinishedAt") or ZERO_TIME),
            restart_count=restart_count,
            health=Health.from_json(health) if isinstance(health, dict) else None,
        )

    # --- transitions ------------------------------------------------------------------------------

    def _go(self, wanted: Status) -> None:
        if wanted not in ALLOWED[self.status]:
            raise TransitionRefused(self.status, wanted)
        self.status = wanted

    def running(self, pid: int, started_at: str) -> None:
        """The first process started (from created, exited or restarting)."""
        if self.status == Status.PAUSED:
            raise TransitionRefused(self.status, Status.RUNNING)  # that is resumed()
        self._go(Status.RUNNING)
        self.pid, self.started_at, self.finished_at = pid, started_at, ZERO_TIME
        self.exit_code, self.error, self.oom_killed = 0, "", False
        if self.health is not None:
            self.health = Health()

    def paused(self) -> None:
        if self.status != Status.RUNNING:
            raise TransitionRefused(self.status, Status.PAUSED)
        self._go(Status.PAUSED)

    def resumed(self) -> None:
        if self.status != Status.PAUSED:
            raise TransitionRefused(self.status, Status.RUNNING)
        self._go(Status.RUNNING)

    def exited(self, exit_code: int, oom_killed: bool, finished_at: str) -> None:
        self._go(Status.EXITED)
        self.pid, self.exit_code, self.oom_killed, self.finished_at = 0, exit_code, oom_killed, finished_at

    def restarting(self, exit_code: int, oom_killed: bool, finished_at: str) -> None:
        """The process exited and a restart policy will start it again (Docker counts it as running)."""
        self._go(Status.RESTARTING)
        self.pid, self.exit_code, self.oom_killed, self.finished_at = 0, exit_code, oom_killed, finished_at
        self.restart_count += 1

    def start_failed(self, exit_code: int, error: str) -> None:
        """The start failed before the process ran: the status stays, Docker records why."""
        if self.status not in (Status.CREATED, Status.EXITED, Status.RESTARTING):
            what = f"a {self.status.value} container cannot fail to start"
            raise TransitionRefused(self.status, self.status, what)
        if self.status == Status.RESTARTING:
            self._go(Status.EXITED)
        self.exit_code, self.error = exit_code, error

    def removing(self) -> None:
        self._go(Status.REMOVING)

    def dead(self) -> None:
        """The removal failed: the container is not used again; `rm` may be retried."""
        self._go(Status.DEAD)


# --- Docker's answers to requests the status refuses --------------------------------------------


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
    if status in UP and not force:
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
