"""Resource limits as Docker's HostConfig expresses them, plus the conversions both cgroup versions need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_CFS_PERIOD = 100_000  # microseconds; Docker's period for NanoCpus
MIN_CPU_SHARES = 2
MAX_CPU_SHARES = 262_144
DEFAULT_CPU_SHARES = 1024  # v1 kernel default
DEFAULT_CPU_WEIGHT = 100  # v2 kernel default


def _int(hc: Mapping[str, Any], key: str) -> int:
    value = hc.get(key)
    return int(value) if value is not None else 0


def _str(hc: Mapping[str, Any], key: str) -> str:
    value = hc.get(key)
    return str(value) if value else ""


@dataclass
class Resources:
    memory: int = 0  # bytes, 0 = unlimited
    memory_swap: int = 0  # memory+swap total; -1 unlimited swap; 0 = default (2*memory when memory set)
    memory_reservation: int = 0
    cpu_shares: int = 0  # 0 = unset
    cpu_period: int = 0  # microseconds; 0 = unset (100000)
    cpu_quota: int = 0  # microseconds; 0 = unset
    nano_cpus: int = 0  # --cpus * 1e9
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0  # 0 or -1 = unlimited

    @classmethod
    def from_host_config(cls, hc: Mapping[str, Any]) -> Resources:
        """Read Docker's HostConfig JSON keys; null values mean unset."""
        return cls(
            memory=_int(hc, "Memory"),
            memory_swap=_int(hc, "MemorySwap"),
            memory_reservation=_int(hc, "MemoryReservation"),
            cpu_shares=_int(hc, "CpuShares"),
            cpu_period=_int(hc, "CpuPeriod"),
            cpu_quota=_int(hc, "CpuQuota"),
            nano_cpus=_int(hc, "NanoCpus"),
            cpuset_cpus=_str(hc, "CpusetCpus"),
            cpuset_mems=_str(hc, "CpusetMems"),
            pids_limit=_int(hc, "PidsLimit"),
        )

    def memory_limit(self) -> int:
        """Memory limit in bytes, -1 when unlimited."""
        return self.memory if self.memory > 0 else -1

    def memsw_limit(self) -> int:
        """Docker's MemorySwap resolved: the memory+swap total in bytes, -1 when unlimited."""
        if self.memory <= 0 or self.memory_swap == -1:
            return -1
        if self.memory_swap > 0:
            return self.memory_swap
        return 2 * self.memory

    def swap_only(self) -> int:
        """Swap alone (v2's memory.swap.max), -1 when unlimited."""
        total = self.memsw_limit()
        return -1 if total < 0 else max(total - self.memory, 0)

    def reservation(self) -> int:
        return self.memory_reservation if self.memory_reservation > 0 else -1

    def cfs(self) -> tuple[int, int]:
        """(quota, period) in microseconds; quota -1 means no limit. Explicit values beat NanoCpus."""
        period = DEFAULT_CFS_PERIOD
        quota = -1
        if self.nano_cpus > 0:
            quota = self.nano_cpus * DEFAULT_CFS_PERIOD // 1_000_000_000
        if self.cpu_period > 0:
            period = self.cpu_period
        if self.cpu_quota != 0:
            quota = self.cpu_quota if self.cpu_quota > 0 else -1
        return quota, period

    def shares(self) -> int:
        """v1 cpu.shares, clamped to the kernel's range like Docker does; default when unset."""
        if self.cpu_shares == 0:
            return DEFAULT_CPU_SHARES
        return min(max(self.cpu_shares, MIN_CPU_SHARES), MAX_CPU_SHARES)

    def cpu_weight(self) -> int:
        """v2 cpu.weight from shares (the OCI runtimes' mapping of [2, 262144] onto [1, 10000])."""
        if self.cpu_shares == 0:
            return DEFAULT_CPU_WEIGHT
        shares = self.shares()
        return 1 + ((shares - 2) * 9999) // 262142

    def pids_max(self) -> str:
        return str(self.pids_limit) if self.pids_limit > 0 else "max"
