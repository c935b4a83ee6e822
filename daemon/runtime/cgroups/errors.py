"""Errors raised by the cgroup layer.

CgroupError is an OSError (the daemon maps it to a 500); InvalidLimit is also a ValueError,
raised when the kernel refuses a value as out of range (the daemon maps it to a 400).
"""

from __future__ import annotations

import errno as _errno


class CgroupError(OSError):
    """A cgroup operation failed; str() is a message fit for an API client."""

    def __init__(self, message: str, err: int = 0, path: str = "") -> None:
        super().__init__(err, message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class InvalidLimit(CgroupError, ValueError):
    """The kernel refused a limit value (EINVAL / ERANGE)."""


# errnos with which the kernel rejects a value rather than failing the operation
INVALID_VALUE_ERRNOS = frozenset({_errno.EINVAL, _errno.ERANGE})
