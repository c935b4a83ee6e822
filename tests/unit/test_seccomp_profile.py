"""Docker's seccomp profile format: what the parser accepts, what it refuses and with which words, and
which rules apply to a container (includes/excludes)."""

import json

import pytest

from daemon.runtime.seccomp import ProfileError, ProfileUnsupported, default_profile_text, parse_profile
from daemon.runtime.seccomp.arches import ARCHES, native
from daemon.runtime.seccomp.profile import Arg, Filter
from daemon.runtime.seccomp.rules import Host, kernel_version, resolve

AMD64 = Host(ARCHES["SCMP_ARCH_X86_64"], (6, 1))
S390X = Host(ARCHES["SCMP_ARCH_S390X"], (4, 4))


def _profile(**fields: object) -> str:
    return json.dumps({"defaultAction": "SCMP_ACT_ERRNO", **fields})


def test_a_profile_in_dockers_shape_parses_whole() -> None:
    text = _profile(
        defaultErrnoRet=1,
        archMap=[
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": None},
        ],
        syscalls=[
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "clone3", "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "comment": "glibc falls back"},
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]},
            },
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        ],
        flags=["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    )
    p = parse_profile(text)
    assert p.default_action == "SCMP_ACT_ERRNO" and p.default_errno_ret == 1
    assert p.arch_map[0] == ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32"))
    assert p.arch_map[1] == ("SCMP_ARCH_RISCV64", ())
    assert p.rules[1].names == ("clone3",) and p.rules[1].errno_ret == 38
    assert p.rules[2].args == (Arg(0, 2114060288, 0, "SCMP_CMP_MASKED_EQ"),)
    assert p.rules[2].excludes == Filter(caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x"))
    assert p.rules[3].includes == Filter(min_kernel=(4, 8))
    assert p.flags == ("SECCOMP_FILTER_FLAG_SPEC_ALLOW",)


def test_field_names_match_whatever_their_case_as_in_go() -> None:
    p = parse_profile(
        '{"DefaultAction": "SCMP_ACT_ALLOW", "SYSCALLS": [{"Names": ["mkdir"], "ACTION": "SCMP_ACT_ERRNO"}]}'
    )
    assert p.default_action == "SCMP_ACT_ALLOW" and p.rules[0].names == ("mkdir",)


def test_an_empty_profile_means_no_filter_as_in_docker() -> None:
    assert parse_profile("{}").disabled
    assert not parse_profile(_profile()).disabled


def test_our_default_profile_parses() -> None:
    p = parse_profile(default_profile_text())
    assert p.default_action == "SCMP_ACT_ERRNO" and p.default_errno_ret == 1
    assert len(p.rules) > 10


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "Decoding seccomp profile failed"),
        ("[]", "the profile must be a JSON object"),
        (_profile(syscals=[]), "unknown field 'syscals' in the profile"),
        ('{"defaultAction": "SCMP_ACT_DENY"}', "unknown action 'SCMP_ACT_DENY' in defaultAction"),
        (
            _profile(syscalls=[{"names": ["x"], "action": "ALLOW"}]),
            "unknown action 'ALLOW' in syscalls[0].action",
        ),
        (_profile(syscalls=[{"names": ["x"]}]), "syscalls[0].action is required"),
        (_profile(syscalls=[{"names": ["x"], "action": "SCMP_ACT_ALLOW", "why": 1}]), "unknown field 'why'"),
        (_profile(syscalls=[{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]), "use either 'name'"),
        (_profile(architectures=["SCMP_ARCH_X86"], archMap=[{"architecture": "SCMP_ARCH_X86_64"}]), "either"),
        (_profile(architectures=["SCMP_ARCH_Z80"]), "unknown architecture 'SCMP_ARCH_Z80'"),
        (_profile(flags=["SECCOMP_FILTER_FLAG_FAST"]), "unknown flag"),
        (_profile(defaultErrnoRet=5000), "defaultErrnoRet must be an integer from 0 to 4095"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}', "does not apply"),
        (_profile(syscalls=[{"names": ["x"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]), "does not apply"),
        (
            _profile(
                syscalls=[
                    {"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}
                ]
            ),
            "syscalls[0].args[0].index must be an integer from 0 to 5",
        ),
        (
            _profile(
                syscalls=[{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "EQ"}]}]
            ),
            "unknown operator 'EQ'",
        ),
        (
            _profile(
                syscalls=[
                    {"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"value": -1, "op": "SCMP_CMP_EQ"}]}
                ]
            ),
            "value must be an integer",
        ),
        (
            _profile(
                syscalls=[{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]
            ),
            'invalid kernel version: "four"',
        ),
        (_profile(syscalls=[{"names": "read", "action": "SCMP_ACT_ALLOW"}]), "names must be a JSON array"),
        ('{"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW"}]}', "defaultAction is required"),
    ],
)
def test_bad_profiles_are_refused_saying_what_and_where(text: str, words: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        '{"defaultAction": "SCMP_ACT_NOTIFY"}',
        _profile(listenerPath="/run/agent.sock"),
        _profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]),
    ],
)
def test_user_notification_is_not_implemented(text: str) -> None:
    with pytest.raises(ProfileUnsupported, match="not implemented in pydockerd"):
        parse_profile(text)


