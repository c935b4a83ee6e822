"""Docker's resource checks (moby daemon/daemon_unix.go verifyPlatformContainerResources, Docker 27).

The messages are Docker's own words, since clients match on them.
"""

from __future__ import annotations

from daemon.runtime.cgroups.resources import MAX_CPU_SHARES, MIN_CPU_SHARES, Resources

MIN_MEMORY = 6 * 1024 * 1024  # Docker's floor: room for a container's startup overhead
MAX_LIST_VALUE = 8192  # Docker caps cpuset numbers (CVE-2018-20699) unless the host has more


def parse_list(value: str, maximum: int = 0) -> set[int]:
    """Parse a cpuset list such as "0-2,4"; ValueError with Docker's wording when malformed."""
    if value == "":
        return set()
    bad = ValueError(f"invalid format: {value}")
    out: set[int] = set()
    for part in value.split(","):
        low_s, dash, high_s = part.partition("-")
        if not dash:
            high_s = low_s
        if not (low_s.isascii() and low_s.isdigit() and high_s.isascii() and high_s.isdigit()):
            raise bad
        low, high = int(low_s), int(high_s)
        if high < low:
            raise bad
        if maximum and high > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(low, high + 1))
    return out


def format_list(values: set[int]) -> str:
    """The kernel's compact form: {0, 1, 2, 5} -> "0-2,5"."""
    ranges: list[str] = []
    ordered = sorted(values)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(ranges)


def _check_cpuset(requested: str, available: str, kind: str, missing: str) -> None:
    have = parse_list(available)
    try:
        want = parse_list(requested, max([MAX_LIST_VALUE, *have]))
    except ValueError as e:
        raise ValueError(f"Invalid value {requested} for cpuset {kind}: {e}") from None
    if not want <= have:
        raise ValueError(f"{missing} - requested {requested}, available: {available}")


def validate(
    resources: Resources,
    ncpu: int,
    *,
    update: bool = False,
    cpus: str | None = None,
    mems: str | None = None,
) -> None:
    """Raise ValueError with Docker's message when the resources are not acceptable.

    ncpu is the host's CPU count; cpus / mems are the cpusets containers may use (the
    cgroup root's cpuset.cpus / cpuset.mems), cpus defaulting to 0..ncpu-1.  Memory nodes
    are only checked for syntax unless mems is given.  update=True relaxes the check that
    Docker skips on `docker update` (swap without memory).
    """
    r = resources
    # dockerd refuses negative shares; runc refuses what the kernel would clamp (v1's 2..262144)
    if r.cpu_shares < 0:
        raise ValueError(f"invalid CPU shares ({r.cpu_shares}): value must be a positive integer")
    if 0 < r.cpu_shares < MIN_CPU_SHARES:
        raise ValueError(f"the minimum allowed cpu-shares is {MIN_CPU_SHARES}")
    if r.cpu_shares > MAX_CPU_SHARES:
        raise ValueError(f"the maximum allowed cpu-shares is {MAX_CPU_SHARES}")
    if r.memory != 0 and r.memory < MIN_MEMORY:
        raise ValueError("Minimum memory limit allowed is 6MB")
    if r.memory > 0 and r.memory_swap > 0 and r.memory_swap < r.memory:
        raise ValueError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if r.memory == 0 and r.memory_swap > 0 and not update:
        raise ValueError("You should always set the Memory limit when using Memoryswap limit, see usage")
    if r.memory_reservation > 0 and r.memory_reservation < MIN_MEMORY:
        raise ValueError("Minimum memory reservation allowed is 6MB")
    if r.memory > 0 and r.memory_reservation > 0 and r.memory < r.memory_reservation:
        raise ValueError("Minimum memory limit can not be less than memory reservation limit, see usage")

    if r.nano_cpus > 0 and r.cpu_period > 0:
        raise ValueError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if r.nano_cpus > 0 and r.cpu_quota > 0:
        raise ValueError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if r.nano_cpus < 0 or r.nano_cpus > ncpu * 1_000_000_000:
        raise ValueError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if r.cpu_period != 0 and not 1000 <= r.cpu_period <= 1_000_000:
        raise ValueError(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if 0 < r.cpu_quota < 1000:
        raise ValueError("CPU cfs quota can not be less than 1ms (i.e. 1000)")

    available_cpus = cpus if cpus is not None else format_list(set(range(max(ncpu, 1))))
    _check_cpuset(r.cpuset_cpus, available_cpus, "cpus", "Requested CPUs are not available")
    if mems is not None:
        _check_cpuset(r.cpuset_mems, mems, "mems", "Requested memory nodes are not available")
    elif r.cpuset_mems:
        try:
            parse_list(r.cpuset_mems, MAX_LIST_VALUE)
        except ValueError as e:
            raise ValueError(f"Invalid value {r.cpuset_mems} for cpuset mems: {e}") from None
