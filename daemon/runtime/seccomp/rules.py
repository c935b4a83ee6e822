"""Which of a profile's rules apply to one container on this host: Docker's includes/excludes.

dockerd resolves a profile this way before handing it to runc (moby profiles/seccomp setupSeccomp):
an entry is skipped when the host's architecture, one of the container's capabilities or the running
kernel is excluded, or when an included one is missing; `archMap` contributes the architectures listed
for the host's own. Capabilities are compared by name, whatever "CAP_" prefix or case they carry.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.runtime.caps import normalize
from daemon.runtime.seccomp.arches import Arch, native
from daemon.runtime.seccomp.profile import Filter, Profile, Rule


@dataclass(frozen=True)
class Host:
    arch: Arch
    kernel: tuple[int, int]


@dataclass(frozen=True)
class Resolved:
    """A profile for one container: the rules that apply and the extra architectures to filter."""

    default_action: str
    default_errno_ret: int | None
    arches: tuple[str, ...]  # SCMP_ARCH_ names; the native one is always filtered
    flags: tuple[str, ...]
    rules: tuple[Rule, ...]


def this_host() -> Host:
    return Host(native(), kernel_version(os.uname().release))


def kernel_version(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def resolve(profile: Profile, caps: Iterable[str], host: Host) -> Resolved:
    have = {normalize(c) for c in caps}
    arches = list(profile.architectures)
    for arch, subs in profile.arch_map:
        if arch == host.arch.scmp:
            arches += [arch, *subs]
            break
    rules = tuple(r for r in profile.rules if _applies(r, have, host))
    return Resolved(profile.default_action, profile.default_errno_ret, tuple(arches), profile.flags, rules)


def _applies(rule: Rule, caps: set[str], host: Host) -> bool:
    if rule.excludes is not None and _excluded(rule.excludes, caps, host):
        return False
    return rule.includes is None or _included(rule.includes, caps, host)


def _excluded(f: Filter, caps: set[str], host: Host) -> bool:
    return (
        host.arch.go in f.arches
        or any(normalize(c) in caps for c in f.caps)
        or (f.min_kernel is not None and host.kernel >= f.min_kernel)
    )


def _included(f: Filter, caps: set[str], host: Host) -> bool:
    return (
        (not f.arches or host.arch.go in f.arches)
        and all(normalize(c) in caps for c in f.caps)
        and (f.min_kernel is None or host.kernel >= f.min_kernel)
    )
