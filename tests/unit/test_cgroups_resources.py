"""Resources conversions and Docker's validation messages."""

from __future__ import annotations

import errno

import pytest

from daemon.runtime.cgroups import CgroupError, InvalidLimit, Resources, validate
from daemon.runtime.cgroups import fs as cgfs

MiB = 1024 * 1024


def test_from_host_config_reads_docker_keys_and_nulls() -> None:
    hc = {
        "Memory": 64 * MiB,
        "MemorySwap": -1,
        "MemoryReservation": 32 * MiB,
        "CpuShares": 512,
        "CpuPeriod": 50000,
        "CpuQuota": 25000,
        "NanoCpus": 0,
        "CpusetCpus": "0-1",
        "CpusetMems": "0",
        "PidsLimit": None,
        "Privileged": False,
    }
    assert Resources.from_host_config(hc) == Resources(
        memory=64 * MiB,
        memory_swap=-1,
        memory_reservation=32 * MiB,
        cpu_shares=512,
        cpu_period=50000,
        cpu_quota=25000,
        cpuset_cpus="0-1",
        cpuset_mems="0",
    )
    assert Resources.from_host_config({"CpusetCpus": None, "PidsLimit": 100}) == Resources(pids_limit=100)


def test_memsw_defaults_to_twice_memory() -> None:
    assert Resources(memory=64 * MiB).memsw_limit() == 128 * MiB
    assert Resources(memory=64 * MiB).swap_only() == 64 * MiB
    assert Resources(memory=64 * MiB, memory_swap=96 * MiB).swap_only() == 32 * MiB
    assert Resources(memory=64 * MiB, memory_swap=64 * MiB).swap_only() == 0
    assert Resources(memory=64 * MiB, memory_swap=-1).memsw_limit() == -1
    assert Resources().memsw_limit() == -1
    assert Resources().memory_limit() == -1


def test_cfs_from_nano_cpus_and_explicit_values() -> None:
    assert Resources(nano_cpus=500_000_000).cfs() == (50000, 100000)
    assert Resources(nano_cpus=2_000_000_000).cfs() == (200000, 100000)
    assert Resources().cfs() == (-1, 100000)
    assert Resources(cpu_period=20000, cpu_quota=5000).cfs() == (5000, 20000)
    assert Resources(cpu_quota=-1).cfs() == (-1, 100000)


