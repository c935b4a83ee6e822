#!/usr/bin/env bash
# Time `docker run --rm busybox true` through the real docker CLI against pydockerd and, when it is
# installed, Docker Engine (dockerd), on each one's default network and with --network none; measure TCP
# through a port published on 127.0.0.1; print mean/median/p90, the ratios, and the daemons' memory.
# dockerd runs with its network defaults (docker0, iptables); the cleanup undoes them (bench/net.py).
# With `archives` first: the daemons' peak memory while `docker import` and `docker load` unpack
# many files (bench/archives.py; BENCH_FILES, 300000).
#
#   bench/run_bench.sh            (or: make bench)
#   bench/run_bench.sh archives   (or: make bench-archives)
#
# Env: BENCH_N (runs, 20), BENCH_WARMUP (2), BENCH_DAEMONS (pydockerd,dockerd), BENCH_RUN_ARGS (extra
# `docker run` flags), BENCH_CONTAINERS (detached containers for the memory figure, 5; 0 skips it),
# BENCH_SECCOMP_UNCONFINED (1: time pydockerd with seccomp=unconfined too, for the filter's cost),
# BENCH_NETWORK_NONE (1: time --network none too), BENCH_NET_MIB (MiB per download, 256; 0 skips it),
# BENCH_NET_REPS (downloads per daemon, 3),
# DOCKER (the CLI, default: the docker on PATH), PYDOCKERD (the daemon, .venv/bin/pydockerd),
# BENCH_INSTALL_DOCKERD=1 (apt-get install docker.io when dockerd is missing). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

policy=/usr/sbin/policy-rc.d
policy_added=0
workdir=$(mktemp -d /tmp/pydbench.XXXXXX)

cleanup() {
    # Also runs when bench.py was killed: stop leftover daemons and shims, unmount, remove the work dir.
    "$python" bench/bench.py cleanup "$workdir" || echo "bench: cleanup of $workdir failed" >&2
    if [ "$policy_added" = 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

install_dockerd() {
    # Debian's maintainer scripts would start a system dockerd on /var/run/docker.sock; policy-rc.d
    # exit 101 tells them not to. The bench only runs daemons of its own, on its own sockets.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; policy_added=1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
    if [ "$policy_added" = 1 ]; then rm -f "$policy"; policy_added=0; fi
}

if [ "$(id -u)" != 0 ]; then
    echo "bench: needs root (containers, mounts, cgroups)" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null && [ "${BENCH_INSTALL_DOCKERD:-0}" = 1 ]; then
    install_dockerd
fi

# In the background, so that a signal to this script is passed on at once (bash runs traps only
# between foreground commands); bench.py then stops its daemons, and the EXIT trap checks the rest.
if [ "${1:-}" = archives ]; then
    shift
    "$python" bench/archives.py --workdir "$workdir" "$@" &
else
    "$python" bench/bench.py run --workdir "$workdir" "$@" &
fi
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM HUP
set +e
wait "$child"; rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done  # a signal ends the first wait early
exit "$rc"
