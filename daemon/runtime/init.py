"""What a shim's forked children do: become a container's first process, or join it as an exec.

Each child first moves itself into the container's cgroup (cheap for the process itself, see
CgroupManager.join_self), hands the shim a pty where there is one, and reports "ready" only when nothing
is left but execve, which waits for the shim's "go": a start error never leaves a process behind.
"""

import os
import socket

from daemon.runtime import linux, rootfs
from daemon.runtime.cgroups import CgroupManager
from daemon.runtime.process import (
    StartError,
    finalize_and_exec,
    join_session_keyring,
    prepare,
    recv_msg,
    send_msg,
    setup_terminal,
)
from daemon.runtime.spec import ContainerSpec, ProcessSpec, SeccompProgram
from daemon.runtime.syscalls import LINUX, Syscalls

NAMESPACES = ("ipc", "uts", "net", "cgroup", "mnt")  # mnt last: it changes our root


def _wait_for(sync: socket.socket, what: str) -> None:
    msg, _ = recv_msg(sync)
    if msg is None or msg.get("op") != what:
        raise StartError(f"shim went away before {what}", 125)


def _stdio(stdio: tuple[int, int, int]) -> None:
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)


class ContainerBody:
    """PID 1 of a new PID namespace (the shim unshared it before forking us)."""

    def __init__(
        self,
        spec: ContainerSpec,
        root: str,
        stdio: tuple[int, int, int],
        cgroups: CgroupManager,
        seccomp: SeccompProgram | None,
        syscalls: Syscalls = LINUX,
    ) -> None:
        """`seccomp`: the container's filter, decoded once by the shim (its execs load it too)."""
        self.spec, self.root, self.stdio, self.cgroups, self.seccomp = spec, root, stdio, cgroups, seccomp
        self.syscalls = syscalls

    def __call__(self, sync: socket.socket) -> None:
        spec = self.spec
        self.cgroups.join_self(spec.cgroup_name)  # first: everything after is accounted and limited
        flags = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
        if spec.network_mode == "join":  # before the new mount namespace: the path is the host's /proc
            self.syscalls.join_netns(spec.netns_path)
        elif spec.network_mode == "private":
            flags |= linux.CLONE_NEWNET
        self.syscalls.unshare(flags)
        os.umask(0o022)
        rootfs.build_root(spec, self.root, self.syscalls)
        if spec.hostname:
            self.syscalls.sethostname(spec.hostname)
        if spec.domainname:
            self.syscalls.setdomainname(spec.domainname)
        if spec.network_mode == "private":
            self.syscalls.bring_loopback_up()
        os.setsid()
        if spec.process.tty:
            setup_terminal(sync, spec.tty_size)
        else:
            _stdio(self.stdio)
        cwd = spec.process.cwd or "/"
        os.makedirs(cwd, exist_ok=True)  # Docker creates a missing WorkingDir
        prep = prepare(spec.process, spec.hostname)
        if os.path.exists("/proc/self/ns/cgroup"):  # after joining: the namespace roots at our cgroup
            self.syscalls.unshare(linux.CLONE_NEWCGROUP)
        join_session_keyring(spec.id, first=True)
        send_msg(sync, {"ready": True})
        _wait_for(sync, "go")
        finalize_and_exec(prep, spec.process, cwd, self.seccomp)


class ExecBody:
    """A process joining a running container (the shim's children are already in its PID namespace)."""

    def __init__(
        self,
        spec: ContainerSpec,
        cgroups: CgroupManager,
        init_pid: int,
        proc: ProcessSpec,
        stdio: tuple[int, int, int],
        tty_size: tuple[int, int] | None,
        seccomp: SeccompProgram | None,
    ) -> None:
        """`seccomp`: the container's filter, which execs get too (runc loads the container's)."""
        self.proc, self.stdio, self.tty_size, self.seccomp = proc, stdio, tty_size, seccomp
        self.container_id, self.hostname = spec.id, spec.hostname
        self.cgroups, self.cgroup_name = cgroups, spec.cgroup_name
        # open the namespaces now: the shim may not keep /proc/<pid> reachable for long
        self.ns_fds = []
        for name in NAMESPACES:
            path = f"/proc/{init_pid}/ns/{name}"
            if os.path.exists(path) and os.readlink(path) != os.readlink(f"/proc/self/ns/{name}"):
                self.ns_fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))

    def __call__(self, sync: socket.socket) -> None:
        self.cgroups.join_self(self.cgroup_name)  # while the host's cgroup file system is in reach
        for fd in self.ns_fds:
            linux.setns(fd)
            os.close(fd)
        os.umask(0o022)
        os.setsid()
        if self.proc.tty:
            setup_terminal(sync, self.tty_size)
        else:
            _stdio(self.stdio)
        prep = prepare(self.proc, self.hostname)
        join_session_keyring(self.container_id, first=False)
        send_msg(sync, {"ready": True})
        _wait_for(sync, "go")
        finalize_and_exec(prep, self.proc, self.proc.cwd or "/", self.seccomp)
