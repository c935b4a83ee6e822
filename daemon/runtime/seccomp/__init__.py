"""Seccomp filters for containers: Docker's JSON profile format, our default profile, libseccomp.

- profile.py  the profile model, parsed from Docker's JSON (moby profiles/seccomp) and checked
- rules.py    which rules apply to one container (capabilities, architecture, kernel)
- compiler.py the rules to BPF with libseccomp, cached per profile and capability set
- default.json our default profile, in Docker's format (an allow-list, as Docker's is)

The daemon compiles; the container's process loads the program with linux.seccomp_set_filter, so
nothing here is imported by the shim. Importing this package does not load libseccomp.
"""

import functools
from importlib import resources

from daemon.runtime.seccomp.errors import ProfileError, ProfileUnsupported, SeccompError, SeccompUnavailable
from daemon.runtime.seccomp.profile import Profile, parse_profile

__all__ = [
    "Profile",
    "ProfileError",
    "ProfileUnsupported",
    "SeccompError",
    "SeccompUnavailable",
    "default_profile_text",
    "parse_profile",
]


@functools.cache
def default_profile_text() -> str:
    return resources.files(__package__).joinpath("default.json").read_text()
