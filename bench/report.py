"""The tables bench.py prints: timings per scenario and daemon, ratios, TCP throughput and memory."""

from __future__ import annotations

import argparse
from typing import Any

# The target for the default bridge: pydockerd in at most this fraction of dockerd's time.
TARGET_RATIO = 0.2
TARGET_LABEL = "default bridge"
STAT_KEYS = ("mean", "median", "p90")


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _why_not(r: dict[str, Any]) -> str:
    if "unsupported" in r:
        return f"unsupported ({r['unsupported']})"
    return str(r.get("error") or r.get("skipped") or "no figures")


def timings(results: dict[str, Any], args: argparse.Namespace, image: str) -> None:
    print(f"docker run --rm {args.run_args + ' ' if args.run_args else ''}[FLAGS] {image} true")
    print(f"{args.runs} runs after {args.warmup} warm-ups, seconds per run, through {args.docker}")
    print(f"{'daemon':<14}{'mean':>8}{'median':>8}{'p90':>8}{'min':>8}{'max':>8}  FLAGS / version")
    for name, r in results.items():
        if "stats" in r:
            s = r["stats"]
            row = "".join(f"{s[k]:>8.3f}" for k in ("mean", "median", "p90", "min", "max"))
            flags = r.get("flags") or f"(default network: {', '.join(r.get('interfaces', []))})"
            print(f"{name:<14}{row}  {flags} / {r['server_version']}")
        else:
            print(f"{name:<14}  {_why_not(r)}")


def ratios(results: dict[str, Any], pairs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """pydockerd's time over dockerd's for each (label, pydockerd row, dockerd row) both have."""
    out: dict[str, Any] = {}
    for label, py_name, dk_name in pairs:
        py, dk = results.get(py_name, {}), results.get(dk_name, {})
        if "stats" not in py or "stats" not in dk:
            why = _why_not(py) if "stats" not in py else _why_not(dk)
            print(f"ratio pydockerd/dockerd, {label}: none ({why})")
            continue
        ratio = {k: py["stats"][k] / dk["stats"][k] for k in STAT_KEYS}
        verdict = "meets" if ratio["median"] <= TARGET_RATIO else "misses"
        target = f" (median {verdict} the target <= {TARGET_RATIO})" if label == TARGET_LABEL else ""
        print(
            f"ratio pydockerd/dockerd, {label}: mean {ratio['mean']:.2f}, median {ratio['median']:.2f}, "
            f"p90 {ratio['p90']:.2f}{target}"
        )
        out[label] = ratio
    return out


def seccomp_cost(results: dict[str, Any], py_name: str, unconfined: str) -> dict[str, float] | None:
    py, unc = results.get(py_name, {}), results.get(unconfined, {})
    if "stats" not in py or "stats" not in unc:
        return None
    cost = py["stats"]["median"] - unc["stats"]["median"]
    print(
        f"seccomp filter cost on pydockerd: {cost * 1000:+.1f} ms per run "
        "(median with the default profile minus median with seccomp=unconfined)"
    )
    return {"median_seconds": cost}


def throughput(results: dict[str, Any], py_name: str, dk_name: str) -> dict[str, float] | None:
    rows = {n: r["throughput"] for n, r in results.items() if "throughput" in r}
    if not rows:
        return None
    print()
    some = next((t for t in rows.values() if "bytes" in t), None)
    size = f"{some['bytes'] / 2**20:.0f} MiB, {len(some['mb_per_s'])} times" if some else ""
    print(f"TCP from a container through -p 127.0.0.1:PORT:80 to the host ({size}), MB/s")
    print(f"{'daemon':<14}{'median':>9}{'mean':>9}{'min':>9}{'max':>9}")
    for name, t in rows.items():
        if "median" in t:
            print(f"{name:<14}" + "".join(f"{t[k]:>9.0f}" for k in ("median", "mean", "min", "max")))
        else:
            print(f"{name:<14}  {_why_not(t)}")
    py, dk = rows.get(py_name, {}), rows.get(dk_name, {})
    if "median" in py and "median" in dk:
        ratio = py["median"] / dk["median"]
        print(f"ratio pydockerd/dockerd (median MB/s; above 1: pydockerd is faster): {ratio:.2f}")
        return {"median": ratio}
    return None


def memory(results: dict[str, Any], n: int) -> None:
    print()
    print("memory, MiB (RSS / PSS); helpers = containerd and shims")
    print(f"{'daemon':<14}{'daemon idle':>16}{'helpers idle':>16}", end="")
    print(f"{f'daemon +{n}':>16}{f'helpers +{n}':>16}{'per container':>16}" if n else "")
    for name, r in results.items():
        if "memory_idle" not in r:
            continue
        idle = r["memory_idle"]
        line = f"{name:<14}"
        line += f"{mib(idle['daemon_rss_kib']) + ' / ' + mib(idle['daemon_pss_kib']):>16}"
        line += f"{mib(idle['helpers_rss_kib']) + ' / ' + mib(idle['helpers_pss_kib']):>16}"
        busy = r.get("memory_with_containers")
        if busy:
            rss = (busy["helpers_rss_kib"] - idle["helpers_rss_kib"]) // n
            pss = (busy["helpers_pss_kib"] - idle["helpers_pss_kib"]) // n
            line += f"{mib(busy['daemon_rss_kib']) + ' / ' + mib(busy['daemon_pss_kib']):>16}"
            line += f"{mib(busy['helpers_rss_kib']) + ' / ' + mib(busy['helpers_pss_kib']):>16}"
            line += f"{mib(rss) + ' / ' + mib(pss):>16}"
        print(line)
        if r.get("memory_flags"):
            print(f"{'':<14}(containers run with {r['memory_flags']})")