def test_cpu_weight_conversion() -> None:
    assert Resources().cpu_weight() == 100
    assert Resources(cpu_shares=2).cpu_weight() == 1
    assert Resources(cpu_shares=1024).cpu_weight() == 39
    assert Resources(cpu_shares=262144).cpu_weight() == 10000
    assert Resources(cpu_shares=1).cpu_weight() == 1  # clamped to the minimum of 2 shares
    assert Resources().shares() == 1024
    assert Resources(pids_limit=-1).pids_max() == "max"
    assert Resources(pids_limit=7).pids_max() == "7"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (Resources(memory=4 * MiB), "Minimum memory limit allowed is 6MB"),
        (Resources(memory=-5), "Minimum memory limit allowed is 6MB"),
        (
            Resources(memory=64 * MiB, memory_swap=32 * MiB),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            Resources(memory_swap=64 * MiB),
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (Resources(memory_reservation=MiB), "Minimum memory reservation allowed is 6MB"),
        (
            Resources(memory=64 * MiB, memory_reservation=128 * MiB),
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
        (
            Resources(nano_cpus=10**9, cpu_period=100000),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            Resources(nano_cpus=10**9, cpu_quota=50000),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            Resources(nano_cpus=3 * 10**9),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            Resources(nano_cpus=-1),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (Resources(cpu_quota=999), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        (
            Resources(cpu_period=999),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            Resources(cpu_period=1_000_001),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (Resources(cpuset_cpus="5"), "Requested CPUs are not available - requested 5, available: 0-1"),
        (
            Resources(cpuset_cpus="0,1-3"),
            "Requested CPUs are not available - requested 0,1-3, available: 0-1",
        ),
        (Resources(cpuset_cpus="1-0"), "Invalid value 1-0 for cpuset cpus: invalid format: 1-0"),
        (Resources(cpuset_cpus="a"), "Invalid value a for cpuset cpus: invalid format: a"),
        (Resources(cpuset_cpus="0,"), "Invalid value 0, for cpuset cpus: invalid format: 0,"),
        (
            Resources(cpuset_cpus="0-99999"),
            "Invalid value 0-99999 for cpuset cpus: value of out range, maximum is 8192",
        ),
        (Resources(cpuset_mems="x"), "Invalid value x for cpuset mems: invalid format: x"),
    ],
)
def test_validate_rejects_with_dockers_message(resources: Resources, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        validate(resources, 2)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("accepted", "past_the_edge", "message"),
    [
        (Resources(), Resources(cpu_shares=-1), "invalid CPU shares (-1): value must be a positive integer"),
        (Resources(memory=6 * MiB), Resources(memory=6 * MiB - 1), "Minimum memory limit allowed is 6MB"),
        (
            Resources(memory=64 * MiB, memory_swap=-1),
            Resources(memory_swap=64 * MiB),
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (
            Resources(memory=64 * MiB, memory_swap=64 * MiB),
            Resources(memory=64 * MiB, memory_swap=64 * MiB - 1),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            Resources(memory=64 * MiB, memory_reservation=64 * MiB),
            Resources(memory=64 * MiB, memory_reservation=64 * MiB + 1),
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
        (
            Resources(memory_reservation=6 * MiB),
            Resources(memory_reservation=6 * MiB - 1),
            "Minimum memory reservation allowed is 6MB",
        ),
        (
            Resources(nano_cpus=2 * 10**9),
            Resources(nano_cpus=2 * 10**9 + 1),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            Resources(nano_cpus=10**7),
            Resources(nano_cpus=10**7, cpu_period=100_000),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            Resources(cpu_period=1000, cpu_quota=1000),
            Resources(cpu_period=999, cpu_quota=1000),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            Resources(cpu_period=1_000_000, cpu_quota=-1),
            Resources(cpu_period=1_000_001, cpu_quota=-1),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            Resources(cpu_quota=1000),
            Resources(cpu_quota=999),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ),
        (Resources(cpu_shares=2), Resources(cpu_shares=1), "the minimum allowed cpu-shares is 2"),
        (
            Resources(pids_limit=-1, cpu_shares=262_144),
            Resources(pids_limit=-1, cpu_shares=262_145),
            "the maximum allowed cpu-shares is 262144",
        ),
        (
            Resources(cpuset_cpus="0-1", cpuset_mems="0"),
            Resources(cpuset_cpus="0-2", cpuset_mems="0"),
            "Requested CPUs are not available - requested 0-2, available: 0-1",
        ),
        (
            Resources(cpuset_cpus="1,0,0-0"),
            Resources(cpuset_cpus="1,0,0-"),
            "Invalid value 1,0,0- for cpuset cpus: invalid format: 1,0,0-",
        ),
    ],
)
def test_validate_accepts_up_to_the_edge(accepted: Resources, past_the_edge: Resources, message: str) -> None:
    """Each accepted value sits at an edge of Docker's checks: one step past it is refused."""
    validate(accepted, 2)
    with pytest.raises(ValueError) as exc:
        validate(past_the_edge, 2)
    assert str(exc.value) == message


def test_validate_update_allows_swap_alone_and_uses_given_cpusets() -> None:
    validate(Resources(memory_swap=64 * MiB), 2, update=True)
    with pytest.raises(ValueError, match="requested 2, available: 0-1,4"):
        validate(Resources(cpuset_cpus="2"), 8, cpus="0-1,4")
    validate(Resources(cpuset_cpus="4"), 8, cpus="0-1,4")
    with pytest.raises(ValueError) as exc:
        validate(Resources(cpuset_mems="1"), 2, mems="0")
    assert str(exc.value) == "Requested memory nodes are not available - requested 1, available: 0"
    with pytest.raises(ValueError) as exc:
        validate(Resources(cpuset_cpus="1"), 1)
    assert str(exc.value) == "Requested CPUs are not available - requested 1, available: 0"


def test_write_turns_kernel_refusals_into_typed_errors(tmp_path, monkeypatch) -> None:
    target = tmp_path / "memory.max"
    target.write_text("max")

    def refuse(fd: int, data: bytes) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(cgfs.os, "write", refuse)
    with pytest.raises(InvalidLimit) as exc:
        cgfs.write(str(target), "1", "memory limit")
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, OSError)
    assert exc.value.errno == errno.EINVAL
    assert str(exc.value) == f"cannot set memory limit to '1' ({target}): Invalid argument"

    def busy(fd: int, data: bytes) -> int:
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(cgfs.os, "write", busy)
    with pytest.raises(CgroupError) as exc2:
        cgfs.write(str(target), "1", "memory limit")
    assert not isinstance(exc2.value, ValueError)
    assert "Device or resource busy" in str(exc2.value)


def test_write_into_missing_cgroup_says_so(tmp_path) -> None:
    with pytest.raises(CgroupError, match=r"cgroup .*/gone does not exist"):
        cgfs.write(str(tmp_path / "gone" / "pids.max"), "5")


@pytest.mark.parametrize("name", ["", "/", "a/../b", "..", "a//b", "./a"])
def test_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        cgfs.check_name(name)
