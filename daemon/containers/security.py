"""HostConfig.SecurityOpt: what we honour (no-new-privileges, seccomp), Docker-style refusals for the rest,
and the seccomp filter each container gets."""

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from daemon.errors import InvalidParameter, NotImplementedYet
from daemon.runtime import caps
from daemon.runtime.seccomp import (
    ProfileError,
    ProfileUnsupported,
    SeccompError,
    SeccompUnavailable,
    default_profile_text,
    parse_profile,
)
from daemon.runtime.seccomp.arches import native
from daemon.runtime.seccomp.compiler import FilterCache, kernel_supports_filters, libseccomp
from daemon.runtime.spec import SeccompProgram

log = logging.getLogger(__name__)

ACCEPTED_UNCONFINED = {"apparmor=unconfined", "label=disable", "label:disable"}
SECCOMP_UNCONFINED = "unconfined"
SECCOMP_BUILTIN = "builtin"  # Docker's name for its default profile, as in `docker info`


def _split(opt: str) -> tuple[str, str, bool]:
    """(key, value, has a value), Docker's way: split at the first "=", else at the first ":"."""
    key, sep, value = opt.partition("=") if "=" in opt else opt.partition(":")
    return key, value, bool(sep)


def _normal(opt: str) -> str:
    key, value, has_value = _split(opt)
    return f"{key}={value}" if has_value else key


def no_new_privileges(host_config: dict[str, Any]) -> bool:
    return any(
        _normal(o) in ("no-new-privileges", "no-new-privileges=true")
        for o in host_config.get("SecurityOpt") or []
    )


def seccomp_option(host_config: dict[str, Any]) -> str:
    """The value of the last `seccomp=` option (the one Docker honours); "" when there is none."""
    value = ""
    for opt in host_config.get("SecurityOpt") or []:
        key, v, has_value = _split(opt)
        if key == "seccomp" and has_value:
            value = v
    return value


def check_security_opts(opts: list[str]) -> None:
    """Refuse what we would otherwise silently ignore (an AppArmor profile we do not apply) and a seccomp
    profile that is not valid JSON in Docker's format."""
    for opt in opts:
        normal = _normal(opt)
        key, value, _ = _split(opt)
        if normal in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges=false"):
            continue
        if normal in ACCEPTED_UNCONFINED or opt in ACCEPTED_UNCONFINED:
            continue  # we apply no AppArmor or SELinux policy: unconfined is what you get
        if key == "seccomp":
            if value not in (SECCOMP_UNCONFINED, SECCOMP_BUILTIN, ""):
                _check_profile(value)
            continue
        if key in ("apparmor", "label", "systempaths"):
            raise NotImplementedYet(f"security option {opt!r} is not implemented in pydockerd yet")
        raise InvalidParameter(f"Invalid --security-opt: {opt!r}")


def _check_profile(text: str) -> None:
    try:
        parse_profile(text)
    except ProfileUnsupported as e:
        raise NotImplementedYet(str(e)) from e
    except ProfileError as e:
        raise InvalidParameter(str(e)) from e


def process_caps(host_config: dict[str, Any], privileged: bool) -> list[str]:
    """The capability set (Docker's defaults keep CAP_MKNOD: the device cgroup, or on v2 its eBPF
    filter, decides which device nodes a container may use)."""
    return caps.resolve(host_config.get("CapAdd") or [], host_config.get("CapDrop") or [], privileged)


class SeccompPolicy:
    """Which seccomp filter a container's processes get, compiled once per profile and capability set.

    Docker's rules: a privileged container gets none, even with a profile named; `seccomp=unconfined`
    none; `seccomp=builtin` or no option our default profile; otherwise the JSON profile the CLI read
    from the user's file. Without seccomp support (no libseccomp, or a kernel without filters) the
    default is dropped with a warning and a custom profile is refused, as dockerd does."""

    def __init__(self, cache: FilterCache | None = None, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = _seccomp_supported()
        self.enabled = enabled
        self.cache = cache or (FilterCache() if enabled else None)

    def profile_text(self, host_config: dict[str, Any]) -> str | None:
        """The profile for this container as JSON text; None for no filter."""
        if host_config.get("Privileged"):
            return None
        value = seccomp_option(host_config)
        if value == SECCOMP_UNCONFINED:
            return None
        if value in ("", SECCOMP_BUILTIN):
            return default_profile_text() if self.enabled else None
        if not self.enabled:
            raise InvalidParameter(
                "seccomp is not enabled in your kernel, cannot run a custom seccomp profile"
            )
        return value

    async def filter_for(
        self, host_config: dict[str, Any], cap_names: Iterable[str]
    ) -> SeccompProgram | None:
        """The compiled filter (None: none); a cache miss is compiled in a thread, off the event loop."""
        text = self.profile_text(host_config)
        if text is None or self.cache is None:
            return None
        cap_names = frozenset(cap_names)
        found = self.cache.get(text, cap_names)
        if found is None:
            try:
                found = await asyncio.to_thread(self.cache.build, text, cap_names)
            except ProfileUnsupported as e:
                raise NotImplementedYet(str(e)) from e
            except SeccompError as e:  # a profile libseccomp refuses, say
                raise InvalidParameter(str(e)) from e
        return found if found.program else None


def _seccomp_supported() -> bool:
    if not kernel_supports_filters():
        log.warning("the kernel has no seccomp filters: containers run without the default profile")
        return False
    try:
        libseccomp()
        native()
    except (SeccompUnavailable, ValueError) as e:
        log.warning("%s: containers run without the default seccomp profile", e)
        return False
    return True
