"""Typed answers the container service gives the API layer (beyond the JSON documents it builds)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class WaitResult:
    """What `POST /containers/{id}/wait` reports: the exit code, and why the wait failed ("" if not)."""

    status_code: int
    error: str = ""


@dataclass(frozen=True)
class ContainerSizes:
    """Docker's SizeRw (what the container wrote) and SizeRootFs (its whole root file system: the
    image's layers plus the writable layer), in bytes."""

    rw: int
    root_fs: int
