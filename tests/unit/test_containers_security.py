"""HostConfig.SecurityOpt: which seccomp filter a container gets, and what is refused with which status."""

import asyncio
import json

import pytest

from daemon.containers.security import SeccompPolicy, check_security_opts, seccomp_option
from daemon.errors import InvalidParameter, NotImplementedYet
from daemon.runtime import caps
from daemon.runtime.seccomp import default_profile_text

NO_MKDIR = json.dumps(
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
)


def hc(*opts: str, privileged: bool = False) -> dict[str, object]:
    return {"SecurityOpt": list(opts), "Privileged": privileged}


def test_which_profile_a_container_gets() -> None:
    policy = SeccompPolicy(enabled=True)
    assert policy.profile_text(hc()) == default_profile_text()
    assert policy.profile_text(hc("seccomp=builtin")) == default_profile_text()
    assert policy.profile_text(hc("seccomp=unconfined")) is None
    assert policy.profile_text(hc("seccomp:unconfined")) is None  # Docker still reads the old separator
    assert policy.profile_text(hc(f"seccomp={NO_MKDIR}")) == NO_MKDIR
    assert policy.profile_text(hc(f"seccomp={NO_MKDIR}", privileged=True)) is None  # as in Docker
    assert policy.profile_text(hc("seccomp=unconfined", "seccomp=builtin")) == default_profile_text()
    assert seccomp_option(hc("no-new-privileges", f"seccomp={NO_MKDIR}")) == NO_MKDIR


def test_without_seccomp_support_the_default_goes_and_a_custom_profile_is_refused() -> None:
    policy = SeccompPolicy(enabled=False)
    assert policy.profile_text(hc()) is None
    with pytest.raises(InvalidParameter, match="seccomp is not enabled in your kernel"):
        policy.profile_text(hc(f"seccomp={NO_MKDIR}"))
    assert asyncio.run(policy.filter_for(hc(), caps.DEFAULT_CAPS)) is None


def test_filters_are_compiled_once_per_profile_and_capabilities() -> None:
    policy = SeccompPolicy(enabled=True)
    first = asyncio.run(policy.filter_for(hc(), caps.DEFAULT_CAPS))
    assert first is not None and first.program
    assert asyncio.run(policy.filter_for(hc("seccomp=builtin"), list(reversed(caps.DEFAULT_CAPS)))) is first
    assert asyncio.run(policy.filter_for(hc("seccomp=unconfined"), caps.DEFAULT_CAPS)) is None
    assert asyncio.run(policy.filter_for(hc("seccomp={}"), caps.DEFAULT_CAPS)) is None  # {}: no filter


def test_a_profile_libseccomp_refuses_is_a_400() -> None:
    policy = SeccompPolicy(enabled=True)
    odd_arch = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_LOONGARCH64"]})
    with pytest.raises(InvalidParameter, match="not supported here"):
        asyncio.run(policy.filter_for(hc(f"seccomp={odd_arch}"), []))


@pytest.mark.parametrize(
    ("opt", "error", "words"),
    [
        ('seccomp={"defaultAction": 1}', InvalidParameter, "defaultAction must be a string"),
        ("seccomp=/etc/profile.json", InvalidParameter, "Decoding seccomp profile failed"),
        ('seccomp={"defaultAction": "SCMP_ACT_NOTIFY"}', NotImplementedYet, "not implemented"),
        ("apparmor=docker-default", NotImplementedYet, "not implemented"),
        ("label=type:svirt_apache_t", NotImplementedYet, "not implemented"),
        ("bogus", InvalidParameter, "Invalid --security-opt"),
        ("shiny=yes", InvalidParameter, "Invalid --security-opt"),
    ],
)
def test_refused_options(opt: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        check_security_opts([opt])


def test_accepted_options() -> None:
    check_security_opts(
        [
            "no-new-privileges",
            "no-new-privileges:true",
            "seccomp=unconfined",
            "seccomp:unconfined",
            "seccomp=builtin",
            f"seccomp={NO_MKDIR}",
            "apparmor=unconfined",
            "label=disable",
        ]
    )