def test_includes_and_excludes_follow_caps_arch_and_kernel() -> None:
    p = parse_profile(
        _profile(
            archMap=[
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
            ],
            syscalls=[
                {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["admin"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["not-admin"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {
                    "names": ["two-caps"],
                    "action": "SCMP_ACT_ALLOW",
                    "includes": {"caps": ["CAP_BPF", "CAP_PERFMON"]},
                },
                {
                    "names": ["s390-only"],
                    "action": "SCMP_ACT_ALLOW",
                    "includes": {"arches": ["s390", "s390x"]},
                },
                {"names": ["not-s390"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390x"]}},
                {"names": ["new-kernel"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
                {"names": ["old-kernel"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
            ],
        )
    )

    def names(caps: list[str], host: Host) -> set[str]:
        return {n for r in resolve(p, caps, host).rules for n in r.names}

    assert names(["CHOWN"], AMD64) == {"a", "not-admin", "not-s390", "new-kernel"}
    assert names(["SYS_ADMIN", "cap_bpf", "CAP_PERFMON"], AMD64) == {
        "a",
        "admin",
        "two-caps",
        "not-s390",
        "new-kernel",
    }
    assert names(["BPF"], S390X) == {"a", "not-admin", "s390-only", "old-kernel"}
    assert resolve(p, [], AMD64).arches == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    assert resolve(p, [], S390X).arches == ("SCMP_ARCH_S390X", "SCMP_ARCH_S390")
    assert resolve(p, [], Host(ARCHES["SCMP_ARCH_RISCV64"], (6, 1))).arches == ()


def test_host_facts() -> None:
    assert kernel_version("6.18.44-fc-v1045") == (6, 18)
    assert kernel_version("4.8") == (4, 8)
    assert native("x86_64").scmp == "SCMP_ARCH_X86_64" and native("aarch64").go == "arm64"
    with pytest.raises(ValueError):
        native("pdp11")


def test_the_default_profile_generator_keeps_blocked_and_gated_syscalls_out_of_the_allow_list() -> None:
    from daemon.tools import seccomp_default as gen

    profile = gen.build({"read", "keyctl", "io_uring_setup", "mount", "clone", "unshare", "ptrace", "fork"})
    allow_all = profile["syscalls"][0]
    assert allow_all == {"names": sorted({"read", "fork", *gen.EXTRA_ALLOWED}), "action": "SCMP_ACT_ALLOW"}
    p = parse_profile(gen.render(profile))

    def allowed(caps: list[str], kernel: tuple[int, int] = (6, 1)) -> set[str]:
        rules = resolve(p, caps, Host(ARCHES["SCMP_ARCH_X86_64"], kernel)).rules
        return {n for r in rules if r.action == "SCMP_ACT_ALLOW" and not r.args for n in r.names}

    assert {"keyctl", "io_uring_setup", "mount", "clone", "unshare"}.isdisjoint(allowed(["CHOWN"]))
    assert {"mount", "clone", "unshare"} <= allowed(["SYS_ADMIN"])
    assert "keyctl" not in allowed(gen.CAP_GATED)  # no capability opens the keyrings
    assert "ptrace" in allowed([]) and "ptrace" not in allowed([], kernel=(4, 4))
