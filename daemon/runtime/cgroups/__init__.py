"""Container cgroups: one interface over cgroup v1 and v2, chosen once at start by detect().

Imported by the per-container shim as well as the daemon, so it stays stdlib-only and
synchronous.  The root is injectable so tests can point it at a plain temp directory.
"""

from __future__ import annotations

import errno
import os

from daemon.runtime.cgroups.base import DEFAULT_ROOT, CgroupManager
from daemon.runtime.cgroups.devices import (
    DevicePolicy,
    DeviceRule,
    InvalidDeviceRule,
    container_device_rules,
)
from daemon.runtime.cgroups.errors import CgroupError, InvalidLimit
from daemon.runtime.cgroups.resources import Resources
from daemon.runtime.cgroups.v1 import V1Manager, find_mounts
from daemon.runtime.cgroups.v2 import V2Manager
from daemon.runtime.cgroups.validate import validate

__all__ = [
    "DEFAULT_ROOT",
    "CgroupError",
    "CgroupManager",
    "DevicePolicy",
    "DeviceRule",
    "InvalidDeviceRule",
    "InvalidLimit",
    "Resources",
    "V1Manager",
    "V2Manager",
    "container_device_rules",
    "detect",
    "validate",
]


def detect(root: str = DEFAULT_ROOT) -> CgroupManager:
    """v2 when root is a unified mount (it has cgroup.controllers), else the v1 controllers under it.

    On a hybrid host the v2 mount at <root>/unified carries no controllers and is ignored.
    """
    if os.path.isfile(os.path.join(root, "cgroup.controllers")):
        return V2Manager(root)
    mounts = find_mounts(root)
    if mounts:
        return V1Manager(root, mounts)
    raise CgroupError(f"no cgroup v1 or v2 hierarchy found at {root}", errno.ENOENT, root)
