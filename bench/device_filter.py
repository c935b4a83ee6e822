"""What the cgroup v2 device filter costs a container start: generating, loading and attaching it.

Needs root and a cgroup2 mount (on a v1 host, the controller-less one at /sys/fs/cgroup/unified will do).
It works on one throwaway cgroup of its own, which it removes.

    .venv/bin/python bench/device_filter.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable

from daemon.runtime import bpf
from daemon.runtime.cgroups import DevicePolicy, Resources, V2Manager, container_device_rules
from daemon.runtime.cgroups.devicefilter import LICENSE, program
from daemon.runtime.cgroups.v2 import unified_mount


def timed(label: str, runs: int, step: Callable[[], object]) -> None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(
        f"{label:<38} mean {statistics.mean(times):7.3f} ms   median {statistics.median(times):7.3f} ms"
        f"   p90 {times[int(len(times) * 0.9) - 1]:7.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    mount = unified_mount()
    if os.geteuid() != 0 or mount is None:
        print("needs root and a cgroup2 mount", file=sys.stderr)
        return 2
    rules = container_device_rules(privileged=False)
    policy = DevicePolicy.from_rules(rules)
    insns = program(policy)
    print(f"Docker's default rules: {len(insns) // 8} instructions")

    timed("rules -> policy", args.runs, lambda: DevicePolicy.from_rules(rules))
    timed("policy -> program (uncached)", args.runs, lambda: program.__wrapped__(policy))
    timed("policy -> program (cached)", args.runs, lambda: program(policy))

    def load() -> None:
        os.close(bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, insns, LICENSE))

    timed("load (verifier + JIT)", args.runs, load)

    manager = V2Manager(mount)
    name = f"pydockerd-bench-devices-{secrets.token_hex(6)}"
    manager.create(name, Resources())
    try:
        timed(
            "restrict_devices (load+attach+detach)", args.runs, lambda: manager.restrict_devices(name, rules)
        )
    finally:
        manager.remove(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
